package manager

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/carbidedb/carbide/internal/textutil"
	"github.com/carbidedb/carbide/manager/policy"
	"github.com/carbidedb/carbide/rpc/gen/managerpb"
	"github.com/carbidedb/carbide/rpc/gen/replicatorpb"
	"github.com/carbidedb/carbide/rpc/reason"
)

var east = []string{"east1", "east2", "east3"}

// joined is an operation's reply as one string, for matching.
func joined(lines []string) string { return strings.Join(lines, " | ") }

// order checks that the log holds the given actions in this order.
func (f *fakeSite) order(t *testing.T, prefixes ...string) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	i := 0
	for _, l := range f.log {
		if i < len(prefixes) && strings.HasPrefix(l, prefixes[i]) {
			i++
		}
	}
	if i < len(prefixes) {
		t.Fatalf("want %q in this order; log:\n%s", prefixes, strings.Join(f.log, "\n"))
	}
}

func TestFailoverDatabaseDown(t *testing.T) {
	f := newFakeSite(t, "east1", east...)
	f.dbs["east1"].down = true
	a := f.agent(t, time.Second)
	lines, err := a.doFailover(context.Background(), "", "dataserver down", false)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(joined(lines), "FAILOVER TO east2 COMPLETE (east1 FAILED: dataserver down)") || strings.Contains(joined(lines), "WARNING") {
		t.Fatalf("reply %q", lines)
	}
	st := a.ledger.state()
	if st.Primary != "east2" || st.Transition != nil || st.Datasources["east1"].State != policy.Failed {
		t.Fatalf("state %+v", st)
	}
	f.order(t, "apply begin", "setrole east2 master", "apply promote east2", "read_only east2 false", "setrole east3 slave thl://east2:2112/")
	if a.leaseEnd("east2").Before(time.Now()) {
		t.Error("a promotion must count as a lease grant to the new primary")
	}
}

// The operator names a candidate that stored less than another replica:
// it first fetches the tail from that replica.
func TestFailoverFetchesTailFromAnotherReplica(t *testing.T) {
	f := newFakeSite(t, "east1", east...)
	f.dbs["east1"].down = true
	f.repls["east1"].cut = true
	f.repls["east2"].applied, f.repls["east2"].stored = 90, 90
	a := f.agent(t, time.Second)
	lines, err := a.doFailover(context.Background(), "east2", "by hand", false)
	if err != nil {
		t.Fatal(err)
	}
	if r := f.repls["east2"]; r.applied != 100 || r.role != policy.RoleMaster {
		t.Fatalf("east2 applied %d as %s; reply %q", r.applied, r.role, lines)
	}
	f.order(t, "setrole east2 slave thl://east3:2112/", "online east2 slave", "setrole east2 master", "apply promote east2")
}

// A candidate that cannot apply what it stored is not promoted: the
// failover ends, nothing is writable, and an alert names the seqnos.
func TestFailoverBlockedWhileCandidateLags(t *testing.T) {
	f := newFakeSite(t, "east1", east...)
	f.dbs["east1"].down = true
	f.repls["east2"].applied, f.repls["east2"].stuck = 90, true
	a := f.agent(t, 200*time.Millisecond)
	_, err := a.doFailover(context.Background(), "east2", "dataserver down", false)
	if err == nil || !strings.Contains(err.Error(), "east2 has applied seqno 90; seqnos 91 to 100") {
		t.Fatalf("err %v", err)
	}
	st := a.ledger.state()
	if st.Primary != "east1" || st.Transition != nil || st.Datasources["east1"].State != policy.Failed {
		t.Fatalf("state %+v", st)
	}
	if f.did("apply promote") || f.did("read_only east2 false") || f.did("setrole east2 master") {
		t.Fatalf("an incomplete candidate was promoted:\n%s", strings.Join(f.log, "\n"))
	}
	if !slices.ContainsFunc(st.Alerts, func(s string) bool { return strings.Contains(s, "FAILOVER TO east2 BLOCKED") }) {
		t.Errorf("alerts %q", st.Alerts)
	}
	if al, ok := st.ActiveAlert(failoverBlocked); !ok || !strings.Contains(al.Text, "seqnos 91 to 100") {
		t.Errorf("active alerts %+v: want the blocked failover", st.Active)
	}
	// Blocked again: the alert stays one, the history gains no line.
	history := len(st.Alerts)
	if _, err := a.doFailover(context.Background(), "east2", "dataserver down", false); err == nil {
		t.Fatal("a second attempt promoted the lagging candidate")
	}
	if st := a.ledger.state(); len(st.Active) != 1 || len(st.Alerts) != history {
		t.Errorf("after a second blocked attempt: active %+v, history %q", st.Active, st.Alerts)
	}

	// set force true; failover: promoted, and the reply says what it gives up.
	lines, err := a.doFailover(context.Background(), "east2", "by hand", true)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(joined(lines), "WARNING: forced failover to east2 gives up") || a.ledger.state().Primary != "east2" {
		t.Fatalf("reply %q, primary %s", lines, a.ledger.state().Primary)
	}
	if _, ok := a.ledger.state().ActiveAlert(failoverBlocked); ok {
		t.Error("the blocked failover's alert outlived the promotion")
	}
}

