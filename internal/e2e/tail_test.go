package e2e

import (
	"context"
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
	awaitAcked(t, &acked, 20, 10*time.Second)
	repl := s.pidOf("east1", "replicator")
	if err := syscall.Kill(repl, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	// Writes the stopped replicator never extracts: only the binlog holds them.
	awaitAcked(t, &acked, 50, 15*time.Second)
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

// TestCrossSiteStopShowsInSite: a host's cross-site service that stops
// (a row of the other site meets a conflicting one) shows in its site's
// status as an alert naming the host, the service and the error, and in
// the status of the site it reads; once
// repaired, everything is ONLINE and equal again.
func TestCrossSiteStopShowsInSite(t *testing.T) {
	// The conflict policy stop: converging, east2 would keep its row.
	s := startSandbox(t, msaaINI(t, "repl-conflict-policy=stop"))
	s.exec("west1", "CREATE DATABASE xs", "CREATE TABLE xs.t (id INT PRIMARY KEY, v VARCHAR(10))")
	s.sameEverywhere(60*time.Second, allHosts, "xs")
	// A row only east2 has (not replicated), then west writes the same key.
	conn, err := s.db("east2").Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, q := range []string{"SET SESSION sql_log_bin=0", "INSERT INTO xs.t VALUES (5, 'east2')", "SET SESSION sql_log_bin=1"} {
		if _, err := conn.ExecContext(context.Background(), q); err != nil {
			t.Fatal(err)
		}
	}
	s.exec("west1", "INSERT INTO xs.t VALUES (5, 'west')")
	r := s.waitStatus("east1", 30*time.Second, "an alert for east2's cross-site service", func(r *managerpb.StatusReply) error {
		for _, a := range r.GetAlerts() {
			if strings.Contains(a, "cross-site service west on east2 is OFFLINE:ERROR") {
				return nil
			}
		}
		return fmt.Errorf("alerts %v", r.GetAlerts())
	})
	for _, a := range r.GetAlerts() {
		if strings.Contains(a, "cross-site") {
			t.Logf("alert: %s", a)
		}
	}
	// The site it reads (west) shows it too: its writes no longer reach
	// east2.
	s.waitStatus("west1", 30*time.Second, "an alert on west for east2's reader", func(r *managerpb.StatusReply) error {
		for _, a := range r.GetAlerts() {
			if strings.Contains(a, "east2 of site east reads west through its cross-site service west, which is OFFLINE:ERROR") {
				t.Logf("west's alert: %s", a)
				return nil
			}
		}
		return fmt.Errorf("alerts %v", r.GetAlerts())
	})
	for _, q := range []string{"SET SESSION sql_log_bin=0", "DELETE FROM xs.t WHERE id = 5", "SET SESSION sql_log_bin=1"} {
		if _, err := conn.ExecContext(context.Background(), q); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := s.tool("east2", "replicator", "mm_trepctl", "-service", "west", "online"); err != nil {
		t.Fatalf("mm_trepctl online: %v %s", err, out)
	}
	s.sameEverywhere(60*time.Second, allHosts, "xs")
	s.allOnlineAndCaughtUp(60 * time.Second)
	// Repaired, both sites' alerts clear by themselves.
	for _, h := range []string{"east1", "west1"} {
		s.waitStatus(h, 30*time.Second, "no active alert", func(r *managerpb.StatusReply) error {
			if len(r.GetActiveAlerts()) > 0 {
				return fmt.Errorf("active alerts %v", r.GetActiveAlerts())
			}
			return nil
		})
	}
}
