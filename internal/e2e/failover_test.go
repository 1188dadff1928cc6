package e2e

import (
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/carbidedb/carbide/internal/testutil"
	"github.com/carbidedb/carbide/rpc/gen/managerpb"
)

// createApp makes app.t on east1 and waits for it everywhere.
func (s *site) createApp() {
	s.t.Helper()
	s.exec("east1", "CREATE DATABASE app", "CREATE TABLE app.t (id INT PRIMARY KEY AUTO_INCREMENT, v INT UNIQUE)")
	s.sameEverywhere(20*time.Second, eastHosts, "app")
}

// TestFailoverWhenPrimaryHostDies: SIGKILL of the primary's manager,
// replicator and mariadbd at once (the host dies) → a replica is
// promoted after the fencing grace and takes writes.
func TestFailoverWhenPrimaryHostDies(t *testing.T) {
	s := startSandbox(t, oneSite)
	s.createApp()
	for _, p := range []string{"manager", "replicator", "mariadbd"} {
		s.kill9("east1", p)
	}
	killed := time.Now()
	r := s.waitStatus("east2", 20*time.Second, "failover", func(r *managerpb.StatusReply) error {
		if r.GetPrimary() == "east1" || r.GetTransition() != "" || dsOf(r, "east1").GetState() != "FAILED" {
			return fmt.Errorf("primary %s, east1 %s", r.GetPrimary(), dsOf(r, "east1").GetState())
		}
		return nil
	})
	primary := r.GetPrimary()
	testutil.Eventually(t, 10*time.Second, func() error {
		_, err := s.appDB(primary).Exec("INSERT INTO app.t (v) VALUES (1)")
		return err
	})
	t.Logf("host east1 killed: %s primary, first write after %v (east1 %s)", primary, time.Since(killed).Round(time.Millisecond), dsOf(r, "east1").GetReason())
	s.sameEverywhere(20*time.Second, []string{"east2", "east3"}, "app")
}

// TestMaintenanceReportsOnly: under MAINTENANCE the primary's database
// dying changes nothing but what status reports.
func TestMaintenanceReportsOnly(t *testing.T) {
	s := startSandbox(t, oneSite)
	s.mustCctrl("east3", "set", "policy", "maintenance")
	s.kill9("east1", "mariadbd")
	s.waitStatus("east2", 10*time.Second, "east1's dataserver reported down", func(r *managerpb.StatusReply) error {
		if d := dsOf(r, "east1"); d.GetDataserver() != "STOPPED" {
			return fmt.Errorf("east1 dataserver %s", d.GetDataserver())
		}
		return nil
	})
	time.Sleep(5 * time.Second) // longer than any failover would take
	r := s.status("east2")
	if r.GetPrimary() != "east1" || dsOf(r, "east1").GetState() != "ONLINE" || r.GetPolicy() != "MAINTENANCE" {
		t.Fatalf("under MAINTENANCE: primary %s, east1 %s, policy %s", r.GetPrimary(), dsOf(r, "east1").GetState(), r.GetPolicy())
	}
	found := false
	for _, a := range r.GetAlerts() {
		found = found || strings.Contains(a, "MAINTENANCE")
	}
	if !found {
		t.Errorf("no alert about the primary under MAINTENANCE: %v", r.GetAlerts())
	}
	if w := s.writable([]string{"east2", "east3"}); len(w) != 0 {
		t.Errorf("replicas writable under MAINTENANCE: %v", w)
	}
}

// writer inserts rows v=base+n into whichever host takes them, counting
// what was acknowledged.
type writer struct {
	s     *site
	acked atomic.Int64
	fails atomic.Int64
	stop  chan struct{}
	done  sync.WaitGroup
}

// awaitAcked waits until counter has grown by n from now: writes go on
// (a wait on the workload, not a sleep).
func awaitAcked(t *testing.T, counter *atomic.Int64, n int64, limit time.Duration) {
	t.Helper()
	from := counter.Load()
	testutil.Eventually(t, limit, func() error {
		if got := counter.Load() - from; got < n {
			return fmt.Errorf("%d writes acknowledged, waiting for %d", got, n)
		}
		return nil
	})
}