// The old primary neither answers nor refuses (cut off): the promotion
// waits until the lease the coordinator last granted it has run out.
func TestFailoverWaitsForTheOldPrimarysLease(t *testing.T) {
	f := newFakeSite(t, "east1", east...)
	f.dbs["east1"].cut, f.repls["east1"].cut = true, true
	a := f.agent(t, time.Second)
	a.grants["east1"] = time.Now().Add(-a.cfg.FenceAfter - leaseMargin + 700*time.Millisecond)
	begin := time.Now()
	lines, err := a.doFailover(context.Background(), "", "host down", false)
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(begin); took < 600*time.Millisecond {
		t.Fatalf("promoted %v after the start, before the old primary's lease ran out", took)
	}
	if !strings.Contains(joined(lines), "WARNING: could not fence east1's database") {
		t.Errorf("reply %q", lines)
	}
}

func TestFailoverCandidateRefusesToBecomeMaster(t *testing.T) {
	f := newFakeSite(t, "east1", east...)
	f.dbs["east1"].down = true
	f.repls["east2"].onlineErr = context.DeadlineExceeded
	a := f.agent(t, time.Second)
	_, err := a.doFailover(context.Background(), "east2", "dataserver down", false)
	if err == nil || !strings.Contains(err.Error(), "failover to east2 failed; the site has no primary until a failover succeeds") {
		t.Fatalf("err %v", err)
	}
	if st := a.ledger.state(); st.Transition != nil || st.Primary != "east1" || f.did("read_only east2 false") {
		t.Fatalf("state %+v; log %q", st, f.log)
	}
}

func TestFailoverReportsReplicasItCouldNotRepoint(t *testing.T) {
	f := newFakeSite(t, "east1", east...)
	f.dbs["east1"].down = true
	f.repls["east3"].applied, f.repls["east3"].stored = 90, 90
	a := f.agent(t, time.Second)
	f.repls["east3"].cut = true // after the facts were taken
	lines, err := a.doFailover(context.Background(), "", "dataserver down", false)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(joined(lines), "WARNING: could not re-point east3") || a.ledger.state().Primary != "east2" {
		t.Fatalf("reply %q", lines)
	}
}

func TestSwitch(t *testing.T) {
	f := newFakeSite(t, "east1", east...)
	a := f.agent(t, time.Second)
	lines, err := a.doSwitch(context.Background(), "east3")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(joined(lines), "SWITCH TO east3 COMPLETE (east1 was primary; final seqno 100") {
		t.Fatalf("reply %q", lines)
	}
	f.order(t, "apply begin", "read_only east1 true", "flush east1", "setrole east3 master", "apply promote east3", "read_only east3 false")
	if !f.did("setrole east1 slave thl://east3:2112/") || !f.did("setrole east2 slave thl://east3:2112/") {
		t.Errorf("the others were not re-pointed:\n%s", strings.Join(f.log, "\n"))
	}
}

