package actions

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/carbidedb/carbide/manager/policy"
	"github.com/carbidedb/carbide/rpc/gen/replicatorpb"
	"github.com/carbidedb/carbide/rpc/reason"
)

func TestFailoverDatabaseDown(t *testing.T) {
	h := newHarness(t, "east1", east...)
	h.DBs["east1"].Down = true
	x := h.actions(time.Second)
	lines, err := x.Failover(context.Background(), "", "dataserver down", false)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(joined(lines), "FAILOVER TO east2 COMPLETE (east1 FAILED: dataserver down)") || strings.Contains(joined(lines), "WARNING") {
		t.Fatalf("reply %q", lines)
	}
	st := h.state()
	if st.Primary != "east2" || st.Transition != nil || st.Datasources["east1"].State != policy.Failed {
		t.Fatalf("state %+v", st)
	}
	h.Order(t, "apply begin", "setrole east2 master", "apply promote east2", "read_only east2 false", "setrole east3 slave thl://east2:2112/")
	if _, ok := h.granted["east2"]; !ok {
		t.Error("a promotion must count as a lease grant to the new primary")
	}
	if len(h.history) == 0 || !strings.HasPrefix(h.history[0], "FAILOVER TO east2 COMPLETE") {
		t.Errorf("alert history %q", h.history)
	}
}

// The old primary's database answers: it is fenced (sessions killed,
// read-only) before the candidate takes writes.
func TestFailoverFencesTheOldPrimary(t *testing.T) {
	h := newHarness(t, "east1", east...)
	x := h.actions(time.Second)
	if _, err := x.Failover(context.Background(), "", "by hand", false); err != nil {
		t.Fatal(err)
	}
	h.Order(t, "apply begin", "fence east1", "apply promote east2", "read_only east2 false")
	if !h.Did("offline east1") {
		t.Error("the old primary's replicator was not stopped")
	}
}

// The operator names a candidate that stored less than another replica:
// it first fetches the tail from that replica.
func TestFailoverFetchesTailFromAnotherReplica(t *testing.T) {
	h := newHarness(t, "east1", east...)
	h.DBs["east1"].Down = true
	h.Repls["east1"].Cut = true
	h.Repls["east2"].Applied, h.Repls["east2"].Stored = 90, 90
	x := h.actions(time.Second)
	lines, err := x.Failover(context.Background(), "east2", "by hand", false)
	if err != nil {
		t.Fatal(err)
	}
	if r := h.Repls["east2"]; r.Applied != 100 || r.Role != policy.RoleMaster {
		t.Fatalf("east2 applied %d as %s; reply %q", r.Applied, r.Role, lines)
	}
	h.Order(t, "setrole east2 slave thl://east3:2112/", "online east2 slave", "setrole east2 master", "apply promote east2")
}

// The old primary's replicator answers and its THL holds more than any
// replica stored (its database died after writing the binlog): the
// candidate, a slave of it, applies that tail before it is promoted.
func TestFailoverFetchesTailFromTheOldPrimary(t *testing.T) {
	h := newHarness(t, "east1", east...)
	h.DBs["east1"].Down = true
	h.Repls["east1"].Stored = 110
	x := h.actions(time.Second)
	if _, err := x.Failover(context.Background(), "", "dataserver down", false); err != nil {
		t.Fatal(err)
	}
	h.Order(t, "flush east1", "setrole east2 master", "apply promote east2")
	if r := h.Repls["east2"]; r.Applied != 110 {
		t.Fatalf("east2 applied %d, want 110", r.Applied)
	}
}

// The old primary's THL is of another lineage (epoch): what it stored is
// not looked for.
func TestFailoverIgnoresOldPrimaryOfAnotherEpoch(t *testing.T) {
	h := newHarness(t, "east1", east...)
	h.DBs["east1"].Down = true
	h.Repls["east1"].Stored, h.Repls["east1"].Epoch = 110, 7
	x := h.actions(time.Second)
	if _, err := x.Failover(context.Background(), "", "dataserver down", false); err != nil {
		t.Fatal(err)
	}
	if h.Did("setrole east2 slave thl://east1:2112/") {
		t.Fatal("fetched from an old primary of another epoch")
	}
}