func startWriter(s *site, base int) *writer {
	w := &writer{s: s, stop: make(chan struct{})}
	w.done.Add(1)
	go func() {
		defer w.done.Done()
		pools := map[string]*sql.DB{}
		for _, h := range eastHosts {
			pools[h] = s.appDB(h)
		}
		target := "east1"
		for n := 0; ; {
			select {
			case <-w.stop:
				return
			default:
			}
			_, err := pools[target].Exec("INSERT INTO app.t (v) VALUES (?)", base+n)
			if err == nil {
				w.acked.Add(1)
				n++
				continue
			}
			if strings.Contains(err.Error(), "Duplicate entry") {
				// Acknowledged before, the answer lost: count it once.
				w.acked.Add(1)
				n++
				continue
			}
			w.fails.Add(1)
			for i, h := range eastHosts {
				if h == target {
					target = eastHosts[(i+1)%len(eastHosts)]
					break
				}
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	return w
}

// watchWritable polls read_only on every host until stopped and records
// every round in which two hosts were writable in two consecutive polls.
func watchWritable(s *site, hosts []string) (stop func() []string) {
	quit := make(chan struct{})
	var violations []string
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		dbs := map[string]*sql.DB{}
		for _, h := range hosts {
			dbs[h] = s.db(h)
		}
		var prev []string
		begin := time.Now()
		for {
			select {
			case <-quit:
				return
			default:
			}
			var now []string
			for _, h := range hosts {
				var ro int
				if err := dbs[h].QueryRow("SELECT @@global.read_only").Scan(&ro); err == nil && ro == 0 {
					now = append(now, h)
				}
			}
			if len(now) > 1 && len(prev) > 1 {
				violations = append(violations, fmt.Sprintf("%s (+%v) writable: %v", time.Now().Format("15:04:05.000"), time.Since(begin).Round(time.Millisecond), now))
			}
			prev = now
			time.Sleep(20 * time.Millisecond)
		}
	}()
	return func() []string {
		close(quit)
		wg.Wait()
		return violations
	}
}

// TestSwitchAndBack: under a write load, switch then switch to east1:
// one writable primary at any time, every acknowledged write present once
// on every host.
func TestSwitchAndBack(t *testing.T) {
	s := startSandbox(t, oneSite)
	s.createApp()
	stopWatch := watchWritable(s, eastHosts)
	w := startWriter(s, 1_000_000)
	awaitAcked(t, &w.acked, 50, 10*time.Second)
	lines := s.mustCctrl("east2", "switch")
	t.Logf("switch: %v", lines)
	r := s.status("east2")
	if r.GetPrimary() == "east1" {
		t.Fatalf("switch left east1 primary")
	}
	first := r.GetPrimary()
	// The writer reaches the new primary: writes go on after the switch.
	awaitAcked(t, &w.acked, 50, 10*time.Second)
	if got := s.writable(eastHosts); len(got) != 1 || got[0] != first {
		t.Errorf("after switch writable: %v, want [%s]", got, first)
	}
	// east1 is a replica now; the manager refuses it as a candidate
	// until its replicator is ONLINE as one (it goes offline to change
	// role after the switch reports complete: wait for the role too).
	s.waitRole("east1", "slave", "ONLINE", 30*time.Second)
	lines = s.mustCctrl("east3", "switch", "to", "east1")
	t.Logf("switch to east1: %v", lines)
	if p := s.status("east3").GetPrimary(); p != "east1" {
		t.Fatalf("primary %s after switch to east1", p)
	}
	awaitAcked(t, &w.acked, 50, 10*time.Second)
	close(w.stop)
	w.done.Wait()
	if got := s.writable(eastHosts); len(got) != 1 || got[0] != "east1" {
		t.Errorf("after switch back writable: %v", got)
	}
	if v := stopWatch(); len(v) > 0 {
		t.Errorf("two writable primaries: %v", v)
	}
	s.sameEverywhere(30*time.Second, eastHosts, "app")
	var n int64
	s.db("east2").QueryRow("SELECT COUNT(*) FROM app.t WHERE v >= 1000000").Scan(&n)
	t.Logf("acknowledged %d writes, %d refused during the switches", w.acked.Load(), w.fails.Load())
	if n != w.acked.Load() {
		t.Errorf("%d rows on east2, %d writes acknowledged", n, w.acked.Load())
	}
	for _, h := range eastHosts {
		s.waitState(h, "ONLINE")
	}
}

// iptables runs iptables, in network namespace ns unless it is "",
// failing the test on error.
func iptables(t *testing.T, ns string, args ...string) {
	t.Helper()
	cmd := exec.Command("iptables", args...)
	if ns != "" {
		cmd = exec.Command("ip", append([]string{"netns", "exec", ns, "iptables"}, args...)...)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(cmd.Args, " "), err, out)
	}
}

// isolate cuts every packet between host and the others (both ways);
// the returned func heals the partition.
func (s *site) isolate(host string, others ...string) func() {
	t := s.t
	t.Helper()
	testutil.Require(t, os.Geteuid() == 0, "the partition test needs root for iptables")
	_, err := exec.LookPath("iptables")
	testutil.Require(t, err == nil, "the partition test needs iptables (make deps installs it)")
	var rules [][]string
	for _, o := range others {
		rules = append(rules, []string{"-s", s.addr(host), "-d", s.addr(o), "-j", "DROP"},
			[]string{"-s", s.addr(o), "-d", s.addr(host), "-j", "DROP"})
	}
	return s.dropInput(rules)
}

// TestPartitionFencesPrimary: the primary's host is cut off from the
// other two. Its manager loses the quorum and makes its database
// read-only; the majority promotes a replica after the fencing grace.
// Never two writable primaries (polled throughout).
func TestPartitionFencesPrimary(t *testing.T) {
	s := startSandbox(t, oneSite)
	s.createApp()
	stopWatch := watchWritable(s, eastHosts)
	heal := s.isolate("east1", "east2", "east3")
	cut := time.Now()
	testutil.Eventually(t, 8*time.Second, func() error {
		var ro int
		s.db("east1").QueryRow("SELECT @@global.read_only").Scan(&ro)
		if ro != 1 {
			return fmt.Errorf("east1 still writable")
		}
		return nil
	})
	fenced := time.Since(cut)
	r := s.waitStatus("east2", 20*time.Second, "failover on the majority side", func(r *managerpb.StatusReply) error {
		if r.GetPrimary() == "east1" || r.GetTransition() != "" {
			return fmt.Errorf("primary %s %s", r.GetPrimary(), r.GetTransition())
		}
		return nil
	})
	primary := r.GetPrimary()
	testutil.Eventually(t, 10*time.Second, func() error {
		_, err := s.appDB(primary).Exec("INSERT INTO app.t (v) VALUES (7)")
		return err
	})
	if b, err := os.ReadFile(filepath.Join(s.cfg.Dir, "east1", "continuent", "var", "log", "manager.log")); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.Contains(l, "quorum") || strings.Contains(l, "fenc") {
				t.Log(l)
			}
		}
	}
	t.Logf("cut at %s", cut.Format("15:04:05.000"))
	t.Logf("east1 fenced itself %v after the cut; %s primary and writable after %v", fenced.Round(time.Millisecond), primary, time.Since(cut).Round(time.Millisecond))
	heal()
	// east1's manager rejoins and learns the new state (its database is
	// watched all along: it must not turn writable meanwhile).
	s.waitStatus("east1", 30*time.Second, "east1's manager knows the new primary", func(r *managerpb.StatusReply) error {
		if r.GetPrimary() != primary || r.GetTerm() < 2 {
			return fmt.Errorf("primary %s, term %d", r.GetPrimary(), r.GetTerm())
		}
		return nil
	})
	if v := stopWatch(); len(v) > 0 {
		t.Errorf("two writable primaries: %v", v)
	}
	if got := s.writable(eastHosts); len(got) != 1 || got[0] != primary {
		t.Errorf("after healing writable: %v, want [%s]", got, primary)
	}
	lines, err := s.cctrl("east3", false, "datasource", "east1", "recover")
	if err != nil {
		t.Fatalf("recover east1: %v", err)
	}
	t.Logf("recover: %v", lines)
	s.sameEverywhere(30*time.Second, eastHosts, "app")
}

