package e2e

import (
	"database/sql"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/carbidedb/carbide/internal/testutil"
	"github.com/carbidedb/carbide/rpc/gen/managerpb"
)

// TestOneWayCutFencesPrimary: only the primary's outbound traffic to the
// other hosts is dropped, so it still hears raft and gossip from them.
// Its manager must notice that the coordinator no longer hears it (no
// lease granted) and fence its database before the site promotes another
// host: never two writable databases (polled every 20 ms), and no row
// committed on the old primary after the new one's first.
func TestOneWayCutFencesPrimary(t *testing.T) {
	s := startSandbox(t, connectorSite)
	c := startCutCase(s)
	heal := s.cutOutbound("east1", "east2", "east3")
	c.cut = time.Now()
	c.awaitFailover()
	if v := c.stopWatch(); len(v) > 0 {
		t.Errorf("two writable databases during the one-way cut: %v", v)
	}
	c.checkOrder()
	heal()
	c.restore()
}

// TestHungManagerAndCutPrimary: the primary's manager hangs (SIGSTOP) and
// then its host is cut off. Its replicator sees the primary's lease run
// out with no manager renewing it and no coordinator in reach, and fences
// the database itself before the site promotes another host: never two
// writable databases (polled every 20 ms), no row committed on the old
// primary after the new one's first. The connectors stop routing to it on
// their own too (a table no manager confirms expires).
func TestHungManagerAndCutPrimary(t *testing.T) {
	s := startSandbox(t, connectorSite)
	c := startCutCase(s)
	mgr := s.pidOf("east1", "manager")
	if err := syscall.Kill(mgr, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	resumed := false
	resume := func() {
		if !resumed {
			resumed = true
			syscall.Kill(mgr, syscall.SIGCONT)
		}
	}
	t.Cleanup(resume)
	heal := s.isolate("east1", "east2", "east3")
	c.cut = time.Now()
	testutil.Eventually(t, 8*time.Second, func() error {
		var ro int
		s.db("east1").QueryRow("SELECT @@global.read_only").Scan(&ro)
		if ro != 1 {
			return fmt.Errorf("east1 still writable")
		}
		return nil
	})
	t.Logf("east1 (its manager stopped) fenced %v after the cut", time.Since(c.cut).Round(time.Millisecond))
	c.awaitFailover()
	if v := c.stopWatch(); len(v) > 0 {
		t.Errorf("two writable databases with the old primary's manager hung and its host cut off: %v", v)
	}
	c.checkOrder()
	heal()
	resume()
	c.restore()
}

// cutCase is a site under a writer through every connector, watched for
// two writable databases, about to lose its primary east1.
type cutCase struct {
	s         *site
	cut       time.Time
	primary   string // the new one
	stopWatch func() []string
	stop      chan struct{}
	done      sync.WaitGroup
	acked     map[string]*atomic.Int64 // by connector
}

func startCutCase(s *site) *cutCase {
	s.exec("east1", "CREATE DATABASE app",
		"CREATE TABLE app.w (id BIGINT AUTO_INCREMENT PRIMARY KEY, via VARCHAR(16), n INT, srv INT, at DATETIME(6))")
	s.sameEverywhere(20*time.Second, eastHosts, "app")
	c := &cutCase{s: s, stop: make(chan struct{}), acked: map[string]*atomic.Int64{}}
	for _, h := range eastHosts {
		n := new(atomic.Int64)
		c.acked[h] = n
		db := s.viaConnector(h)
		c.done.Add(1)
		go func() {
			defer c.done.Done()
			for i := 0; ; i++ {
				select {
				case <-c.stop:
					return
				default:
				}
				if _, err := db.Exec("INSERT INTO app.w (via, n, srv, at) VALUES (?, ?, @@server_id, NOW(6))", h, i); err == nil {
					n.Add(1)
				} else {
					time.Sleep(20 * time.Millisecond)
				}
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}
	testutil.Eventually(s.t, 10*time.Second, func() error {
		for h, n := range c.acked {
			if n.Load() == 0 {
				return fmt.Errorf("no write through %s's connector yet", h)
			}
		}
		return nil
	})
	c.stopWatch = watchWritable(s, eastHosts)
	return c
}

// awaitFailover waits for a new primary that takes writes through the
// connectors for 3 s, then stops the writers.
func (c *cutCase) awaitFailover() {
	s := c.s
	r := s.waitStatus("east2", 30*time.Second, "failover away from east1", func(r *managerpb.StatusReply) error {
		if r.GetPrimary() == "east1" || r.GetTransition() != "" {
			return fmt.Errorf("primary %s %s", r.GetPrimary(), r.GetTransition())
		}
		return nil
	})
	c.primary = r.GetPrimary()
	s.t.Logf("%s is the primary %v after the cut", c.primary, time.Since(c.cut).Round(time.Millisecond))
	other := "east2"
	if c.primary == "east2" {
		other = "east3"
	}
	before := c.acked[other].Load()
	testutil.Eventually(s.t, 15*time.Second, func() error {
		if c.acked[other].Load() < before+20 {
			return fmt.Errorf("writes through %s's connector do not reach the new primary", other)
		}
		return nil
	})
	time.Sleep(3 * time.Second)
	close(c.stop)
	c.done.Wait()
	for h, n := range c.acked {
		s.t.Logf("writes acknowledged through %s's connector: %d", h, n.Load())
	}
}

// checkOrder: no row committed on the old primary after the new primary's
// first (the hosts share one clock).
func (c *cutCase) checkOrder() {
	s := c.s
	serverID := func(h string) int {
		var id int
		if err := s.db(h).QueryRow("SELECT @@server_id").Scan(&id); err != nil {
			s.t.Fatal(err)
		}
		return id
	}
	var lastOld, firstNew sql.NullString
	if err := s.db("east1").QueryRow("SELECT MAX(at) FROM app.w WHERE srv = ?", serverID("east1")).Scan(&lastOld); err != nil {
		s.t.Fatal(err)
	}
	if err := s.db(c.primary).QueryRow("SELECT MIN(at) FROM app.w WHERE srv = ?", serverID(c.primary)).Scan(&firstNew); err != nil {
		s.t.Fatal(err)
	}
	s.t.Logf("last row committed on east1 at %s; first on %s at %s; cut at %s", lastOld.String, c.primary, firstNew.String, c.cut.Format("15:04:05.000000"))
	if !firstNew.Valid {
		s.t.Fatalf("no row committed on the new primary %s", c.primary)
	}
	if lastOld.String >= firstNew.String {
		s.t.Errorf("a row committed on the old primary east1 at %s, after the new primary %s took its first at %s", lastOld.String, c.primary, firstNew.String)
	}
}

// restore brings east1 back as a replica of the new primary (from a copy
// when it holds writes the site never got) and compares every host.
func (c *cutCase) restore() {
	s := c.s
	s.waitStatus(c.primary, 20*time.Second, "east1's manager back in the site", func(r *managerpb.StatusReply) error {
		for _, m := range r.GetMembers() {
			if m.GetHost() == "east1" && m.GetState() == "alive" {
				return nil
			}
		}
		return fmt.Errorf("members %v", r.GetMembers())
	})
	lines, err := s.cctrl(c.primary, false, "datasource", "east1", "recover")
	// east1's writes after the cut never reached the site: still in its
	// binlog only, or extracted into its THL too (then its history has
	// diverged from the new primary's). Either way recover refuses and
	// says to reprovision it.
	if err != nil && (strings.Contains(err.Error(), "never reached the site") || strings.Contains(err.Error(), "history diverged")) {
		s.t.Logf("recover east1: %v", err)
		if out, err := s.tprovision("east1", "-s", c.primary, "-m", "mysqldump"); err != nil {
			s.t.Fatalf("tprovision east1: %v\n%s", err, out)
		}
		lines, err = s.cctrl(c.primary, false, "datasource", "east1", "recover")
	}
	if err != nil {
		s.t.Fatalf("recover east1: %v", err)
	}
	s.t.Logf("recover east1: %v", lines)
	s.sameEverywhere(60*time.Second, eastHosts, "app")
	if w := s.writable(eastHosts); len(w) != 1 || w[0] != c.primary {
		s.t.Errorf("writable at the end: %v, want [%s]", w, c.primary)
	}
}

// cutOutbound drops every packet host sends to the others (their packets
// still reach it); the returned func heals the cut.
func (s *site) cutOutbound(host string, others ...string) func() {
	t := s.t
	t.Helper()
	testutil.Require(t, os.Geteuid() == 0, "the partition test needs root for iptables")
	var rules [][]string
	for _, o := range others {
		rules = append(rules, []string{"-s", s.addr(host), "-d", s.addr(o), "-j", "DROP"})
	}
	return s.dropInput(rules)
}
