package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/carbidedb/carbide/rpc/gen/managerpb"
)

// managers runs `manager VERB` on each host through its wrapper.
func (s *site) managers(verb string, hosts ...string) {
	s.t.Helper()
	for _, h := range hosts {
		if out, err := s.tool(h, "continuent", "manager", verb); err != nil {
			s.t.Fatalf("%s: manager %s: %v\n%s", h, verb, err, out)
		}
	}
}

// TestManagerStateSurvivesRestartAndQuorum: policy and datasource states
// survive a restart of every manager; with two of three managers dead
// there is no coordinator, status says why, commands are refused and the
// primary fences itself; with them back, all is as before.
func TestManagerStateSurvivesRestartAndQuorum(t *testing.T) {
	s := startSandbox(t, oneSite)
	s.mustCctrl("east2", "set", "policy", "maintenance")
	s.mustCctrl("east1", "datasource", "east3", "shun")
	s.managers("stop", eastHosts...)
	s.managers("start", eastHosts...)
	s.waitStatus("east3", 15*time.Second, "state after restarting every manager", func(r *managerpb.StatusReply) error {
		if r.GetCoordinator() == "" || r.GetPolicy() != "MAINTENANCE" || r.GetPrimary() != "east1" || dsOf(r, "east3").GetState() != "SHUNNED" {
			return fmt.Errorf("coordinator %q policy %s primary %s east3 %s", r.GetCoordinator(), r.GetPolicy(), r.GetPrimary(), dsOf(r, "east3").GetState())
		}
		return nil
	})
	waitWritable(s, "east1")

	s.kill9("east2", "manager")
	s.kill9("east3", "manager")
	r := s.waitStatus("east1", 10*time.Second, "no coordinator", func(r *managerpb.StatusReply) error {
		if r.GetCoordinator() != "" || !strings.Contains(r.GetCoordinatorProblem(), "no quorum") {
			return fmt.Errorf("coordinator %q (%s)", r.GetCoordinator(), r.GetCoordinatorProblem())
		}
		return nil
	})
	t.Logf("status without quorum: %s", r.GetCoordinatorProblem())
	if _, err := s.cctrl("east1", false, "switch"); err == nil || !strings.Contains(err.Error(), "no coordinator") {
		t.Errorf("switch without a coordinator: %v", err)
	}
	waitReadOnly(s, "east1")
	s.managers("start", "east2", "east3")
	s.waitStatus("east1", 15*time.Second, "coordinator again", func(r *managerpb.StatusReply) error {
		if r.GetCoordinator() == "" {
			return fmt.Errorf("no coordinator")
		}
		return nil
	})
	waitWritable(s, "east1")
	s.mustCctrl("east1", "datasource", "east3", "welcome")
	s.mustCctrl("east1", "set", "policy", "automatic")
}

func waitWritable(s *site, host string) {
	s.t.Helper()
	waitRO(s, host, 0)
}

func waitReadOnly(s *site, host string) {
	s.t.Helper()
	waitRO(s, host, 1)
}

