package extract

import (
	"fmt"
	"sync"
	"testing"

	"github.com/carbidedb/carbide/internal/testutil"
)

// TestLoopPrevention: what a replicator applied is not extracted again —
// transactions writing a tracking schema, statements with the origin
// comment or the origin thread id — except a local heartbeat and a
// consistency check's marker.
func TestLoopPrevention(t *testing.T) {
	t.Parallel()
	srv, db := startDB(t)
	for _, q := range []string{
		"CREATE DATABASE app",
		"CREATE TABLE app.t (id INT PRIMARY KEY)",
		"CREATE DATABASE tungsten_east",
		"CREATE TABLE tungsten_east.trep_commit_seqno (task_id INT PRIMARY KEY, seqno BIGINT)",
		"CREATE TABLE tungsten_east.heartbeat (id BIGINT PRIMARY KEY, seqno BIGINT, source_tstamp TIMESTAMP(6) NULL, name VARCHAR(128))",
		"INSERT INTO tungsten_east.trep_commit_seqno VALUES (0, 0)",
		"CREATE TABLE tungsten_east.consistency (check_id BIGINT UNSIGNED, chunk INT UNSIGNED, query TEXT, PRIMARY KEY (check_id, chunk))",
	} {
		testutil.Exec(t, db, q)
	}
	var mu sync.Mutex
	filtered := map[string][]string{}
	onFilter := func(svc string) func(Filtered) {
		return func(f Filtered) {
			mu.Lock()
			filtered[svc] = append(filtered[svc], f.Reason)
			mu.Unlock()
		}
	}
	east := newExtractor(t, srv, func(c *Config) { c.OnFilter = onFilter("east") })
	west := newExtractor(t, srv, func(c *Config) { c.Service, c.SourceID, c.OnFilter = "west", "west1", onFilter("west") })
	from := currentPosition(t, east)

	// 1. An applied transaction: app row + tracking row.
	c := conn(t, db, "BEGIN")
	execConn(t, c, "INSERT INTO app.t VALUES (1)")
	execConn(t, c, "UPDATE tungsten_east.trep_commit_seqno SET seqno = 1 WHERE task_id = 0")
	execConn(t, c, "COMMIT")
	// 2. A local heartbeat (trepctl heartbeat on east).
	testutil.Exec(t, db, "INSERT INTO tungsten_east.heartbeat VALUES (1, 0, NOW(6), 'hb-1')")
	// 2b. A consistency check's marker (trepctl check on east).
	testutil.Exec(t, db, "INSERT INTO tungsten_east.consistency VALUES (7, 0, 'SELECT 1')")
	// 3. DDL applied by a replicator: the comment, and the thread id for
	//    what the server rewrites (DROP TABLE loses the comment).
	testutil.Exec(t, db, OriginComment("west")+"CREATE TABLE app.x (id INT)")
	a := conn(t, db, fmt.Sprintf("SET SESSION pseudo_thread_id = %d", OriginThreadID))
	execConn(t, a, OriginComment("west")+"DROP TABLE app.x")
	// 4. A client's write: extracted everywhere, and the end marker.
	testutil.Exec(t, db, "INSERT INTO app.t VALUES (2)")

	ce := start(t, east, from)
	cw := start(t, west, from)
	et := ce.wait(t, 3)
	wt := cw.wait(t, 1)

	if hb := et[0][0]; hb.Heartbeat != "hb-1" || hb.Shard != "tungsten_east" || len(rowChanges(t, et[0])) != 1 {
		t.Errorf("east: first transaction %v, want the heartbeat hb-1 with its row", et[0])
	}
	if rc := rowChanges(t, et[1]); len(rc) != 1 || rc[0].GetTable() != "consistency" || et[1][0].Heartbeat != "" {
		t.Errorf("east: second transaction %v, want the marker", et[1])
	}
	if firstID(et[2]) != 2 || et[2][0].Heartbeat != "" {
		t.Errorf("east: third transaction %v, want the insert of id 2", et[2])
	}
	if firstID(wt[0]) != 2 {
		t.Errorf("west: transaction %v, want only the insert of id 2", wt[0])
	}
	ce.stop(t)
	cw.stop(t)
	if n := ce.count(); n != 3 {
		t.Errorf("east sent %d transactions, want 3", n)
	}
	if n := cw.count(); n != 1 {
		t.Errorf("west sent %d transactions, want 1", n)
	}
	mu.Lock()
	defer mu.Unlock()
	want := map[string][]string{
		"east": {"tungsten_east.trep_commit_seqno", "origin=west", "origin thread id"},
		"west": {"tungsten_east.trep_commit_seqno", "tungsten_east.heartbeat", "tungsten_east.consistency", "origin=west", "origin thread id"},
	}
	for svc, reasons := range want {
		if got := filtered[svc]; len(got) != len(reasons) {
			t.Errorf("%s filtered %q, want %q", svc, got, reasons)
		} else {
			for i := range reasons {
				if got[i] != reasons[i] {
					t.Errorf("%s filtered %q, want %q", svc, got, reasons)
				}
			}
		}
	}
	if s := east.Stats(); s.Filtered != 3 || s.Transactions != 3 || s.Heartbeats != 1 {
		t.Errorf("east stats %+v", s)
	}
	if s := west.Stats(); s.Filtered != 5 || s.Transactions != 1 || s.Heartbeats != 0 {
		t.Errorf("west stats %+v", s)
	}
}

