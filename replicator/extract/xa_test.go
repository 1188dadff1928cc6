package extract

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/carbidedb/carbide/internal/position"
	"github.com/carbidedb/carbide/internal/testutil"
	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

// xaPrepare runs XA START … XA PREPARE of xid on a connection of its
// own, inserting ids into app.t, and returns the connection (which may
// commit it, or be dropped with the transaction left prepared).
func xaPrepare(t testing.TB, db *sql.DB, xid string, ids ...int) *sql.Conn {
	t.Helper()
	c := conn(t, db, "XA START "+xid)
	for _, id := range ids {
		execConn(t, c, fmt.Sprintf("INSERT INTO app.t VALUES (%d)", id))
	}
	execConn(t, c, "XA END "+xid)
	execConn(t, c, "XA PREPARE "+xid)
	return c
}

// disconnect closes c's connection to the server (not only back to the
// pool), which leaves a prepared XA transaction to any other session.
func disconnect(c *sql.Conn) {
	c.Raw(func(any) error { return driver.ErrBadConn })
}

// ids lists the ids each transaction inserted.
func ids(t testing.TB, txs [][]*thlpb.Event) [][]int64 {
	t.Helper()
	out := make([][]int64, len(txs))
	for i, tx := range txs {
		for _, rc := range rowChanges(t, tx) {
			for _, r := range rc.Rows {
				out[i] = append(out[i], r.After[0].GetInt())
			}
		}
	}
	return out
}

// xaSetup starts a server with table app.t and an extractor for it
// (changed by edit), and returns them with the binlog's current position.
func xaSetup(t testing.TB, edit func(*Config), ddl ...string) (*sql.DB, *Extractor, position.Position) {
	t.Helper()
	srv, db := startDB(t)
	for _, q := range append([]string{"CREATE DATABASE app", "CREATE TABLE app.t (id INT PRIMARY KEY)"}, ddl...) {
		testutil.Exec(t, db, q)
	}
	x := newExtractor(t, srv, edit)
	return db, x, currentPosition(t, x)
}

// TestXA: XA transactions are sent once, at their XA COMMIT, in commit
// order, as ordinary transactions: prepared then committed (also from
// another session, and with a branch qualifier and format id), rolled
// back (nothing sent), one-phase, and several prepared at once between
// ordinary transactions. Events sent while some are prepared name where
// the oldest one began. Fragments of one row: a prepared transaction
// keeps its fragments.
func TestXA(t *testing.T) {
	t.Parallel()
	db, x, from := xaSetup(t, func(c *Config) { c.FragmentRows = 1 })

	c := xaPrepare(t, db, "'a'", 1, 2)
	execConn(t, c, "XA COMMIT 'a'")
	c = xaPrepare(t, db, "'b'", 100)
	execConn(t, c, "XA ROLLBACK 'b'")
	c = conn(t, db, "XA START 'c'", "INSERT INTO app.t VALUES (3)", "XA END 'c'")
	execConn(t, c, "XA COMMIT 'c' ONE PHASE")

	d := xaPrepare(t, db, "'d'", 4)
	e := xaPrepare(t, db, "'e','q',7", 5)
	disconnect(e)
	testutil.Exec(t, db, "INSERT INTO app.t VALUES (6)")
	testutil.Eventually(t, waitFor, func() error { // e is free once its session has gone
		_, err := db.Exec("XA COMMIT 'e','q',7")
		return err
	})
	testutil.Exec(t, db, "INSERT INTO app.t VALUES (7)")
	execConn(t, d, "XA COMMIT 'd'")
	testutil.Exec(t, db, "INSERT INTO app.t VALUES (8)")

	cl := start(t, x, from)
	txs := cl.wait(t, 7)
	want := [][]int64{{1, 2}, {3}, {6}, {5}, {7}, {4}, {8}}
	if got := ids(t, txs); !slices.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("transactions inserted %v, want %v (commit order)", got, want)
	}
	if len(txs[0]) != 2 || !txs[0][1].LastFrag || txs[0][1].EventId != txs[0][0].EventId {
		t.Errorf("a's two rows in %d fragments, want 2 of one event_id", len(txs[0]))
	}
	var last position.Position
	for i, tx := range txs {
		p := mustParse(t, tx[0].EventId)
		if last.Compare(p) >= 0 {
			t.Errorf("transaction %d at %s does not follow %s", i, p, last)
		}
		last = p
	}
	// 6, 5 and 7 were sent while d was prepared; 8 after all were done.
	dFrom := txs[2][0].PreparedFrom
	if dFrom == "" || txs[3][0].PreparedFrom != dFrom || txs[4][0].PreparedFrom != dFrom {
		t.Errorf("prepared_from of 6, 5, 7 = %q, %q, %q, want d's start in all three",
			dFrom, txs[3][0].PreparedFrom, txs[4][0].PreparedFrom)
	}
	if p := mustParse(t, dFrom); p.Compare(mustParse(t, txs[1][0].EventId)) < 0 {
		t.Errorf("prepared_from %s precedes the transaction before d's PREPARE (%s)", p, txs[1][0].EventId)
	}
	for _, i := range []int{0, 1, 5, 6} {
		if txs[i][0].PreparedFrom != "" {
			t.Errorf("transaction %v has prepared_from %q with nothing prepared", want[i], txs[i][0].PreparedFrom)
		}
	}
	if st := x.Stats(); st.Discarded != 1 {
		t.Errorf("%d transactions discarded, want 1 (b rolled back)", st.Discarded)
	}
	// Nothing more before the next write.
	testutil.Exec(t, db, "INSERT INTO app.t VALUES (9)")
	if got := ids(t, cl.wait(t, 8)[7:]); !slices.EqualFunc(got, [][]int64{{9}}, slices.Equal) {
		t.Errorf("after 8: %v, want [[9]]", got)
	}
}

