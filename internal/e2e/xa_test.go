package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/carbidedb/carbide/internal/testutil"
	"github.com/carbidedb/carbide/rpc/gen/managerpb"
)

// TestXAReplication: XA transactions on the primary reach both replicas
// once, in XA COMMIT order: committed, rolled back, one-phase, several
// prepared at once between ordinary transactions (touching the same
// rows after the commits), one prepared across a restart of the
// primary's extraction and one across a kill -9 of its database. All three hosts end equal, every
// replicator ONLINE and caught up.
func TestXAReplication(t *testing.T) {
	s := startSandbox(t, oneSite)
	s.mustCctrl("east1", "set", "policy", "maintenance") // the database kill is ours: no failover
	s.exec("east1", "CREATE DATABASE app", "CREATE TABLE app.t (id INT PRIMARY KEY, v INT NOT NULL)")
	db := s.db("east1")
	session := func(stmts ...string) *sql.Conn {
		t.Helper()
		c, err := db.Conn(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		for _, q := range stmts {
			if _, err := c.ExecContext(context.Background(), q); err != nil {
				t.Fatalf("east1: %s: %v", q, err)
			}
		}
		return c
	}
	prepare := func(xid string, stmts ...string) *sql.Conn {
		t.Helper()
		return session(append(append([]string{"XA START " + xid}, stmts...), "XA END "+xid, "XA PREPARE "+xid)...)
	}
	execOn := func(c *sql.Conn, q string) {
		t.Helper()
		if _, err := c.ExecContext(context.Background(), q); err != nil {
			t.Fatalf("east1: %s: %v", q, err)
		}
	}

	execOn(prepare("'a'", "INSERT INTO app.t VALUES (1, 1), (2, 2)"), "XA COMMIT 'a'")
	execOn(prepare("'b'", "INSERT INTO app.t VALUES (100, 100)", "UPDATE app.t SET v = -1"), "XA ROLLBACK 'b'")
	execOn(session("XA START 'c'", "INSERT INTO app.t VALUES (3, 3)", "XA END 'c'"), "XA COMMIT 'c' ONE PHASE")

	d := prepare("'d'", "INSERT INTO app.t VALUES (4, 4)", "UPDATE app.t SET v = v * 10 WHERE id = 1")
	e := prepare("'e','branch',7", "INSERT INTO app.t VALUES (5, 5)", "DELETE FROM app.t WHERE id = 2")
	s.exec("east1", "INSERT INTO app.t VALUES (6, 6)", "UPDATE app.t SET v = v + 1 WHERE id = 3")
	execOn(e, "XA COMMIT 'e','branch',7")
	s.exec("east1", "UPDATE app.t SET v = v + 100 WHERE id = 5") // after e's commit, on e's row
	waitRows(s, eastHosts, "app.t", 4)                           // 1, 3, 5, 6; 4 is d's, still prepared
	for _, h := range eastHosts[1:] {
		var n int
		if err := s.db(h).QueryRow("SELECT COUNT(*) FROM app.t WHERE id = 4").Scan(&n); err != nil || n != 0 {
			t.Fatalf("%s holds d's row while d is only prepared (%d, %v)", h, n, err)
		}
	}

	// The primary's extraction stops and starts again while d is prepared
	// (it continues after its last stored event, sent after d's PREPARE).
	s.trepctl("east1", "offline")
	s.trepctl("east1", "online")
	s.waitState("east1", "ONLINE")
	execOn(d, "XA COMMIT 'd'")
	s.exec("east1", "UPDATE app.t SET v = v + 1000 WHERE id IN (1, 4)")

	// The primary's database is killed while f is prepared; f survives
	// its restart (in a new binlog file) and commits after it.
	f := prepare("'f'", "INSERT INTO app.t VALUES (7, 7)", "UPDATE app.t SET v = v + 1 WHERE id = 6")
	s.exec("east1", "INSERT INTO app.t VALUES (8, 8)")
	waitRows(s, eastHosts, "app.t", 6) // 1, 3, 4, 5, 6, 8; 7 is f's
	f.Close()
	s.kill9("east1", "mariadbd")
	s.mustCctrl("east1", "service", "east1/mysql", "start")
	s.waitStatus("east1", 30*time.Second, "east1's database back", func(r *managerpb.StatusReply) error {
		if d := dsOf(r, "east1"); d.GetDataserver() != "ONLINE" {
			return fmt.Errorf("east1 dataserver %s", d.GetDataserver())
		}
		return nil
	})
	// The replicator may have given up on its database meanwhile
	// (OFFLINE:ERROR, connection refused); the operator's online.
	s.tool("east1", "continuent", "trepctl", "online")
	s.waitState("east1", "ONLINE")
	testutil.Eventually(t, 10*time.Second, func() error { // the pool's connections died with the server
		_, err := db.Exec("XA COMMIT 'f'")
		return err
	})

	const want = "1=1010,3=4,4=1004,5=105,6=7,7=7,8=8"
	testutil.Eventually(t, 30*time.Second, func() error {
		for _, h := range eastHosts {
			var rows string
			if err := s.db(h).QueryRow("SELECT GROUP_CONCAT(CONCAT(id, '=', v) ORDER BY id) FROM app.t").Scan(&rows); err != nil || rows != want {
				return fmt.Errorf("%s holds %s (%v), want %s", h, rows, err, want)
			}
		}
		return nil
	})
	s.sameEverywhere(10*time.Second, eastHosts, "app")
	max := s.field("east1", "maximumStoredSeqNo")
	for _, h := range eastHosts {
		s.waitState(h, "ONLINE")
		testutil.Eventually(t, 10*time.Second, func() error {
			if got := s.field(h, "appliedLastSeqno"); got != max {
				return fmt.Errorf("%s applied seqno %s of east1's %s", h, got, max)
			}
			return nil
		})
	}
}
