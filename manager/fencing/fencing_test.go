package fencing

import (
	"context"
	"database/sql"
	"errors"
	"net"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/carbidedb/carbide/internal/testutil"
)

// databases are the fencing of one real mariadbd, named "db1".
func databases(t *testing.T) (*Databases, func(user string) *sql.DB, func()) {
	t.Helper()
	srv := testutil.StartMariaDB(t)
	host, port, err := net.SplitHostPort(srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	p, _ := strconv.Atoi(port)
	d := New(Config{User: "tungsten", Password: "secret", Port: p, Address: func(string) string { return host },
		Dial: (&net.Dialer{Timeout: time.Second}).DialContext})
	t.Cleanup(d.Close)
	open := func(user string) *sql.DB {
		db, err := sql.Open("mysql", srv.DSN(user, "secret", ""))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	stop := func() {
		if err := srv.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	return d, open, stop
}

// Fence rolls back an application's open transaction and leaves the
// database read-only; the replication account's session survives.
func TestFence(t *testing.T) {
	d, open, stop := databases(t)
	ctx := context.Background()
	if ro, err := d.ReadOnly(ctx, "db1", time.Second); err != nil || ro {
		t.Fatalf("read_only %v, %v; want writable", ro, err)
	}
	admin := open("tungsten")
	if _, err := admin.Exec("CREATE DATABASE app"); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec("CREATE TABLE app.t (id INT PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	app := open("app_user")
	tx, err := app.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec("INSERT INTO app.t VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	killed, err := d.Fence(ctx, "db1", 2*time.Second)
	if err != nil || killed < 1 {
		t.Fatalf("fence killed %d: %v", killed, err)
	}
	if err := tx.Commit(); err == nil {
		t.Fatal("the application's transaction committed after the fence")
	}
	if ro, err := d.ReadOnly(ctx, "db1", time.Second); err != nil || !ro {
		t.Fatalf("read_only %v, %v after the fence", ro, err)
	}
	var n int
	if err := admin.QueryRow("SELECT COUNT(*) FROM app.t").Scan(&n); err != nil || n != 0 {
		t.Fatalf("rows %d (%v): the fenced transaction's row is there", n, err)
	}
	if err := d.SetReadOnly(ctx, "db1", false, time.Second); err != nil {
		t.Fatal(err)
	}
	if ro, _ := d.ReadOnly(ctx, "db1", time.Second); ro {
		t.Fatal("still read-only")
	}

	// A database that is down is fenced by being down, and says so.
	stop()
	d.Close()
	_, err = d.Fence(ctx, "db1", time.Second)
	if !errors.Is(err, ErrDatabaseDown) || !errors.Is(err, syscall.ECONNREFUSED) || !IsRefused(err) {
		t.Fatalf("fence of a stopped database: %v", err)
	}
	if err := d.SetReadOnly(ctx, "db1", true, time.Second); err == nil {
		t.Fatal("set read_only on a stopped database")
	}
}

// Orphans lists the transactions of the binlog after an event id, each
// by its GTID and tables; an event id of a binlog the server no longer
// has is an error.
func TestOrphans(t *testing.T) {
	d, open, _ := databases(t)
	ctx := context.Background()
	admin := open("tungsten")
	for _, q := range []string{"CREATE DATABASE app", "CREATE TABLE app.t (id INT PRIMARY KEY)"} {
		if _, err := admin.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	var file string
	var pos uint64
	var skip sql.RawBytes
	rows, err := admin.Query("SHOW MASTER STATUS")
	if err != nil {
		t.Fatal(err)
	}
	cols, _ := rows.Columns()
	for rows.Next() {
		dest := []any{&file, &pos}
		for range cols[2:] {
			dest = append(dest, &skip)
		}
		if err := rows.Scan(dest...); err != nil {
			t.Fatal(err)
		}
	}
	rows.Close()
	eventID := file + ":" + strings.Repeat("0", 16-len(strconv.FormatUint(pos, 10))) + strconv.FormatUint(pos, 10) + ";-1"
	if got, err := d.Orphans(ctx, "db1", eventID); err != nil || len(got) != 0 {
		t.Fatalf("orphans at the end: %q, %v", got, err)
	}
	for _, q := range []string{"INSERT INTO app.t VALUES (1)", "UPDATE app.t SET id = 2"} {
		if _, err := admin.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	got, err := d.Orphans(ctx, "db1", eventID)
	if err != nil || len(got) != 2 || !strings.Contains(got[0], "app.t") || !strings.HasPrefix(got[0], "GTID ") {
		t.Fatalf("orphans %q, %v; want the two writes", got, err)
	}
	if _, err := d.Orphans(ctx, "db1", "mysql-bin.999999:0000000000000004;-1"); err == nil || !strings.Contains(err.Error(), "no longer has binlog mysql-bin.999999") {
		t.Fatalf("err %v", err)
	}
	if _, err := d.Orphans(ctx, "db1", "not an event id"); err == nil {
		t.Fatal("a malformed event id was taken")
	}
}