// TestXARestart: a Run continuing after an event sent while an XA
// transaction was prepared reads the PREPARE again from prepared_from and
// sends the transaction at its XA COMMIT, sending nothing twice; without
// prepared_from it refuses the XA COMMIT rather than lose its changes.
func TestXARestart(t *testing.T) {
	t.Parallel()
	db, x, from := xaSetup(t, nil)

	testutil.Exec(t, db, "INSERT INTO app.t VALUES (1)")
	p := xaPrepare(t, db, "'p'", 2)
	q := xaPrepare(t, db, "'q'", 3)
	testutil.Exec(t, db, "INSERT INTO app.t VALUES (4)")
	execConn(t, q, "XA ROLLBACK 'q'")
	testutil.Exec(t, db, "INSERT INTO app.t VALUES (5)")

	first := start(t, x, from)
	sent := first.wait(t, 3)
	first.stop(t)
	if got := ids(t, sent); !slices.EqualFunc(got, [][]int64{{1}, {4}, {5}}, slices.Equal) {
		t.Fatalf("before the commit: transactions inserted %v, want [[1] [4] [5]]", got)
	}

	execConn(t, p, "XA COMMIT 'p'")
	testutil.Exec(t, db, "INSERT INTO app.t VALUES (6)")

	for i, after := range sent {
		ev := after[0]
		prepared := position.Position{}
		if ev.PreparedFrom != "" {
			prepared = mustParse(t, ev.PreparedFrom)
		}
		ctx, cancel := context.WithCancel(context.Background())
		var got [][]*thlpb.Event
		done := make(chan error, 1)
		go func() {
			done <- x.RunFrom(ctx, mustParse(t, ev.EventId), prepared, func(evs []*thlpb.Event) error {
				got = append(got, evs)
				if len(got) == len(sent)+2-i-1 {
					cancel()
				}
				return nil
			})
		}()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("RunFrom after %d: %v", i, err)
			}
		case <-time.After(waitFor):
			cancel()
			t.Fatalf("RunFrom after %d: %d transactions within %s", i, len(got), waitFor)
		}
		cancel()
		want := [][]int64{{1}, {4}, {5}, {2}, {6}}[i+1:]
		if g := ids(t, got); !slices.EqualFunc(g, want, slices.Equal) {
			t.Errorf("after %v: transactions inserted %v, want %v", ids(t, sent[i:i+1]), g, want)
		}
	}

	// The event of 4 says where p began; ignoring it loses p: refused
	// (q's rollback, whose PREPARE it does not read either, changes
	// nothing sent).
	err := x.Run(context.Background(), mustParse(t, sent[1][0].EventId), func([]*thlpb.Event) error { return nil })
	if !errors.Is(err, ErrDecode) || !strings.Contains(err.Error(), "XA COMMIT X'70',X'',1") || !strings.Contains(err.Error(), "has not read") {
		t.Errorf("Run past p's PREPARE without prepared_from = %v", err)
	}
}