// witnessSite has two database hosts and a witness (a manager only).
var witnessSite = strings.Replace(oneSite, "members=east1,east2,east3\n", "members=east1,east2\nwitnesses=east3\n", 1)

// TestWitnessVotes: with two database hosts and a witness, the death of
// the primary's host leaves the replica and the witness a majority: they
// elect a coordinator and promote the replica.
func TestWitnessVotes(t *testing.T) {
	s := startSandbox(t, witnessSite)
	r := s.status("east3")
	if len(r.GetMembers()) != 3 || len(r.GetDatasources()) != 2 {
		t.Fatalf("members %v, datasources %v", r.GetMembers(), r.GetDatasources())
	}
	s.exec("east1", "CREATE DATABASE app", "CREATE TABLE app.t (id INT PRIMARY KEY AUTO_INCREMENT, v INT UNIQUE)")
	s.sameEverywhere(20*time.Second, []string{"east1", "east2"}, "app")
	for _, p := range []string{"manager", "replicator", "mariadbd"} {
		s.kill9("east1", p)
	}
	s.waitStatus("east3", 20*time.Second, "failover to east2", func(r *managerpb.StatusReply) error {
		if r.GetPrimary() != "east2" || r.GetTransition() != "" {
			return fmt.Errorf("primary %s %s (coordinator %q)", r.GetPrimary(), r.GetTransition(), r.GetCoordinator())
		}
		return nil
	})
	testutil.Eventually(t, 10*time.Second, func() error {
		_, err := s.appDB("east2").Exec("INSERT INTO app.t (v) VALUES (1)")
		return err
	})
}