// A candidate that cannot apply what it stored is not promoted: the
// failover ends, nothing is writable, and an alert names the seqnos.
func TestFailoverBlockedWhileCandidateLags(t *testing.T) {
	h := newHarness(t, "east1", east...)
	h.DBs["east1"].Down = true
	h.Repls["east2"].Applied, h.Repls["east2"].Stuck = 90, true
	x := h.actions(200 * time.Millisecond)
	_, err := x.Failover(context.Background(), "east2", "dataserver down", false)
	if err == nil || !strings.Contains(err.Error(), "east2 has applied seqno 90; seqnos 91 to 100") {
		t.Fatalf("err %v", err)
	}
	st := h.state()
	if st.Primary != "east1" || st.Transition != nil || st.Datasources["east1"].State != policy.Failed {
		t.Fatalf("state %+v", st)
	}
	if h.Did("apply promote") || h.Did("read_only east2 false") || h.Did("setrole east2 master") {
		t.Fatalf("an incomplete candidate was promoted:\n%s", strings.Join(h.Log, "\n"))
	}
	if al, ok := h.alert(FailoverBlocked); !ok || !strings.Contains(al, "FAILOVER TO east2 BLOCKED") || !strings.Contains(al, "seqnos 91 to 100") {
		t.Errorf("active alert %q: want the blocked failover", al)
	}

	// set force true; failover: promoted, and the reply says what it
	// gives up and what the candidate's THL dropped.
	h.Repls["east2"].Dropped = &replicatorpb.DroppedTail{FromSeqno: 91, ToSeqno: 100}
	lines, err := x.Failover(context.Background(), "east2", "by hand", true)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(joined(lines), "WARNING: forced failover to east2 gives up") || h.state().Primary != "east2" ||
		!strings.Contains(joined(lines), "dropped seqnos 91 to 100") {
		t.Fatalf("reply %q, primary %s", lines, h.state().Primary)
	}
	if _, ok := h.alert(FailoverBlocked); ok {
		t.Error("the blocked failover's alert outlived the promotion")
	}
}

// A forced failover whose candidate's THL dropped nothing says so; one
// whose replicator does not say, says that.
func TestForcedFailoverSaysWhatTheTHLDropped(t *testing.T) {
	h := newHarness(t, "east1", east...)
	h.DBs["east1"].Down = true
	h.Repls["east2"].Applied, h.Repls["east2"].Stuck = 90, true
	x := h.actions(100 * time.Millisecond)
	lines, err := x.Failover(context.Background(), "east2", "by hand", true)
	if err != nil || !strings.Contains(joined(lines), "east2's THL held nothing its database never applied") {
		t.Fatalf("reply %q, %v", lines, err)
	}
}

// The candidate's replicator does not answer: it lacks everything, and
// the failover stops.
func TestFailoverCandidateDoesNotAnswer(t *testing.T) {
	h := newHarness(t, "east1", east...)
	h.DBs["east1"].Down = true
	x := h.actions(100 * time.Millisecond)
	h.Repls["east2"].Cut = true
	_, err := x.Failover(context.Background(), "east2", "by hand", false)
	if err == nil || !strings.Contains(err.Error(), "its replicator does not answer") {
		t.Fatalf("err %v", err)
	}
}

// The candidate cannot read the tail another replica holds.
func TestFailoverCannotFetchTheTail(t *testing.T) {
	h := newHarness(t, "east1", east...)
	h.DBs["east1"].Down = true
	h.Repls["east1"].Cut = true
	h.Repls["east2"].Applied, h.Repls["east2"].Stored = 90, 90
	h.Repls["east2"].OnlineErr = errors.New("no route")
	x := h.actions(100 * time.Millisecond)
	_, err := x.Failover(context.Background(), "east2", "by hand", false)
	if err == nil || !strings.Contains(err.Error(), "it could not read from east3") {
		t.Fatalf("err %v", err)
	}
}