// Any step failing before the promotion ends the switch: the old primary
// stays primary and no other host is made writable.
func TestSwitchAborts(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(*fakeSite)
		want  string
	}{
		{"old primary does not answer", func(f *fakeSite) { f.dbs["east1"].cut = true }, "i/o timeout"},
		{"old primary's replicator does not answer", func(f *fakeSite) { f.repls["east1"].cut = true }, "flush on east1"},
		{"candidate cannot apply", func(f *fakeSite) { f.repls["east2"].applied, f.repls["east2"].stuck = 90, true }, "east2 did not apply up to seqno 100"},
		{"candidate refuses the master role", func(f *fakeSite) { f.repls["east2"].onlineErr = context.Canceled }, "replicator of east2 online"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeSite(t, "east1", east...)
			tc.setup(f)
			a := f.agent(t, time.Second)
			_, err := a.doSwitch(context.Background(), "east2")
			if err == nil || !strings.Contains(err.Error(), "switch to east2 aborted, east1 stays primary") || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want one naming %q", err, tc.want)
			}
			if st := a.ledger.state(); st.Primary != "east1" || st.Transition != nil {
				t.Fatalf("state %+v", st)
			}
			if f.did("read_only east2 false") || f.did("apply promote") {
				t.Fatalf("promoted after an abort:\n%s", strings.Join(f.log, "\n"))
			}
		})
	}
}

func TestRecover(t *testing.T) {
	setup := func(t *testing.T) (*fakeSite, *Agent) {
		f := newFakeSite(t, "east1", east...)
		a := f.agent(t, time.Second)
		if err := a.apply(policy.Change{Op: policy.OpDatasource, Host: "east3", Value: policy.Failed, Reason: "by hand"}); err != nil {
			t.Fatal(err)
		}
		return f, a
	}
	t.Run("ok", func(t *testing.T) {
		f, a := setup(t)
		lines, err := a.doRecover(context.Background(), "east3", false)
		if err != nil || !strings.Contains(joined(lines), "DATASOURCE 'east3@east' RECOVERED (replica of east1") {
			t.Fatalf("reply %q, %v", lines, err)
		}
		if a.ledger.state().Datasources["east3"].State != policy.Online || !f.dbs["east3"].readOnly {
			t.Fatalf("state %+v", a.ledger.state().Datasources["east3"])
		}
	})
	t.Run("database down", func(t *testing.T) {
		f, a := setup(t)
		f.dbs["east3"].down = true
		_, err := a.doRecover(context.Background(), "east3", false)
		if err == nil || !strings.Contains(err.Error(), "cannot recover east3: its database does not answer") {
			t.Fatalf("err %v", err)
		}
		if a.ledger.state().Datasources["east3"].State != policy.Failed {
			t.Fatal("recovered a host whose database does not answer")
		}
	})
	t.Run("diverged", func(t *testing.T) {
		f, a := setup(t)
		f.repls["east3"].diverges, f.repls["east3"].state = true, "OFFLINE:NORMAL"
		_, err := a.doRecover(context.Background(), "east3", false)
		if err == nil || !strings.Contains(err.Error(), "its history diverged from the primary east1") {
			t.Fatalf("err %v", err)
		}
		if a.ledger.state().Datasources["east3"].State != policy.Failed {
			t.Fatal("recovered a diverged host")
		}
	})
	t.Run("half-copied", func(t *testing.T) {
		_, a := setup(t)
		a.pool.peers["east3"].facts.Incomplete = "mysqldump from east2 began at 10:00"
		_, err := a.doRecover(context.Background(), "east3", false)
		// The caller (tprovision waits for this refusal to clear) decides
		// on the reason the gRPC status carries, not on the words.
		if got := reason.Of(toStatus(err)); got != managerpb.Reason_REASON_INCOMPLETE_COPY {
			t.Fatalf("reason %v of %v", got, err)
		}
		if a.ledger.state().Datasources["east3"].State != policy.Failed {
			t.Fatal("recovered a half-copied host")
		}
		if _, err := a.doRecover(context.Background(), "east3", true); err != nil {
			t.Fatalf("forced: %v", err)
		}
	})
	t.Run("the primary", func(t *testing.T) {
		_, a := setup(t)
		if _, err := a.doRecover(context.Background(), "east1", false); err == nil || !strings.Contains(err.Error(), "east1 is the primary; nothing to recover") {
			t.Fatalf("err %v", err)
		}
	})
}

// The candidate is chosen on what the replicators say at the failover, not
// on facts up to 500 ms old: here east3's last report says it stored 90,
// but it has stored and applied 100 since, while east2 stored 100 and
// applied only 90 (a lock): east3 is promoted, at once.
func TestFailoverRanksCandidatesOnFreshStatus(t *testing.T) {
	f := newFakeSite(t, "east1", east...)
	f.dbs["east1"].down = true
	f.repls["east2"].applied, f.repls["east2"].stuck = 90, true
	f.repls["east3"].applied, f.repls["east3"].stored = 90, 90
	a := f.agent(t, 200*time.Millisecond)
	f.repls["east3"].applied, f.repls["east3"].stored = 100, 100 // after its last report
	lines, err := a.doFailover(context.Background(), "", "dataserver down", false)
	if err != nil {
		t.Fatal(err)
	}
	if st := a.ledger.state(); st.Primary != "east3" {
		t.Fatalf("primary %s, want east3; reply %q", st.Primary, lines)
	}
}