// TestXAServerCrash: an XA transaction prepared when the server is
// killed stays prepared across its restart and is committed after it;
// the extractor sends it at that XA COMMIT (in the binlog file the
// restart began), reading from before the PREPARE or from prepared_from.
func TestXAServerCrash(t *testing.T) {
	t.Parallel()
	srv, db := startDB(t)
	testutil.Exec(t, db, "CREATE DATABASE app")
	testutil.Exec(t, db, "CREATE TABLE app.t (id INT PRIMARY KEY)")
	x := newExtractor(t, srv, nil)
	from := currentPosition(t, x)

	k := xaPrepare(t, db, "'k'", 1, 2)
	testutil.Exec(t, db, "INSERT INTO app.t VALUES (3)")
	cl := start(t, x, from)
	sent := cl.wait(t, 1)
	if sent[0][0].PreparedFrom == "" {
		t.Fatal("the transaction sent while k was prepared has no prepared_from")
	}
	disconnect(k)
	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-cl.done:
		cl.done <- nil
		if !errors.Is(err, ErrStream) {
			t.Fatalf("Run after the server died = %v, want ErrStream", err)
		}
	case <-time.After(waitFor):
		t.Fatal("Run still runs after its server died")
	}
	srv = testutil.RestartMariaDB(t, srv)
	db = testutil.DB(t, srv)
	var xids []string
	rows, err := db.Query("XA RECOVER")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var format, g, b int
		var data string
		if err := rows.Scan(&format, &g, &b, &data); err != nil {
			t.Fatal(err)
		}
		xids = append(xids, data)
	}
	rows.Close()
	if !slices.Equal(xids, []string{"k"}) {
		t.Fatalf("XA RECOVER after the restart = %v, want [k]", xids)
	}
	testutil.Exec(t, db, "XA COMMIT 'k'")
	testutil.Exec(t, db, "INSERT INTO app.t VALUES (4)")

	x2 := newExtractor(t, srv, nil)
	all := start(t, x2, from)
	got := all.wait(t, 3)
	all.stop(t)
	if g := ids(t, got); !slices.EqualFunc(g, [][]int64{{3}, {1, 2}, {4}}, slices.Equal) {
		t.Errorf("from before the PREPARE: transactions inserted %v, want [[3] [1 2] [4]]", g)
	}
	if f1, f2 := mustParse(t, got[0][0].EventId).File, mustParse(t, got[1][0].EventId).File; f1 == f2 {
		t.Errorf("k's commit in %s, the file of its PREPARE: the server did not restart?", f2)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var again [][]*thlpb.Event
	err = x2.RunFrom(ctx, mustParse(t, sent[0][0].EventId), mustParse(t, sent[0][0].PreparedFrom), func(evs []*thlpb.Event) error {
		again = append(again, evs)
		if len(again) == 2 {
			cancel()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if g := ids(t, again); !slices.EqualFunc(g, [][]int64{{1, 2}, {4}}, slices.Equal) {
		t.Errorf("after 3 with prepared_from: transactions inserted %v, want [[1 2] [4]]", g)
	}
	if again[0][0].EventId != got[1][0].EventId {
		t.Errorf("k sent at %s, and at %s from before its PREPARE", again[0][0].EventId, got[1][0].EventId)
	}
}

// TestXALoop: an XA transaction that writes the tracking schema (applied
// by a replicator) is dropped at its XA COMMIT like any applied one.
func TestXALoop(t *testing.T) {
	t.Parallel()
	db, x, from := xaSetup(t, nil, "CREATE DATABASE tungsten_east",
		"CREATE TABLE tungsten_east.trep_commit_seqno (task_id INT PRIMARY KEY, seqno BIGINT)")
	conn(t, db, "XA START 'l'", "INSERT INTO app.t VALUES (1)", "INSERT INTO tungsten_east.trep_commit_seqno VALUES (0, 1)",
		"XA END 'l'", "XA PREPARE 'l'", "XA COMMIT 'l'")
	testutil.Exec(t, db, "INSERT INTO app.t VALUES (2)")
	cl := start(t, x, from)
	txs := cl.wait(t, 1)
	if got := ids(t, txs); !slices.EqualFunc(got, [][]int64{{2}}, slices.Equal) {
		t.Errorf("after the DDL: transactions inserted %v, want [[2]] (l dropped)", got)
	}
	if st := x.Stats(); st.Filtered != 1 {
		t.Errorf("%d transactions filtered, want 1", st.Filtered)
	}
}

// TestXAPreparedPurged: a restart whose prepared_from was purged from the
// binlog stops with ErrPositionGone naming the way out.
func TestXAPreparedPurged(t *testing.T) {
	t.Parallel()
	db, x, from := xaSetup(t, nil)
	xaPrepare(t, db, "'p'", 1)
	testutil.Exec(t, db, "INSERT INTO app.t VALUES (2)")
	cl := start(t, x, from)
	sent := cl.wait(t, 1)[0][0]
	cl.stop(t)
	testutil.Exec(t, db, "FLUSH BINARY LOGS")
	testutil.Exec(t, db, "INSERT INTO app.t VALUES (3)")
	next := currentPosition(t, x)
	prepared := mustParse(t, sent.PreparedFrom)
	testutil.Eventually(t, waitFor, func() error { // a file a dump still reads is not purged
		testutil.Exec(t, db, "PURGE BINARY LOGS TO '"+next.File+"'")
		var first string
		var size int64
		if err := db.QueryRow("SHOW BINARY LOGS").Scan(&first, &size); err != nil {
			return err
		}
		if first == prepared.File {
			return fmt.Errorf("%s not purged yet", first)
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	err := x.RunFrom(ctx, mustParse(t, sent.EventId), prepared, func([]*thlpb.Event) error { return nil })
	if !errors.Is(err, ErrPositionGone) || !strings.Contains(err.Error(), "an XA transaction still prepared") ||
		!strings.Contains(err.Error(), "trepctl online -from-event "+sent.EventId) {
		t.Errorf("RunFrom a purged prepared_from = %v", err)
	}
}