// dropInput inserts an INPUT rule dropping each of rules' matches; the
// returned func (also run at the test's end) removes them, once. On the
// WAN bed (CARBIDE_E2E_NETNS) a rule goes into the network namespace of
// the host its -d names (every host's without -d): packets between hosts
// never reach this machine's own firewall there.
func (s *site) dropInput(rules [][]string) func() {
	t := s.t
	t.Helper()
	type placed struct {
		ns   string
		rule []string
	}
	var in []placed
	for _, r := range rules {
		for _, ns := range s.rulePlaces(r) {
			in = append(in, placed{ns, r})
		}
	}
	for _, p := range in {
		iptables(t, p.ns, append([]string{"-I", "INPUT"}, p.rule...)...)
	}
	healed := false
	heal := func() {
		if healed {
			return
		}
		healed = true
		for _, p := range in {
			iptables(t, p.ns, append([]string{"-D", "INPUT"}, p.rule...)...)
		}
	}
	t.Cleanup(heal)
	return heal
}

// rulePlaces are the namespaces an INPUT rule goes into: this machine's
// (""), or on the WAN bed the one of the host its -d names, or every
// host's.
func (s *site) rulePlaces(rule []string) []string {
	if !s.netns {
		return []string{""}
	}
	for i, a := range rule[:len(rule)-1] {
		if a == "-d" {
			if h := s.hostOf(rule[i+1]); h != "" {
				return []string{s.nsOf(h)}
			}
		}
	}
	var all []string
	for h := range s.addrs() {
		all = append(all, s.nsOf(h))
	}
	sort.Strings(all)
	return all
}