// A replica's replicator running as master is made a slave of the primary
// again under AUTOMATIC, and left alone under MAINTENANCE: an operator
// moving the master role by hand (trepctl setrole) puts the site in
// maintenance first, as the guide's procedures do.
func TestReconcileLeavesRolesAloneInMaintenance(t *testing.T) {
	for _, mode := range []string{policy.Automatic, policy.Maintenance} {
		f := newFakeSite(t, "east1", east...)
		f.repls["east2"].role, f.repls["east2"].uri = policy.RoleMaster, ""
		a := f.agent(t, time.Second)
		if mode == policy.Maintenance {
			if err := a.ledger.apply(policy.Change{Op: policy.OpPolicy, Value: policy.Maintenance}); err != nil {
				t.Fatal(err)
			}
		}
		facts := map[string]policy.Facts{}
		for _, h := range east {
			facts[h] = policy.Facts{Host: h, Alive: true, ReplRole: f.repls[h].role, ReplState: "ONLINE", ReplKind: replicatorpb.ReplicatorState_REPLICATOR_STATE_ONLINE}
		}
		a.reconcile(context.Background(), a.ledger.state(), facts)
		if got, want := f.did("setrole east2 slave"), mode == policy.Automatic; got != want {
			t.Errorf("%s: east2 made a slave again: %v, want %v", mode, got, want)
		}
	}
}

// The monitor's failover decision names a candidate from the last
// reports; the failover itself ranks on what the replicators say then:
// east2 (stale report: ahead) stored everything but cannot apply it,
// east3 has applied everything since its last report.
func TestAutomaticFailoverRanksOnFreshStatus(t *testing.T) {
	f := newFakeSite(t, "east1", east...)
	f.dbs["east1"].down = true
	f.repls["east2"].applied, f.repls["east2"].stuck = 90, true
	f.repls["east3"].applied, f.repls["east3"].stored = 80, 80
	a := f.agent(t, 200*time.Millisecond)
	f.repls["east3"].applied, f.repls["east3"].stored = 100, 100 // after its last report
	a.execute(context.Background(), policy.Decision{Kind: policy.DecideFailover, Host: "east1", To: "east2", Reason: "dataserver down"})
	if st := a.ledger.state(); st.Primary != "east3" {
		t.Fatalf("primary %s, want east3", st.Primary)
	}
}

// TestCrossErrorFitsTheFacts: a cross-site service stopped on a conflict
// (an error naming both rows, hundreds of bytes) leaves the host's facts
// small enough to gossip, with every service's conflict count; they were
// dropped whole, and the other site never learnt the service had stopped.
func TestCrossErrorFitsTheFacts(t *testing.T) {
	e := "Event application failed: seqno=2 fragno=0 message=conflict on xs.t id=5: the INSERT from west of " +
		`{"id":5,"v":"wést"} finds its key taken: this database holds {"id":5,"v":"east2"}; ` + strings.Repeat("the conflict policy is stop ", 20)
	f := policy.Facts{Host: "east2", Alive: true, ReplRole: "slave", ReplState: "ONLINE", ReplKind: replicatorpb.ReplicatorState_REPLICATOR_STATE_ONLINE, Applied: 123456, MaxStored: 123456, MasterURI: "thl://east1:2112/",
		Cross:     map[string]string{"west": "OFFLINE:ERROR: " + textutil.Clip(firstLine(e), crossErrorMax), "north": "OFFLINE:ERROR: " + textutil.Clip(firstLine(e), crossErrorMax)},
		Conflicts: map[string]uint64{"east": 1 << 40, "west": 1 << 40, "north": 1 << 40}}
	b, err := gossiped(f)
	if err != nil || len(b) > memberlist.MetaMaxSize {
		t.Fatalf("facts of %d bytes (%v), more than gossip takes (%d)", len(b), err, memberlist.MetaMaxSize)
	}
	var back policy.Facts
	if err := json.Unmarshal(b, &back); err != nil || len(back.Conflicts) != 3 {
		t.Errorf("the conflict counts did not go out whole: %s (%v)", b, err)
	}
}
