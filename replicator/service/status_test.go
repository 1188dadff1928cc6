package service

import (
	"errors"
	"testing"
	"time"

	"github.com/carbidedb/carbide/replicator/apply"
	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

// TestStatusAfterFailedBlockIsTheTrackingRow: an applier that read seqnos
// 5 to 9 in a block and failed on 9 has committed only up to 4; OFFLINE:
// ERROR shows 4, what the database holds, whatever the applier read.
func TestStatusAfterFailedBlockIsTheTrackingRow(t *testing.T) {
	h := newHarness(t)
	h.db.block, h.db.readAhead = 5, true
	h.db.failAt[9] = errors.New("Duplicate entry '9' for key 'PRIMARY'")
	h.src.add(10)
	s := h.start(RoleSlave)
	if err := s.Online(OnlineOptions{}); err != nil {
		t.Fatal(err)
	}
	waitState(t, s, StateError)
	if seqno, _ := h.db.tracking(); seqno != 4 {
		t.Fatalf("the fake database's tracking row is at %d, want 4", seqno)
	}
	st := s.Status()
	if st.GetAppliedLastSeqno() != 4 || st.GetAppliedLastEventId() != eventID(4) || st.GetPendingErrorSeqno() != 9 {
		t.Fatalf("appliedLastSeqno %d (%s), pendingErrorSeqno %d; want 4 (%s), 9",
			st.GetAppliedLastSeqno(), st.GetAppliedLastEventId(), st.GetPendingErrorSeqno(), eventID(4))
	}
}

// TestStatusBeforeOnlineIsTheTrackingRow: a service that has not been
// online since it started shows its database's tracking row.
func TestStatusBeforeOnlineIsTheTrackingRow(t *testing.T) {
	h := newHarness(t)
	h.db.setTracking(7)
	s := h.start(RoleSlave)
	if st := s.Status(); st.GetAppliedLastSeqno() != 7 || st.GetAppliedLastEventId() != eventID(7) {
		t.Fatalf("appliedLastSeqno %d (%s), want 7 (%s)", st.GetAppliedLastSeqno(), st.GetAppliedLastEventId(), eventID(7))
	}
}

// TestMasterStatusAfterForcedFailover: a slave stored seqnos 0 to 5 from
// east1 and applied up to 2, then became master (a forced failover gave up
// 3 to 5, and its THL dropped them: see unapplied_test.go). Its database
// holds 2: status says 2 and its tracking row stays there until it
// extracts its own transactions, which it holds too.
func TestMasterStatusAfterForcedFailover(t *testing.T) {
	h := newHarness(t)
	s := h.start(RoleSlave)
	for seqno := uint64(0); seqno <= 5; seqno++ {
		if err := s.Store().Append(&thlpb.Event{Seqno: seqno, LastFrag: true, EventId: eventID(seqno), SourceId: "east1"}); err != nil {
			t.Fatal(err)
		}
	}
	h.db.setTracking(2)
	if err := s.SetRole(RoleMaster, ""); err != nil {
		t.Fatal(err)
	}
	if err := s.Online(OnlineOptions{}); err != nil {
		t.Fatal(err)
	}
	waitState(t, s, StateOnline)
	if st := s.Status(); st.GetAppliedLastSeqno() != 2 || st.GetMaxStoredSeqno() != 2 {
		t.Fatalf("appliedLastSeqno %d, maximumStoredSeqNo %d; want 2, 2", st.GetAppliedLastSeqno(), st.GetMaxStoredSeqno())
	}
	offline(t, s)
	if seqno, _ := h.db.tracking(); seqno != 2 {
		t.Fatalf("the tracking row went to %d, which this database never applied; want 2", seqno)
	}
	s.Close()
	s = h.start(RoleSlave)
	if got := s.Status().GetAppliedLastSeqno(); got != 2 {
		t.Fatalf("after a restart, appliedLastSeqno %d, want 2", got)
	}
	// Its own transactions are in its database.
	if err := s.Online(OnlineOptions{}); err != nil {
		t.Fatal(err)
	}
	waitState(t, s, StateOnline)
	h.binlog.commit(2)
	waitApplied(t, s, 4)
	offline(t, s)
	if seqno, _ := h.db.tracking(); seqno != 4 {
		t.Fatalf("tracking row at %d, want 4", seqno)
	}
	if got := s.Status().GetAppliedLastSeqno(); got != 4 {
		t.Fatalf("offline: appliedLastSeqno %d, want 4", got)
	}
}

// TestStatusCountsConflicts: status shows the conflicts recorded in the
// tracking schema (typed and as the conflicts line), read with the
// tracking row before the service goes online; the metrics' counters count
// the decisions the applier reports.
func TestStatusCountsConflicts(t *testing.T) {
	h := newHarness(t)
	h.db.setTracking(7)
	h.db.mu.Lock()
	h.db.conflicts = 3
	h.db.mu.Unlock()
	s := h.start(RoleSlave)
	st := s.Status()
	line := ""
	for _, f := range st.GetFields() {
		if f.GetName() == "conflicts" {
			line = f.GetValue()
		}
	}
	if st.GetConflicts() != 3 || line != "3" {
		t.Errorf("conflicts %d, line %q; want 3", st.GetConflicts(), line)
	}
	s.counts.conflict(apply.Conflict{Decision: apply.DecisionKept})
	s.counts.conflict(apply.Conflict{Decision: apply.DecisionStopped})
	if n := s.Counters().Conflicts; n[apply.DecisionKept] != 1 || n[apply.DecisionStopped] != 1 || n[apply.DecisionApplied] != 0 {
		t.Errorf("counters %v", n)
	}
}

// TestStatusRetriesTrackingReadLater: a status that cannot read the
// tracking row (the database down) shows what it knew, and does not try
// again at every ask: not before readRetry has passed.
func TestStatusRetriesTrackingReadLater(t *testing.T) {
	h := newHarness(t)
	h.db.setTracking(7)
	h.db.openErr = errors.New("connection refused")
	s := h.start(RoleSlave)
	if got := s.Status().GetAppliedLastSeqno(); got != -1 {
		t.Fatalf("appliedLastSeqno %d with the database down, want -1 (not known)", got)
	}
	h.db.mu.Lock()
	h.db.openErr = nil
	h.db.mu.Unlock()
	if got := s.Status().GetAppliedLastSeqno(); got != -1 {
		t.Fatalf("appliedLastSeqno %d right after a failed read, want -1 (read again after %s)", got, readRetry)
	}
	s.mu.Lock()
	s.applyReadAt = time.Now().Add(-readRetry)
	s.mu.Unlock()
	if got := s.Status().GetAppliedLastSeqno(); got != 7 {
		t.Fatalf("appliedLastSeqno %d once readRetry has passed, want 7", got)
	}
}
