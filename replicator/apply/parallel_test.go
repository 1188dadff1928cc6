package apply

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/carbidedb/carbide/internal/testutil"
	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

func newParallelApplier(t *testing.T, addr string, channels int) *Applier {
	t.Helper()
	a, err := New(Config{Addr: addr, User: "tungsten", Password: "secret", Service: "east", Channels: channels, BlockSize: 5, Logger: testutil.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

// TestParallelApplyKeepsOrder: with 4 channels, transactions touching the
// same rows still apply in seqno order (each update writes an absolute
// value, so a reordering would leave a different last value), and the
// tracking row ends at the last seqno.
func TestParallelApplyKeepsOrder(t *testing.T) {
	testutil.RequireDB(t)
	srv := testutil.StartMariaDB(t)
	db := testutil.DB(t, srv)
	testutil.Exec(t, db, "CREATE DATABASE app")
	testutil.Exec(t, db, "CREATE TABLE app.c (id INT PRIMARY KEY, n INT NOT NULL)")
	testutil.Exec(t, db, "CREATE TABLE app.log (id INT PRIMARY KEY, v INT)")
	a := newParallelApplier(t, srv.Addr(), 4)
	c := cols("id", "n")
	const rows, txns = 20, 3000
	cur := make([]int64, rows)
	var evs []*thlpb.Event
	for r := 0; r < rows; r++ {
		evs = append(evs, rowsEvent(uint64(len(evs)), thlpb.RowChange_INSERT, "c", c, &thlpb.Row{After: []*thlpb.Value{vInt(int64(r)), vInt(0)}}))
	}
	for i := 0; i < txns; i++ {
		seq := uint64(len(evs))
		if i%3 == 0 {
			r := (i * 7) % rows
			next := int64(i)
			ev := rowsEvent(seq, thlpb.RowChange_UPDATE, "c", c, &thlpb.Row{Before: []*thlpb.Value{vInt(int64(r)), vInt(cur[r])}, After: []*thlpb.Value{vInt(int64(r)), vInt(next)}})
			cur[r] = next
			evs = append(evs, ev)
			continue
		}
		evs = append(evs, rowsEvent(seq, thlpb.RowChange_INSERT, "log", cols("id", "v"), &thlpb.Row{After: []*thlpb.Value{vInt(int64(i)), vInt(int64(i * 2))}}))
	}
	last := uint64(len(evs) - 1)
	if err := runUntil(t, a, last, evs...); err != nil {
		t.Fatal(err)
	}
	for r := 0; r < rows; r++ {
		if got := testutil.QueryString(t, db, fmt.Sprintf("SELECT n FROM app.c WHERE id = %d", r)); got != fmt.Sprint(cur[r]) {
			t.Fatalf("row %d = %s, want %d (applied out of order)", r, got, cur[r])
		}
	}
	if got := testutil.QueryString(t, db, "SELECT COUNT(*) FROM app.log"); got != fmt.Sprint(txns-(txns+2)/3) {
		t.Fatalf("log rows = %s", got)
	}
	if got := testutil.QueryString(t, db, "SELECT seqno FROM tungsten_east.trep_commit_seqno"); got != fmt.Sprint(last) {
		t.Fatalf("tracking seqno = %s, want %d", got, last)
	}
}

func TestParallelApplyError(t *testing.T) {
	testutil.RequireDB(t)
	srv := testutil.StartMariaDB(t)
	db := testutil.DB(t, srv)
	testutil.Exec(t, db, "CREATE DATABASE app")
	// Row 500 fails (a CHECK constraint): an error, not a conflict.
	testutil.Exec(t, db, "CREATE TABLE app.t (id INT PRIMARY KEY, CONSTRAINT not500 CHECK (id <> 500))")
	a := newParallelApplier(t, srv.Addr(), 4)
	var evs []*thlpb.Event
	for i := 0; i < 1000; i++ {
		evs = append(evs, rowsEvent(uint64(i), thlpb.RowChange_INSERT, "t", cols("id"), &thlpb.Row{After: []*thlpb.Value{vInt(int64(i))}}))
	}
	err := runUntil(t, a, 999, evs...)
	var ae *Error
	if !errors.As(err, &ae) || ae.Seqno != 500 {
		t.Fatalf("err = %v", err)
	}
	if p, _ := a.Position(); p.Seqno != 499 {
		t.Fatalf("position %d, want 499", p.Seqno)
	}
	if got := testutil.QueryString(t, db, "SELECT seqno FROM tungsten_east.trep_commit_seqno"); got != "499" {
		t.Fatalf("tracking row at %s, want 499 (Position)", got)
	}
	if got := testutil.QueryString(t, db, "SELECT COUNT(*) FROM app.t"); got != "500" {
		t.Fatalf("rows = %s, want 500 (0..499 applied)", got)
	}
}

// TestParallelFailureSeenWithoutMoreEvents: a block that fails when no
// further event comes is still reported.
func TestParallelFailureSeenWithoutMoreEvents(t *testing.T) {
	testutil.RequireDB(t)
	srv := testutil.StartMariaDB(t)
	db := testutil.DB(t, srv)
	testutil.Exec(t, db, "CREATE DATABASE app")
	testutil.Exec(t, db, "CREATE TABLE app.t (id INT PRIMARY KEY, CONSTRAINT not2 CHECK (id <> 2))")
	a := newParallelApplier(t, srv.Addr(), 4)
	err := runUntil(t, a, 2,
		rowsEvent(0, thlpb.RowChange_INSERT, "t", cols("id"), &thlpb.Row{After: []*thlpb.Value{vInt(0)}}),
		rowsEvent(1, thlpb.RowChange_INSERT, "t", cols("id"), &thlpb.Row{After: []*thlpb.Value{vInt(1)}}),
		rowsEvent(2, thlpb.RowChange_INSERT, "t", cols("id"), &thlpb.Row{After: []*thlpb.Value{vInt(2)}}))
	var ae *Error
	if !errors.As(err, &ae) || ae.Seqno != 2 {
		t.Fatalf("err = %v", err)
	}
}
