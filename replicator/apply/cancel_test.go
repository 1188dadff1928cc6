package apply

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/carbidedb/carbide/internal/testutil"
	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

// TestStopWhileBlockedByLock: a session holds LOCK TABLES app.t WRITE, so
// the applier's blocks wait on it. Stopping the applier (a slave taken
// offline, e.g. a failover's candidate made master) returns at once, and
// nothing it had sent commits when the lock goes: the database holds what
// its tracking row says. With parallel apply, a stopping Run used to apply
// its cancelled blocks again on the main connection, waiting for the lock
// (lock_wait_timeout, a minute) and committing them after the stop.
func TestStopWhileBlockedByLock(t *testing.T) {
	testutil.RequireDB(t)
	srv := testutil.StartMariaDB(t)
	db := testutil.DB(t, srv)
	testutil.Exec(t, db, "CREATE DATABASE app")
	for _, channels := range []int{1, 4} {
		t.Run(fmt.Sprintf("channels=%d", channels), func(t *testing.T) {
			for _, q := range []string{"DROP TABLE IF EXISTS app.t", "CREATE TABLE app.t (id INT PRIMARY KEY)", "DROP DATABASE IF EXISTS tungsten_east"} {
				testutil.Exec(t, db, q)
			}
			insert := func(seqno uint64) *thlpb.Event {
				return rowsEvent(seqno, thlpb.RowChange_INSERT, "t", cols("id"), &thlpb.Row{After: []*thlpb.Value{vInt(int64(seqno))}})
			}
			a, err := New(Config{Addr: srv.Addr(), User: "tungsten", Password: "secret", Service: "east", Channels: channels, Logger: testutil.Logger(t)})
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			if err := a.Open(context.Background()); err != nil {
				t.Fatal(err)
			}
			if err := runUntil(t, a, 0, insert(0)); err != nil {
				t.Fatal(err)
			}
			lock, err := db.Conn(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			defer lock.Close()
			if _, err := lock.ExecContext(context.Background(), "LOCK TABLES app.t WRITE"); err != nil {
				t.Fatal(err)
			}
			var evs []*thlpb.Event
			for seqno := uint64(1); seqno <= 50; seqno++ {
				evs = append(evs, insert(seqno))
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- a.Run(ctx, feed(evs...)) }()
			// Blocks wait on the lock.
			testutil.Eventually(t, 5*time.Second, func() error {
				n := testutil.QueryString(t, db, "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE STATE LIKE '%lock%' AND INFO LIKE '%app%'")
				if n == "0" {
					return fmt.Errorf("no statement waits on the lock yet")
				}
				return nil
			})
			cancel()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("the applier still runs 5 s after it was stopped: it waits on the lock")
			}
			a.Close()
			if _, err := lock.ExecContext(context.Background(), "UNLOCK TABLES"); err != nil {
				t.Fatal(err)
			}
			// Nothing sent before the stop commits once the lock goes.
			deadline := time.Now().Add(time.Second)
			for time.Now().Before(deadline) {
				if n := testutil.QueryString(t, db, "SELECT COUNT(*) FROM app.t"); n != "1" {
					t.Fatalf("app.t holds %s rows after the stop, want 1 (seqno 0)", n)
				}
				if s := testutil.QueryString(t, db, "SELECT seqno FROM tungsten_east.trep_commit_seqno"); s != "0" {
					t.Fatalf("tracking row at %s after the stop, want 0", s)
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
}

// TestRunAfterSessionKilled: a run's end may kill the applier's own
// session (endOrphans, when the database still shows its last statement
// executing); the next run connects again instead of failing with an
// invalid connection.
func TestRunAfterSessionKilled(t *testing.T) {
	testutil.RequireDB(t)
	srv := testutil.StartMariaDB(t)
	db := testutil.DB(t, srv)
	testutil.Exec(t, db, "CREATE DATABASE app")
	testutil.Exec(t, db, "CREATE TABLE app.t (id INT PRIMARY KEY)")
	a := newApplier(t, srv.Addr())
	ins := func(seqno uint64, id int64) *thlpb.Event {
		return rowsEvent(seqno, thlpb.RowChange_INSERT, "t", cols("id"), &thlpb.Row{After: []*thlpb.Value{vInt(id)}})
	}
	if err := runUntil(t, a, 0, ins(0, 1)); err != nil {
		t.Fatal(err)
	}
	testutil.Exec(t, db, fmt.Sprintf("KILL CONNECTION %d", a.session))
	if err := runUntil(t, a, 1, ins(1, 2)); err != nil {
		t.Fatalf("the run after the session was killed: %v", err)
	}
	if got := testutil.QueryString(t, db, "SELECT COUNT(*) FROM app.t"); got != "2" {
		t.Fatalf("%s rows, want 2", got)
	}
}