// The old primary neither answers nor refuses (cut off): the promotion
// waits until its lease has run out.
func TestFailoverWaitsForTheOldPrimarysLease(t *testing.T) {
	h := newHarness(t, "east1", east...)
	h.DBs["east1"].Cut, h.Repls["east1"].Cut = true, true
	h.leaseEnd["east1"] = time.Now().Add(700 * time.Millisecond)
	x := h.actions(time.Second)
	begin := time.Now()
	lines, err := x.Failover(context.Background(), "", "host down", false)
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

// The wait for the lease ends with the context: nothing is promoted.
func TestFailoverLeaseWaitCancelled(t *testing.T) {
	h := newHarness(t, "east1", east...)
	h.DBs["east1"].Cut, h.Repls["east1"].Cut = true, true
	h.leaseEnd["east1"] = time.Now().Add(time.Hour)
	x := h.actions(time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	if _, err := x.Failover(ctx, "", "host down", false); err == nil {
		t.Fatal("promoted while the old primary may hold its lease")
	}
	if st := h.state(); st.Primary != "east1" || st.Transition != nil || h.Did("apply promote") {
		t.Fatalf("state %+v", st)
	}
}

func TestFailoverCandidateRefusesToBecomeMaster(t *testing.T) {
	h := newHarness(t, "east1", east...)
	h.DBs["east1"].Down = true
	h.Repls["east2"].OnlineErr = context.DeadlineExceeded
	x := h.actions(time.Second)
	_, err := x.Failover(context.Background(), "east2", "dataserver down", false)
	if err == nil || !strings.Contains(err.Error(), "failover to east2 failed; the site has no primary until a failover succeeds") {
		t.Fatalf("err %v", err)
	}
	if st := h.state(); st.Transition != nil || st.Primary != "east1" || h.Did("read_only east2 false") {
		t.Fatalf("state %+v; log %q", st, h.Log)
	}
}

func TestFailoverReportsReplicasItCouldNotRepoint(t *testing.T) {
	h := newHarness(t, "east1", east...)
	h.DBs["east1"].Down = true
	h.Repls["east3"].Applied, h.Repls["east3"].Stored = 90, 90
	x := h.actions(time.Second)
	h.Repls["east3"].Cut = true // after the facts were taken
	lines, err := x.Failover(context.Background(), "", "dataserver down", false)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(joined(lines), "WARNING: could not re-point east3") || h.state().Primary != "east2" {
		t.Fatalf("reply %q", lines)
	}
}

// The candidate is chosen on what the replicators say at the failover, not
// on facts up to 500 ms old: here east3's last report says it stored 90,
// but it has stored and applied 100 since, while east2 stored 100 and
// applied only 90 (a lock): east3 is promoted, at once.
func TestFailoverRanksCandidatesOnFreshStatus(t *testing.T) {
	h := newHarness(t, "east1", east...)
	h.DBs["east1"].Down = true
	h.Repls["east2"].Applied, h.Repls["east2"].Stuck = 90, true
	h.Repls["east3"].Applied, h.Repls["east3"].Stored = 90, 90
	x := h.actions(200 * time.Millisecond)
	h.Repls["east3"].Applied, h.Repls["east3"].Stored = 100, 100 // after its last report
	lines, err := x.Failover(context.Background(), "", "dataserver down", false)
	if err != nil {
		t.Fatal(err)
	}
	if st := h.state(); st.Primary != "east3" {
		t.Fatalf("primary %s, want east3; reply %q", st.Primary, lines)
	}
}

// Refusals change nothing: a transition under way, no candidate, a
// ledger that stopped taking changes (no longer the coordinator).
func TestFailoverRefusals(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(*harness)
		to    string
		want  string
		user  bool
	}{
		{"transition under way", func(h *harness) {
			_ = h.Ledger().Apply(policy.Change{Op: policy.OpBegin, Transition: &policy.Transition{Kind: policy.Switch, From: "east1", To: "east2"}})
		}, "", "is under way", true},
		{"no such candidate", func(*harness) {}, "west9", "west9", true},
		{"not the coordinator", func(h *harness) { h.ApplyFails = policy.OpBegin }, "", "stopped being the coordinator", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, "east1", east...)
			tc.setup(h)
			x := h.actions(time.Second)
			_, err := x.Failover(context.Background(), tc.to, "by hand", false)
			if err == nil || !strings.Contains(err.Error(), tc.want) || reason.Refused(err) != tc.user {
				t.Fatalf("err %v (a refusal: %v), want %q", err, reason.Refused(err), tc.want)
			}
			if h.Did("fence") || h.Did("setrole") || h.Did("apply promote") {
				t.Fatalf("acted:\n%s", strings.Join(h.Log, "\n"))
			}
		})
	}
}

// The promotion itself is refused (the coordinator lost office after
// the candidate became master).
func TestFailoverPromotionRefused(t *testing.T) {
	h := newHarness(t, "east1", east...)
	h.DBs["east1"].Down = true
	h.ApplyFails = policy.OpPromote
	x := h.actions(time.Second)
	if _, err := x.Failover(context.Background(), "", "by hand", false); err == nil {
		t.Fatal("no error when the promotion was refused")
	}
	if h.Did("read_only east2 false") {
		t.Fatal("made writable without a promotion")
	}
}
