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

func TestSwitch(t *testing.T) {
	h := newHarness(t, "east1", east...)
	x := h.actions(time.Second)
	lines, err := x.Switch(context.Background(), "east3")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(joined(lines), "SWITCH TO east3 COMPLETE (east1 was primary; final seqno 100") {
		t.Fatalf("reply %q", lines)
	}
	h.Order(t, "apply begin", "apply drained", "read_only east1 true", "flush east1", "setrole east3 master", "apply promote east3", "read_only east3 false")
	if !h.Did("setrole east1 slave thl://east3:2112/") || !h.Did("setrole east2 slave thl://east3:2112/") {
		t.Errorf("the others were not re-pointed:\n%s", strings.Join(h.Log, "\n"))
	}
	if len(h.drained) != 1 || h.drained[0] != "switch east1 -> east3" {
		t.Errorf("connectors drained for %q", h.drained)
	}
	if _, ok := h.granted["east3"]; !ok {
		t.Error("a promotion must count as a lease grant")
	}
}

// A replica that cannot be re-pointed is named in the reply; the switch
// is done.
func TestSwitchReportsReplicasItCouldNotRepoint(t *testing.T) {
	h := newHarness(t, "east1", east...)
	x := h.actions(time.Second)
	h.Repls["east2"].OnlineErr = errors.New("refused")
	lines, err := x.Switch(context.Background(), "east3")
	if err != nil || !strings.Contains(joined(lines), "WARNING: could not re-point east2") {
		t.Fatalf("reply %q, %v", lines, err)
	}
}

// The new primary's database does not take read_only=OFF at once: the
// switch is done (the enforce loop makes it writable), and says so in
// the log only.
func TestSwitchNewPrimaryNotWritable(t *testing.T) {
	h := newHarness(t, "east1", east...)
	x := h.actions(time.Second)
	h.DBs["east3"].Cut = true
	if _, err := x.Switch(context.Background(), "east3"); err != nil {
		t.Fatal(err)
	}
	if h.state().Primary != "east3" {
		t.Fatal("not promoted")
	}
}

// Any step failing before the promotion ends the switch: the old primary
// stays primary and no other host is made writable.
func TestSwitchAborts(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(*harness)
		want  string
	}{
		{"old primary does not answer", func(h *harness) { h.DBs["east1"].Cut = true }, "i/o timeout"},
		{"old primary's replicator does not answer", func(h *harness) { h.Repls["east1"].Cut = true }, "flush on east1"},
		{"candidate refuses the master role", func(h *harness) { h.Repls["east2"].OnlineErr = context.Canceled }, "replicator of east2 online"},
		{"coordinator lost office while draining", func(h *harness) { h.ApplyFails = policy.OpDrained }, "stopped being the coordinator"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, "east1", east...)
			tc.setup(h)
			x := h.actions(time.Second)
			_, err := x.Switch(context.Background(), "east2")
			if err == nil || !strings.Contains(err.Error(), "switch to east2 aborted, east1 stays primary") || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want one naming %q", err, tc.want)
			}
			if st := h.state(); st.Primary != "east1" || st.Transition != nil {
				t.Fatalf("state %+v", st)
			}
			if h.Did("read_only east2 false") || h.Did("apply promote") {
				t.Fatalf("promoted after an abort:\n%s", strings.Join(h.Log, "\n"))
			}
		})
	}
}

// Refusals change nothing.
func TestSwitchRefusals(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(*harness)
		to    string
		want  string
		user  bool
	}{
		{"transition under way", func(h *harness) {
			_ = h.Ledger().Apply(policy.Change{Op: policy.OpBegin, Transition: &policy.Transition{Kind: policy.Switch, From: "east1", To: "east3"}})
		}, "east2", "is under way", true},
		{"primary failed", func(h *harness) {
			_ = h.Ledger().Apply(policy.Change{Op: policy.OpDatasource, Host: "east1", Value: policy.Failed})
		}, "east2", "use failover instead of switch", true},
		{"no such candidate", func(*harness) {}, "west9", "west9", true},
		{"not the coordinator", func(h *harness) { h.ApplyFails = policy.OpBegin }, "east2", "stopped being the coordinator", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, "east1", east...)
			tc.setup(h)
			x := h.actions(time.Second)
			_, err := x.Switch(context.Background(), tc.to)
			if err == nil || !strings.Contains(err.Error(), tc.want) || reason.Refused(err) != tc.user {
				t.Fatalf("err %v (a refusal: %v), want %q", err, reason.Refused(err), tc.want)
			}
			if h.Did("read_only") || h.Did("setrole") || h.Did("apply promote") {
				t.Fatalf("acted:\n%s", strings.Join(h.Log, "\n"))
			}
		})
	}
}

