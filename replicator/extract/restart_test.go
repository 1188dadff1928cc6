package extract

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/carbidedb/carbide/internal/position"
	"github.com/carbidedb/carbide/internal/testutil"
	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

// TestRestartExactness: running from the event_id of transaction N yields
// exactly transactions N+1, N+2, … next, for every N, across FLUSH BINARY
// LOGS (including an empty binlog file), with no loss and no duplicate.
func TestRestartExactness(t *testing.T) {
	t.Parallel()
	srv, db := startDB(t)
	testutil.Exec(t, db, "CREATE DATABASE app")
	testutil.Exec(t, db, "CREATE TABLE app.t (id INT PRIMARY KEY)")
	x := newExtractor(t, srv, nil)
	from := currentPosition(t, x)

	insert := func(id int) { testutil.Exec(t, db, fmt.Sprintf("INSERT INTO app.t VALUES (%d)", id)) }
	insert(1)
	insert(2)
	testutil.Exec(t, db, "FLUSH BINARY LOGS")
	insert(3)
	testutil.Exec(t, db, "FLUSH BINARY LOGS")
	testutil.Exec(t, db, "FLUSH BINARY LOGS")
	insert(4)
	insert(5)
	testutil.Exec(t, db, "FLUSH BINARY LOGS")
	insert(6) // the last transaction in the binlog: once it is in, all before it are

	first := start(t, x, from)
	all := first.wait(t, 6)
	first.stop(t) // one dump per server id at a time: the server drops the older
	ids := make([]position.Position, len(all))
	for i, tx := range all {
		if got := firstID(tx); got != int64(i+1) {
			t.Fatalf("transaction %d inserted id %d, want %d", i, got, i+1)
		}
		ids[i] = mustParse(t, tx[0].EventId)
		if ids[i].GTID == "" {
			t.Errorf("event_id %s has no GTID", ids[i])
		}
		if i > 0 && ids[i-1].Compare(ids[i]) >= 0 {
			t.Errorf("event_id %s does not follow %s", ids[i], ids[i-1])
		}
	}
	if ids[1].File == ids[2].File || ids[2].File == ids[3].File || ids[4].File == ids[5].File {
		t.Fatalf("rotations missing: %v", ids)
	}

	for n := range ids {
		c := start(t, x, ids[n])
		want := all[n+1:]
		if n == len(ids)-1 { // at the very end: the next write is next
			insert(7)
		}
		got := c.wait(t, max(len(want), 1))
		c.stop(t)
		if n == len(ids)-1 {
			if firstID(got[0]) != 7 || mustParse(t, got[0][0].EventId).Compare(ids[n]) <= 0 {
				t.Errorf("from %s: got id %d at %s, want id 7 after it", ids[n], firstID(got[0]), got[0][0].EventId)
			}
			continue
		}
		if len(c.txs) != len(want) {
			t.Errorf("from %s: %d transactions, want %d", ids[n], len(c.txs), len(want))
		}
		for i := range want {
			if got[i][0].EventId != want[i][0].EventId || firstID(got[i]) != firstID(want[i]) {
				t.Errorf("from %s: transaction %d is id %d (%s), want id %d (%s)",
					ids[n], i, firstID(got[i]), got[i][0].EventId, firstID(want[i]), want[i][0].EventId)
			}
		}
	}
}

func firstID(tx []*thlpb.Event) int64 {
	for _, ev := range tx {
		for _, ch := range ev.Changes {
			if rc := ch.GetRows(); rc != nil && len(rc.Rows) > 0 {
				return rc.Rows[0].After[0].GetInt()
			}
		}
	}
	return -1
}

func mustParse(t testing.TB, s string) position.Position {
	t.Helper()
	p, err := position.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestRunErrors: a start position the server does not have, and a server
// that dies under a running stream, end Run with errors that say so.
func TestRunErrors(t *testing.T) {
	t.Parallel()
	srv, db := startDB(t)
	x := newExtractor(t, srv, nil)
	ctx := context.Background()
	nop := func([]*thlpb.Event) error { return nil }

	gone := position.Position{File: "mysql-bin.000099", Offset: 4}
	err := x.Run(ctx, gone, nop)
	if !errors.Is(err, ErrPositionGone) || !strings.Contains(err.Error(), "cannot send its binlog from mysql-bin.000099:0000000000000004") {
		t.Errorf("Run from a missing file = %v", err)
	}

	// send's error ends Run, wrapped.
	testutil.Exec(t, db, "CREATE DATABASE app")
	boom := errors.New("store full")
	err = x.Run(ctx, position0, func([]*thlpb.Event) error { return boom })
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "send transaction mysql-bin.000001:") {
		t.Errorf("Run with a failing send = %v", err)
	}

	testutil.Exec(t, db, "CREATE TABLE app.t (id INT)")

	// The zero position starts at the end of the binlog: new writes arrive.
	c := start(t, x, position.Position{})
	next := 2
	testutil.Eventually(t, waitFor, func() error {
		testutil.Exec(t, db, "INSERT INTO app.t VALUES (?)", next)
		next++
		if c.count() == 0 {
			return errors.New("no transaction extracted yet")
		}
		return nil
	})
	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-c.done:
		c.done <- nil // the cleanup's stop finds a clean end
		if !errors.Is(err, ErrStream) {
			t.Errorf("Run after the server died = %v, want ErrStream", err)
		}
	case <-time.After(waitFor):
		t.Fatal("Run still runs after its server died")
	}
}

// TestReadPositionPastEmptyFile: after a new binlog file that holds no
// transaction (a server restart, FLUSH BINARY LOGS), the extractor's read
// position reaches the server's current position, so a switch's flush
// finishes; the last transaction's position stays where it was.
func TestReadPositionPastEmptyFile(t *testing.T) {
	t.Parallel()
	srv, db := startDB(t)
	testutil.Exec(t, db, "CREATE DATABASE app")
	testutil.Exec(t, db, "CREATE TABLE app.t (id INT PRIMARY KEY)")
	x := newExtractor(t, srv, nil)
	c := start(t, x, currentPosition(t, x))
	testutil.Exec(t, db, "INSERT INTO app.t VALUES (1)")
	c.wait(t, 1)
	testutil.Exec(t, db, "FLUSH BINARY LOGS")
	end := currentPosition(t, x)
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := x.Stats()
		if st.Read.Compare(end) >= 0 {
			if st.Position.Compare(end) >= 0 || st.Position.File == end.File {
				t.Errorf("last transaction at %s, in the new file %s that holds none", st.Position, end.File)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("read position %s never reached the server's %s (last transaction %s)", st.Read, end, st.Position)
		}
		time.Sleep(10 * time.Millisecond)
	}
	c.stop(t)
}