func waitRO(s *site, host string, want int) {
	s.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var ro int
		err := s.db(host).QueryRow("SELECT @@global.read_only").Scan(&ro)
		if err == nil && ro == want {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("%s: read_only is %d (%v), want %d", host, ro, err, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestManagerCommands: operator mistakes get one clear sentence and change
// nothing; service HOST/mysql restart goes through the host's manager and
// the replica comes back ONLINE by itself under AUTOMATIC; the primary's
// database restarted in maintenance, with nothing written since (its new
// binlog file holds no transaction), a switch still completes.
func TestManagerCommands(t *testing.T) {
	s := startSandbox(t, oneSite)
	for _, c := range []struct {
		args  []string
		force bool
		want  string
	}{
		{[]string{"frobnicate"}, false, `unknown command "frobnicate"`},
		{[]string{"switch", "to", "east9"}, false, "east9 is not a datasource of east (datasources: east1, east2, east3)"},
		{[]string{"switch", "east2"}, false, "usage: switch [to HOST]"},
		{[]string{"datasource", "east1", "shun"}, false, "east1 is the primary; shunning it stops all writes"},
		{[]string{"datasource", "east2", "welcome"}, false, "east2 is ONLINE, not SHUNNED"},
		{[]string{"datasource", "east2", "explode"}, false, `unknown action "explode"`},
		{[]string{"failover"}, false, "the primary east1 is ONLINE, not FAILED"},
		{[]string{"set", "policy", "sometimes"}, false, `unknown policy "sometimes"`},
		{[]string{"router", "east9", "offline"}, false, "east9 runs no connector of east"},
		{[]string{"service", "east2/redis", "restart"}, false, "name the database as HOST/mysql"},
	} {
		_, err := s.cctrl("east3", c.force, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", strings.Join(c.args, " "), err, c.want)
		}
	}
	r := s.status("east2")
	for _, d := range r.GetDatasources() {
		if d.GetState() != "ONLINE" {
			t.Errorf("after refused commands %s is %s", d.GetHost(), d.GetState())
		}
	}
	if r.GetPrimary() != "east1" || r.GetPolicy() != "AUTOMATIC" {
		t.Errorf("after refused commands: primary %s policy %s", r.GetPrimary(), r.GetPolicy())
	}

	lines := s.mustCctrl("east1", "service", "east2/mysql", "restart")
	t.Logf("service east2/mysql restart: %v", lines)
	s.exec("east1", "CREATE DATABASE app", "CREATE TABLE app.t (id INT PRIMARY KEY)", "INSERT INTO app.t VALUES (1),(2),(3)")
	s.waitStatus("east1", 30*time.Second, "east2 back ONLINE", func(r *managerpb.StatusReply) error {
		d := dsOf(r, "east2")
		if d.GetState() != "ONLINE" || d.GetReplicatorState() != "ONLINE" {
			return fmt.Errorf("east2 %s(%s), replicator %s", d.GetState(), d.GetReason(), d.GetReplicatorState())
		}
		return nil
	})
	s.sameEverywhere(20*time.Second, eastHosts, "app")

	s.mustCctrl("east1", "set", "policy", "maintenance")
	s.mustCctrl("east1", "service", "east1/mysql", "restart")
	s.waitStatus("east1", 30*time.Second, "east1 back", func(r *managerpb.StatusReply) error {
		d := dsOf(r, "east1")
		if d.GetDataserver() != "ONLINE" || d.GetReplicatorState() != "ONLINE" {
			return fmt.Errorf("east1 dataserver %s, replicator %s", d.GetDataserver(), d.GetReplicatorState())
		}
		return nil
	})
	s.mustCctrl("east1", "set", "policy", "automatic")
	t.Logf("switch after the primary's restart: %v", s.mustCctrl("east1", "switch"))
}

// TestRecoverRefusesUnreplicatedWrites: the primary commits a write its
// replicator never extracted, then dies; after the failover, recovering
// it is refused with the transaction named, and accepted with force.
func TestRecoverRefusesUnreplicatedWrites(t *testing.T) {
	s := startSandbox(t, oneSite)
	s.exec("east1", "CREATE DATABASE app", "CREATE TABLE app.t (id INT PRIMARY KEY)", "INSERT INTO app.t VALUES (1)")
	s.sameEverywhere(20*time.Second, eastHosts, "app")
	s.trepctl("east1", "offline")
	if _, err := s.appDB("east1").Exec("INSERT INTO app.t VALUES (2)"); err != nil {
		t.Fatal(err)
	}
	s.kill9("east1", "mariadbd")
	r := s.waitStatus("east2", 20*time.Second, "failover", func(r *managerpb.StatusReply) error {
		if r.GetPrimary() == "east1" || r.GetTransition() != "" {
			return fmt.Errorf("primary %s", r.GetPrimary())
		}
		return nil
	})
	s.mustCctrl(r.GetPrimary(), "service", "east1/mysql", "start")
	_, err := s.cctrl("east2", false, "datasource", "east1", "recover")
	if err == nil || !strings.Contains(err.Error(), "never reached the site") || !strings.Contains(err.Error(), "app.t") {
		t.Fatalf("recover of a primary with an unreplicated write: %v", err)
	}
	t.Logf("refused: %v", err)
	if d := dsOf(s.status("east2"), "east1"); d.GetState() != "FAILED" {
		t.Errorf("after the refusal east1 is %s", d.GetState())
	}
	lines, err := s.cctrl("east2", true, "datasource", "east1", "recover")
	if err != nil {
		t.Fatalf("recover with force: %v", err)
	}
	t.Logf("with force: %v", lines)
	if !strings.Contains(strings.Join(lines, "\n"), "WARNING") {
		t.Errorf("forced recover did not warn: %v", lines)
	}
}