// The promotion is refused after the candidate became master: the
// switch fails and nothing is made writable.
func TestSwitchPromotionRefused(t *testing.T) {
	h := newHarness(t, "east1", east...)
	h.ApplyFails = policy.OpPromote
	x := h.actions(time.Second)
	if _, err := x.Switch(context.Background(), "east2"); err == nil {
		t.Fatal("no error")
	}
	if h.Did("read_only east2 false") {
		t.Fatal("made writable without a promotion")
	}
}

// ReplicatorTo leaves a replicator that is already what is asked alone,
// and names the step that failed otherwise.
func TestReplicatorTo(t *testing.T) {
	h := newHarness(t, "east1", east...)
	x := h.actions(time.Second)
	if err := x.ReplicatorTo(context.Background(), "east2", policy.RoleSlave, x.THLURI("east1")); err != nil || h.Did("offline east2") {
		t.Fatalf("err %v; log %q", err, h.Log)
	}
	// A slave of the right source going online is left to finish.
	h.Repls["east2"].State = "GOING-ONLINE:SYNCHRONIZING"
	if err := x.ReplicatorTo(context.Background(), "east2", policy.RoleSlave, x.THLURI("east1")); err != nil || h.Did("offline east2") {
		t.Fatalf("err %v; log %q", err, h.Log)
	}
	h.Repls["east3"].Cut = true
	if err := x.ReplicatorTo(context.Background(), "east3", policy.RoleMaster, ""); err == nil || !strings.Contains(err.Error(), "replicator of east3") {
		t.Fatalf("err %v", err)
	}
	if got := x.Others("east1", "east3"); len(got) != 1 || got[0] != "east2" {
		t.Fatalf("others %q", got)
	}
}

// A switch to a replica whose replicator is still going online (the last
// switch's old primary, a moment after it) waits for it, and one that
// gossip still reports going online is taken on what it says now.
func TestSwitchToReplicaGoingOnline(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(*harness)
	}{
		{"stale facts", func(h *harness) {
			h.setFacts("east2", func(f *policy.Facts) {
				f.ReplState, f.ReplKind = "GOING-ONLINE:SYNCHRONIZING", replicatorpb.ReplicatorState_REPLICATOR_STATE_GOING_ONLINE
			})
		}},
		{"going online", func(h *harness) {
			h.Mu.Lock()
			h.Repls["east2"].State = "GOING-ONLINE:SYNCHRONIZING"
			h.Mu.Unlock()
			h.setFacts("east2", func(f *policy.Facts) {
				f.ReplState, f.ReplKind = "GOING-ONLINE:SYNCHRONIZING", replicatorpb.ReplicatorState_REPLICATOR_STATE_GOING_ONLINE
			})
			time.AfterFunc(300*time.Millisecond, func() {
				h.Mu.Lock()
				defer h.Mu.Unlock()
				h.Repls["east2"].State = "ONLINE"
			})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, "east1", east...)
			x := h.actions(time.Second)
			tc.setup(h)
			lines, err := x.Switch(context.Background(), "east2")
			if err != nil || !strings.Contains(joined(lines), "SWITCH TO east2 COMPLETE") {
				t.Fatalf("switch: %q %v", lines, err)
			}
		})
	}
}

// A candidate that does not come within a second of the primary, writes
// flowing, is refused before any write is blocked: no transition, no
// read-only primary.
func TestSwitchRefusesLaggingCandidate(t *testing.T) {
	h := newHarness(t, "east1", east...)
	h.Repls["east2"].Applied, h.Repls["east2"].Stuck = 90, true
	x := h.actions(300 * time.Millisecond)
	_, err := x.Switch(context.Background(), "east2")
	if err == nil || !reason.Refused(err) || !strings.Contains(err.Error(), "east2 has applied seqno 90 and east1 has stored 100") ||
		!strings.Contains(err.Error(), "no write was blocked") {
		t.Fatalf("err %v (a refusal: %v)", err, reason.Refused(err))
	}
	if h.Did("read_only") || h.Did("apply begin") || h.Did("setrole") {
		t.Fatalf("acted:\n%s", strings.Join(h.Log, "\n"))
	}
}
