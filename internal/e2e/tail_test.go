package e2e

import (
	"fmt"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/carbidedb/carbide/internal/testutil"
	"github.com/carbidedb/carbide/rpc/gen/managerpb"
)

// TestFailoverKeepsBinlogTail: the primary's mariadbd dies (kill -9)
// while its replicator is behind the binlog (here held with SIGSTOP while
// a writer fills the binlog with 8 KB rows). Every write the database
// acknowledged is in its binlog files on disk: the primary's replicator
// reads them after the database died, the failover's candidate fetches
// them from it, and the new primary holds every acknowledged row.
func TestFailoverKeepsBinlogTail(t *testing.T) {
	s := startSandbox(t, oneSite)
	s.exec("east1", "CREATE DATABASE app", "CREATE TABLE app.t (id INT PRIMARY KEY AUTO_INCREMENT, v INT UNIQUE, pad VARBINARY(8192))")
	s.sameEverywhere(20*time.Second, eastHosts, "app")

	var acked atomic.Int64
	stop := make(chan struct{})
	done := make(chan struct{})
	db := s.appDB("east1")
	go func() {
		defer close(done)
		for n := 0; ; n++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := db.Exec("INSERT INTO app.t (v, pad) VALUES (?, REPEAT('x', 8000))", n); err != nil {
				return // the database died
			}
			acked.Add(1)
		}
	}()
	time.Sleep(500 * time.Millisecond)
	repl := s.pidOf("east1", "replicator")
	if err := syscall.Kill(repl, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	s.kill9("east1", "mariadbd")
	<-done
	close(stop)
	if err := syscall.Kill(repl, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	n := acked.Load()
	t.Logf("%d writes acknowledged before the database died", n)

	r := s.waitStatus("east2", 60*time.Second, "failover", func(r *managerpb.StatusReply) error {
		if r.GetPrimary() == "east1" || r.GetTransition() != "" || dsOf(r, "east1").GetState() != "FAILED" {
			return fmt.Errorf("primary %s, transition %q, alerts %v", r.GetPrimary(), r.GetTransition(), r.GetAlerts())
		}
		return nil
	})
	primary := r.GetPrimary()
	var got int64
	testutil.Eventually(t, 20*time.Second, func() error {
		if err := s.db(primary).QueryRow("SELECT COUNT(*) FROM app.t").Scan(&got); err != nil {
			return err
		}
		if got < n {
			return fmt.Errorf("the new primary %s holds %d of the %d acknowledged rows", primary, got, n)
		}
		return nil
	})
	for _, a := range r.GetAlerts() {
		if strings.Contains(a, "FAILOVER") {
			t.Logf("alert: %s", a)
		}
	}
	s.sameEverywhere(30*time.Second, []string{"east2", "east3"}, "app")
}