func TestOrigin(t *testing.T) {
	for sql, want := range map[string]string{
		OriginComment("east") + "DROP TABLE t":      "east",
		"  \n/*carbide origin=west*/CREATE TABLE t": "west",
		"CREATE TABLE t /*carbide origin=west*/":    "",
		"/* other */ CREATE TABLE t":                "",
	} {
		got, ok := Origin(sql)
		if got != want || ok != (want != "") {
			t.Errorf("Origin(%q) = %q, %v; want %q", sql, got, ok, want)
		}
	}
}

// TestAppliedTransactionNeverStops: a transaction a replicator applied is
// dropped whatever its rows look like — rows the extractor could not
// decode before the tracking write comes (a partial row image, a table
// gone with no metadata in the binlog), and the group of its own that a
// non-transactional table's rows leave the applier's transaction in,
// which has no tracking write but the applier's thread id.
func TestAppliedTransactionNeverStops(t *testing.T) {
	t.Parallel()
	srv, db := startDB(t)
	for _, q := range []string{
		"CREATE DATABASE app",
		"CREATE TABLE app.t (id INT PRIMARY KEY, v INT)",
		"CREATE TABLE app.gone (id INT PRIMARY KEY, v INT)",
		"CREATE TABLE app.m (id INT PRIMARY KEY) ENGINE=MyISAM",
		"INSERT INTO app.t VALUES (1, 1)",
		"CREATE DATABASE tungsten_west",
		"CREATE TABLE tungsten_west.trep_commit_seqno (task_id INT PRIMARY KEY, seqno BIGINT)",
		"INSERT INTO tungsten_west.trep_commit_seqno VALUES (0, 0)",
	} {
		testutil.Exec(t, db, q)
	}
	x := newExtractor(t, srv, nil)
	from := currentPosition(t, x)

	a := conn(t, db, fmt.Sprintf("SET SESSION pseudo_thread_id = %d", OriginThreadID))
	// 1. A partial row image before the tracking write.
	execConn(t, a, "SET SESSION binlog_row_image = MINIMAL")
	execConn(t, a, "BEGIN")
	execConn(t, a, "UPDATE app.t SET v = 2 WHERE id = 1")
	execConn(t, a, "UPDATE tungsten_west.trep_commit_seqno SET seqno = 1 WHERE task_id = 0")
	execConn(t, a, "COMMIT")
	execConn(t, a, "SET SESSION binlog_row_image = FULL")
	// 2. Rows of a table dropped before extraction, logged without metadata.
	testutil.Exec(t, db, "SET GLOBAL binlog_row_metadata = NO_LOG")
	execConn(t, a, "BEGIN")
	execConn(t, a, "INSERT INTO app.gone VALUES (1, 1)")
	execConn(t, a, "UPDATE tungsten_west.trep_commit_seqno SET seqno = 2 WHERE task_id = 0")
	execConn(t, a, "COMMIT")
	testutil.Exec(t, db, "SET GLOBAL binlog_row_metadata = FULL")
	execConn(t, a, OriginComment("west")+"DROP TABLE app.gone")
	// 3. A non-transactional table inside an applied transaction.
	execConn(t, a, "BEGIN")
	execConn(t, a, "INSERT INTO app.m VALUES (1)")
	execConn(t, a, "INSERT INTO app.t VALUES (2, 2)")
	execConn(t, a, "UPDATE tungsten_west.trep_commit_seqno SET seqno = 3 WHERE task_id = 0")
	execConn(t, a, "COMMIT")
	// 4. A client's write: the only transaction to extract.
	testutil.Exec(t, db, "INSERT INTO app.t VALUES (3, 3)")

	col := start(t, x, from)
	txs := col.wait(t, 1)
	if firstID(txs[0]) != 3 {
		t.Errorf("first transaction extracted: %v, want only the client's insert of id 3", txs[0])
	}
	testutil.Exec(t, db, "INSERT INTO app.t VALUES (4, 4)")
	col.wait(t, 2)
	col.stop(t)
	if n := col.count(); n != 2 {
		t.Errorf("%d transactions extracted, want the 2 client inserts", n)
	}
	if s := x.Stats(); s.Filtered != 5 {
		t.Errorf("stats %+v, want 5 filtered (3 applied transactions, the MyISAM group, the DROP)", s)
	}
}
