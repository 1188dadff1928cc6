package e2e

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/carbidedb/carbide/internal/testutil"
)

// TestCausalOrderAcrossStreams: west2 applies east's stream and west's on
// its own. With its cross-site service offline, east1 changes a row;
// west1 gets it and its client then changes that row again. west2 gets
// west1's write first, through its cluster service: it must hold it until
// it has east's (trepctl status says why it waits) — applied the other
// way round, east's older write would land last and west2 would differ
// from every other host without a word.
func TestCausalOrderAcrossStreams(t *testing.T) {
	ini, err := os.ReadFile("../../examples/msaa.ini")
	if err != nil {
		t.Fatal(err)
	}
	s := startSandbox(t, string(ini))
	s.exec("east1", "CREATE DATABASE app", "CREATE TABLE app.t (id INT PRIMARY KEY, v INT)", "INSERT INTO app.t VALUES (1, 0)")
	s.sameEverywhere(30*time.Second, allHosts, "app")

	if out, err := s.tool("west2", "replicator", "mm_trepctl", "-service", "east", "offline"); err != nil {
		t.Fatalf("mm_trepctl offline on west2: %v\n%s", err, out)
	}
	s.exec("east1", "UPDATE app.t SET v = 1 WHERE id = 1")
	testutil.Eventually(t, 20*time.Second, func() error {
		var v int
		if err := s.db("west1").QueryRow("SELECT v FROM app.t WHERE id = 1").Scan(&v); err != nil || v != 1 {
			return fmt.Errorf("west1 has v=%d (%v)", v, err)
		}
		return nil
	})
	s.exec("west1", "UPDATE app.t SET v = v + 10 WHERE id = 1")
	testutil.Eventually(t, 20*time.Second, func() error {
		if w := s.field("west2", "waitingFor"); !strings.Contains(w, "waits for service east") {
			return fmt.Errorf("west2's cluster service shows waitingFor %q", w)
		}
		return nil
	})
	var v int
	if err := s.db("west2").QueryRow("SELECT v FROM app.t WHERE id = 1").Scan(&v); err != nil || v != 0 {
		t.Fatalf("west2 has v=%d (%v) while east's write is not applied there; want 0", v, err)
	}
	if out, err := s.tool("west2", "replicator", "mm_trepctl", "-service", "east", "online"); err != nil {
		t.Fatalf("mm_trepctl online on west2: %v\n%s", err, out)
	}
	got := s.sameEverywhere(30*time.Second, allHosts, "app")
	t.Logf("every host equal: %v", got)
	if err := s.db("west2").QueryRow("SELECT v FROM app.t WHERE id = 1").Scan(&v); err != nil || v != 11 {
		t.Fatalf("west2 has v=%d (%v), want 11", v, err)
	}
	if w := s.field("west2", "waitingFor"); w != "" {
		t.Errorf("west2 still shows waitingFor %q", w)
	}
}

// TestCrossSiteFromNeighbourWhenCutOff: west2, behind on east's stream,
// is cut off from every east host. Its cross-site service reads east's
// transactions from its neighbours' cross-site replicators instead, so a
// west write that depends on one of them is not held for as long as the
// cut lasts; once the cut heals it reads from east again.
func TestCrossSiteFromNeighbourWhenCutOff(t *testing.T) {
	ini, err := os.ReadFile("../../examples/msaa.ini")
	if err != nil {
		t.Fatal(err)
	}
	s := startSandbox(t, string(ini))
	s.exec("east1", "CREATE DATABASE app", "CREATE TABLE app.t (id INT PRIMARY KEY, v INT)", "INSERT INTO app.t VALUES (1, 0)")
	s.sameEverywhere(30*time.Second, allHosts, "app")
	mm := func(host string, args ...string) string {
		out, err := s.tool(host, "replicator", "mm_trepctl", args...)
		if err != nil {
			t.Fatalf("mm_trepctl %s on %s: %v\n%s", strings.Join(args, " "), host, err, out)
		}
		return out
	}
	mm("west2", "-service", "east", "offline")
	s.exec("east1", "UPDATE app.t SET v = 1 WHERE id = 1")
	value := func(host string, want int) func() error {
		return func() error {
			var v int
			if err := s.db(host).QueryRow("SELECT v FROM app.t WHERE id = 1").Scan(&v); err != nil || v != want {
				return fmt.Errorf("%s has v=%d (%v), want %d", host, v, err, want)
			}
			return nil
		}
	}
	testutil.Eventually(t, 20*time.Second, value("west1", 1))
	// East's THL servers cut off (the west replicators dial from no
	// address of their own host, so the cut is by east's address and
	// port): no west host can read east's stream.
	heal := s.cutTHL(2112, "east1", "east2", "east3")
	mm("west2", "-service", "east", "online")
	s.exec("west1", "UPDATE app.t SET v = v + 10 WHERE id = 1")
	testutil.Eventually(t, 30*time.Second, value("west2", 11))
	st := mm("west2", "-service", "east", "status")
	if !strings.Contains(st, "masterConnectUri        : thl://west") {
		t.Errorf("west2 cut off from east reads east's stream from:\n%s", st)
	}
	heal()
	s.exec("east1", "UPDATE app.t SET v = v + 100 WHERE id = 1")
	s.sameEverywhere(30*time.Second, allHosts, "app")
	testutil.Eventually(t, 30*time.Second, func() error {
		if st := mm("west2", "-service", "east", "status"); !strings.Contains(st, "masterConnectUri        : thl://east") {
			return fmt.Errorf("west2 does not read from east again:\n%s", st)
		}
		return nil
	})
}

// cutTHL drops every packet to port on hosts; the returned func heals it.
func (s *site) cutTHL(port int, hosts ...string) func() {
	t := s.t
	t.Helper()
	testutil.Require(t, os.Geteuid() == 0, "the cut needs root for iptables")
	var rules [][]string
	for _, h := range hosts {
		rules = append(rules, []string{"-p", "tcp", "-d", s.addr(h), "--dport", strconv.Itoa(port), "-j", "DROP"})
	}
	return s.dropInput(rules)
}
