package extract

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/carbidedb/carbide/internal/testutil"
	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

// TestStatementContext: DML the source logs as a statement (a session
// with binlog_format=STATEMENT) depends on its session: the auto-increment
// values it generated (the target site has another offset), NOW(),
// RAND(), LAST_INSERT_ID(), user variables of every type, a
// case-insensitive collation, the time zone. Extracted on west and
// applied on east, the table ends equal.
func TestStatementContext(t *testing.T) {
	t.Parallel()
	west, wdb := startDB(t, testutil.WithAutoIncrement(2, 1))
	east, edb := startDB(t, testutil.WithAutoIncrement(2, 2))
	wx := newExtractor(t, west, func(c *Config) { c.Service, c.SourceID = "west", "west1" })
	from := currentPosition(t, wx)
	workload := []string{
		"CREATE DATABASE app",
		"CREATE TABLE app.s (id INT AUTO_INCREMENT PRIMARY KEY, v INT, r DOUBLE, name VARCHAR(20) COLLATE utf8mb4_general_ci, " +
			"ts DATETIME, u VARCHAR(40) CHARACTER SET utf8mb4, b BIGINT UNSIGNED)",
		"SET SESSION binlog_format = STATEMENT",
		"SET SESSION time_zone = '+05:30'",
		"INSERT INTO app.s (v, name, ts) VALUES (1, 'abc', NOW()), (2, 'ABC', NOW()), (3, 'xyz', NOW())",
		"SET @x = 'héllo', @n = -7, @f = 1.5, @big = 18446744073709551615, @z = NULL",
		"INSERT INTO app.s (v, u, r, b) VALUES (@n, @x, @f, @big)",
		"INSERT INTO app.s (u) VALUES (@z)",
		"INSERT INTO app.s (v, r) VALUES (4, RAND())",
		"UPDATE app.s SET v = v + 10 WHERE name = 'abc'",
		"INSERT INTO app.s (v) SELECT LAST_INSERT_ID()",
		"INSERT INTO app.s (v, ts) VALUES (5, FROM_UNIXTIME(0))",
	}
	c := conn(t, wdb)
	for _, q := range workload {
		execConn(t, c, q)
	}
	txs := start(t, wx, from).wait(t, len(workload)-3) // less the SETs
	applyOn(t, east, 1, txs)
	q := "SELECT GROUP_CONCAT(CONCAT_WS('/', id, v, r, name, ts, HEX(u), b) ORDER BY id SEPARATOR ' | ') FROM app.s"
	var wrows, erows string
	testutil.QueryRow(t, wdb, q, nil, &wrows)
	testutil.QueryRow(t, edb, q, nil, &erows)
	if wrows != erows {
		t.Errorf("app.s differs:\nwest %s\neast %s", wrows, erows)
	}
	sameChecksums(t, wdb, edb, "app.s")
}

// TestLoadDataAsStatementStops: LOAD DATA logged as a statement carries a
// file the extractor cannot pass on: it stops at it, naming it and the
// way out, instead of dropping it silently.
func TestLoadDataAsStatementStops(t *testing.T) {
	t.Parallel()
	srv, db := startDB(t)
	x := newExtractor(t, srv, nil)
	from := currentPosition(t, x)
	file := filepath.Join(t.TempDir(), "rows.txt")
	if err := os.WriteFile(file, []byte("1\tone\n2\ttwo\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Dir(file), 0o755); err != nil {
		t.Fatal(err)
	}
	c := conn(t, db)
	execConn(t, c, "CREATE DATABASE app")
	execConn(t, c, "CREATE TABLE app.l (id INT PRIMARY KEY, v VARCHAR(10))")
	execConn(t, c, "SET SESSION binlog_format = STATEMENT")
	execConn(t, c, "LOAD DATA INFILE '"+file+"' INTO TABLE app.l")
	err := make(chan error, 1)
	go func() {
		err <- x.Run(context.Background(), from, func([]*thlpb.Event) error { return nil })
	}()
	select {
	case e := <-err:
		if e == nil || !strings.Contains(e.Error(), "LOAD DATA") || !strings.Contains(e.Error(), "binlog_format=ROW") {
			t.Fatalf("Run: %v", e)
		}
	case <-time.After(waitFor):
		t.Fatal("the extractor went on past LOAD DATA logged as a statement")
	}
}

// TestStatementWithSourceError: a statement the source logged with the
// error it raised there (a non-transactional multi-row INSERT that stopped
// at a duplicate key, its first rows written) raises the same error here,
// which is its outcome: the applier goes on, the tables end equal.
func TestStatementWithSourceError(t *testing.T) {
	t.Parallel()
	west, wdb := startDB(t)
	east, edb := startDB(t)
	wx := newExtractor(t, west, func(c *Config) { c.Service, c.SourceID = "west", "west1" })
	from := currentPosition(t, wx)
	c := conn(t, wdb)
	execConn(t, c, "CREATE DATABASE app")
	execConn(t, c, "CREATE TABLE app.m (id INT PRIMARY KEY) ENGINE=MyISAM")
	execConn(t, c, "SET SESSION binlog_format = STATEMENT")
	if _, err := c.ExecContext(context.Background(), "INSERT INTO app.m VALUES (1), (2), (1), (3)"); err == nil {
		t.Fatal("the duplicate key raised no error on the source")
	}
	execConn(t, c, "INSERT INTO app.m VALUES (10)")
	txs := start(t, wx, from).wait(t, 4)
	if code := txs[2][0].Changes[0].GetStatement().GetSession()[SessionErrorCode]; code != "1062" {
		t.Fatalf("the failed INSERT carries error code %q, want 1062", code)
	}
	applyOn(t, east, 1, txs)
	var w, e string
	testutil.QueryRow(t, wdb, "SELECT GROUP_CONCAT(id ORDER BY id) FROM app.m", nil, &w)
	testutil.QueryRow(t, edb, "SELECT GROUP_CONCAT(id ORDER BY id) FROM app.m", nil, &e)
	if w != e || w != "1,2,10" {
		t.Fatalf("app.m: west %s, east %s, want 1,2,10", w, e)
	}
}
