package apply

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/carbidedb/carbide/internal/testutil"
	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

// TestAppliesInCausalOrder: a transaction whose source had applied
// another stream up to some seqno waits until this database has applied
// as much of it (the other stream's tracking row), with the block before
// it committed, and says so in Waiting; then it applies. A dependency on
// a service with no tracking row here, or on the host's own site while
// its database is writable (its primary), needs no wait.
func TestAppliesInCausalOrder(t *testing.T) {
	testutil.RequireDB(t)
	srv := testutil.StartMariaDB(t)
	db := testutil.DB(t, srv)
	testutil.Exec(t, db, "CREATE DATABASE app")
	testutil.Exec(t, db, "CREATE TABLE app.t (id INT PRIMARY KEY, v INT)")
	other, err := New(Config{Addr: srv.Addr(), User: "tungsten", Password: "secret", Service: "west", Logger: testutil.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Open(context.Background()); err != nil { // makes tungsten_west
		t.Fatal(err)
	}
	other.Close()
	testutil.Exec(t, db, "UPDATE tungsten_west.trep_commit_seqno SET seqno = 4")

	var counts CausalCounters
	a, err := New(Config{Addr: srv.Addr(), User: "tungsten", Password: "secret", Service: "east", Site: "north", Causal: &counts, Logger: testutil.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	c := cols("id", "v")
	ins := func(seqno uint64, id int64, after ...*thlpb.After) *thlpb.Event {
		ev := rowsEvent(seqno, thlpb.RowChange_INSERT, "t", c, &thlpb.Row{After: []*thlpb.Value{vInt(id), vInt(0)}})
		ev.After = after
		return ev
	}
	evs := []*thlpb.Event{
		ins(0, 1, &thlpb.After{Service: "west", Seqno: 4}),    // met
		ins(1, 2, &thlpb.After{Service: "nowhere", Seqno: 9}), // no tracking row here
		ins(2, 3, &thlpb.After{Service: "west", Seqno: 6}),    // waits for west 6
		ins(3, 4),
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx, feed(evs...)) }()
	testutil.Eventually(t, 10*time.Second, func() error {
		if w, since := a.Waiting(); !strings.Contains(w, "seqno 2 waits for service west to apply seqno 6 here (it has 4)") {
			return fmt.Errorf("waiting %q", w)
		} else if since.IsZero() || time.Since(since) > time.Minute {
			return fmt.Errorf("waiting since %v", since)
		}
		return nil
	})
	// What came before it is committed while it waits.
	if n := testutil.QueryString(t, db, "SELECT COUNT(*) FROM app.t"); n != "2" {
		t.Fatalf("%s rows while seqno 2 waits, want 2 (seqnos 0 and 1 committed)", n)
	}
	testutil.Exec(t, db, "UPDATE tungsten_west.trep_commit_seqno SET seqno = 5")
	time.Sleep(100 * time.Millisecond)
	if n := testutil.QueryString(t, db, "SELECT COUNT(*) FROM app.t"); n != "2" {
		t.Fatalf("%s rows with west at 5, want 2", n)
	}
	testutil.Exec(t, db, "UPDATE tungsten_west.trep_commit_seqno SET seqno = 6")
	testutil.Eventually(t, 10*time.Second, func() error {
		if p, ok := a.Position(); !ok || p.Seqno != 3 {
			return fmt.Errorf("applied %d", p.Seqno)
		}
		return nil
	})
	if w, _ := a.Waiting(); w != "" {
		t.Errorf("still waiting: %q", w)
	}
	cancel()
	<-done
	if h, c := counts.Holds.Load(), counts.Checks.Load(); h != 1 || c < 3 || counts.HeldNanos.Load() < int64(100*time.Millisecond) {
		t.Errorf("counted %d holds (%v) and %d checks, want 1 hold of 100 ms or more and 3 checks or more", h, time.Duration(counts.HeldNanos.Load()), c)
	}

	// The site's own service on its primary: no wait, whatever it says.
	b, err := New(Config{Addr: srv.Addr(), User: "tungsten", Password: "secret", Service: "east", Site: "west", Logger: testutil.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := runUntil(t, b, 4, ins(4, 5, &thlpb.After{Service: "west", Seqno: 1000})); err != nil {
		t.Fatal(err)
	}
}

// TestCausalWaitGivesUpOnAStreamThatDoesNotMove: a stream that does not
// move at all (its history reset, or stopped for good) holds a
// transaction for afterStall, then it is applied without it, counted;
// the next one does not wait for that stream until it moves again.
func TestCausalWaitGivesUpOnAStreamThatDoesNotMove(t *testing.T) {
	testutil.RequireDB(t)
	defer func(d time.Duration) { afterStall = d }(afterStall)
	afterStall = 300 * time.Millisecond
	srv := testutil.StartMariaDB(t)
	db := testutil.DB(t, srv)
	testutil.Exec(t, db, "CREATE DATABASE app")
	testutil.Exec(t, db, "CREATE TABLE app.t (id INT PRIMARY KEY, v INT)")
	for _, svc := range []string{"west", "east"} {
		a, err := New(Config{Addr: srv.Addr(), User: "tungsten", Password: "secret", Service: svc, Logger: testutil.Logger(t)})
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Open(context.Background()); err != nil {
			t.Fatal(err)
		}
		if svc == "west" {
			a.Close()
		} else {
			defer a.Close()
			testutil.Exec(t, db, "UPDATE tungsten_west.trep_commit_seqno SET seqno = 4")
			var counts CausalCounters
			a.cfg.Causal = &counts
			ins := func(seqno uint64, id int64, need uint64) *thlpb.Event {
				ev := rowsEvent(seqno, thlpb.RowChange_INSERT, "t", cols("id", "v"), &thlpb.Row{After: []*thlpb.Value{vInt(id), vInt(0)}})
				ev.After = []*thlpb.After{{Service: "west", Seqno: need}}
				return ev
			}
			begin := time.Now()
			if err := runUntil(t, a, 1, ins(0, 1, 100), ins(1, 2, 200)); err != nil {
				t.Fatal(err)
			}
			took := time.Since(begin)
			if counts.Abandoned.Load() != 1 || counts.Holds.Load() != 1 || took < afterStall || took > afterStall+2*time.Second {
				t.Errorf("abandoned %d, held %d, took %v: want one wait of about %v given up, the next not held", counts.Abandoned.Load(), counts.Holds.Load(), took, afterStall)
			}
		}
	}
}
