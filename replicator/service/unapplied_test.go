package service

import (
	"strings"
	"testing"

	"github.com/carbidedb/carbide/internal/position"
	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

// storeEvents appends complete transactions from..to extracted by source
// to s's THL; this host's (east2) carry its binlog's positions.
func storeEvents(t *testing.T, s *Service, from, to uint64, source string) {
	t.Helper()
	for seqno := from; seqno <= to; seqno++ {
		ev := &thlpb.Event{Seqno: seqno, LastFrag: true, EventId: eventID(seqno), SourceId: source}
		if source == "east2" {
			ev.EventId = localID(seqno)
		}
		if err := s.Store().Append(ev); err != nil {
			t.Fatal(err)
		}
	}
}

// localID is the fake binlog's position after this host's seqno-th
// transaction (fakeExtractor: one every 100 bytes).
func localID(n uint64) string {
	return position.Position{File: "local-bin.000001", Offset: 100 * n}.String()
}

// promote makes s master and puts it online.
func promote(t *testing.T, s *Service) {
	t.Helper()
	if err := s.SetRole(RoleMaster, ""); err != nil {
		t.Fatal(err)
	}
	if err := s.Online(OnlineOptions{}); err != nil {
		t.Fatal(err)
	}
}

// dropped is the range status shows as dropped (-1, -1: none).
func dropped(s *Service) (from, to int64) {
	d := s.Status().GetDropped()
	if d == nil {
		return -1, -1
	}
	return int64(d.GetFromSeqno()), int64(d.GetToSeqno())
}

func event(t *testing.T, s *Service, seqno uint64) *thlpb.Event {
	t.Helper()
	frags, err := s.Store().Get(seqno)
	if err != nil || len(frags) == 0 {
		t.Fatalf("seqno %d: %v (%d fragments)", seqno, err, len(frags))
	}
	return frags[len(frags)-1]
}

// TestMasterDropsUnappliedTail: a slave stored seqnos 0 to 5 from east1
// and applied up to 2 (its applier blocked), then a forced failover made
// it master. Its database holds 2: its THL drops 3 to 5 before it
// extracts, says so in its status, and its own transactions follow at
// seqno 3 in a new epoch. Without the drop, east1's 3 to 5 would be
// served to replicas as history this primary does not hold.
func TestMasterDropsUnappliedTail(t *testing.T) {
	h := newHarness(t)
	s := h.start(RoleSlave)
	storeEvents(t, s, 0, 5, "east1")
	h.db.setTracking(2)
	promote(t, s)
	waitState(t, s, StateOnline)
	st := s.Status()
	if st.GetMaxStoredSeqno() != 2 || st.GetAppliedLastSeqno() != 2 {
		t.Fatalf("maximumStoredSeqNo %d, appliedLastSeqno %d; want 2, 2 (seqnos 3 to 5 were never applied here)", st.GetMaxStoredSeqno(), st.GetAppliedLastSeqno())
	}
	if from, to := dropped(s); from != 3 || to != 5 {
		t.Fatalf("dropped %d to %d, want 3 to 5", from, to)
	}
	if f := field(s, "droppedSeqnos"); !strings.Contains(f, "seqnos 3 to 5") || !strings.Contains(f, "east1") {
		t.Fatalf("droppedSeqnos %q does not name seqnos 3 to 5 and east1", f)
	}
	h.binlog.commit(2)
	waitApplied(t, s, 4)
	for seqno := uint64(3); seqno <= 4; seqno++ {
		if ev := event(t, s, seqno); ev.GetSourceId() != "east2" || ev.GetEpoch() != 3 {
			t.Fatalf("seqno %d: extracted by %s, epoch %d; want east2, 3", seqno, ev.GetSourceId(), ev.GetEpoch())
		}
	}
	offline(t, s)
	if seqno, _ := h.db.tracking(); seqno != 4 {
		t.Fatalf("tracking row at %d, want 4", seqno)
	}
	// A new role clears the report.
	if err := s.SetRole(RoleSlave, ""); err != nil {
		t.Fatal(err)
	}
	if from, _ := dropped(s); from != -1 || field(s, "droppedSeqnos") != "NONE" {
		t.Fatalf("after setrole: dropped from %d, droppedSeqnos %q", from, field(s, "droppedSeqnos"))
	}
}

// TestMasterKeepsOwnTail: transactions this host extracted are in its
// database whatever its tracking row says (it records them every second):
// a master restarted after extracting 3 to 5 keeps them and continues at
// 6; east1's unapplied transactions after its own are dropped.
func TestMasterKeepsOwnTail(t *testing.T) {
	t.Run("own tail", func(t *testing.T) {
		h := newHarness(t)
		s := h.start(RoleMaster)
		storeEvents(t, s, 0, 2, "east1")
		storeEvents(t, s, 3, 5, "east2")
		h.db.setTracking(2)
		h.binlog.end = 500
		if err := s.Online(OnlineOptions{}); err != nil {
			t.Fatal(err)
		}
		waitState(t, s, StateOnline)
		if from, _ := dropped(s); s.Status().GetMaxStoredSeqno() != 5 || from != -1 {
			t.Fatalf("maximumStoredSeqNo %d, dropped from %d; want 5, none", s.Status().GetMaxStoredSeqno(), from)
		}
		h.binlog.commit(1)
		waitApplied(t, s, 6)
		if ev := event(t, s, 6); ev.GetEventId() != localID(6) {
			t.Fatalf("seqno 6 is at %s, want %s", ev.GetEventId(), localID(6))
		}
	})
	t.Run("own tail then east1's", func(t *testing.T) {
		h := newHarness(t)
		s := h.start(RoleSlave)
		storeEvents(t, s, 0, 2, "east1")
		storeEvents(t, s, 3, 4, "east2")
		storeEvents(t, s, 5, 6, "east1")
		h.db.setTracking(2)
		h.binlog.end = 400
		promote(t, s)
		waitState(t, s, StateOnline)
		if from, to := dropped(s); s.Status().GetMaxStoredSeqno() != 4 || from != 5 || to != 6 {
			t.Fatalf("maximumStoredSeqNo %d, dropped %d to %d; want 4, 5 to 6", s.Status().GetMaxStoredSeqno(), from, to)
		}
		// It continues its own history after its seqno 4.
		h.binlog.commit(1)
		waitApplied(t, s, 5)
		if ev := event(t, s, 5); ev.GetSourceId() != "east2" || ev.GetEventId() != localID(5) {
			t.Fatalf("seqno 5: extracted by %s at %s; want east2 at %s", ev.GetSourceId(), ev.GetEventId(), localID(5))
		}
	})
}

// TestMasterDropsUnfinishedTransaction: the fetch stopped inside east1's
// fragmented seqno 4; the database holds 3. The fragments go: the master
// extracts its own seqno 4.
func TestMasterDropsUnfinishedTransaction(t *testing.T) {
	h := newHarness(t)
	s := h.start(RoleSlave)
	storeEvents(t, s, 0, 3, "east1")
	if err := s.Store().Append(&thlpb.Event{Seqno: 4, EventId: eventID(4), SourceId: "east1"}); err != nil {
		t.Fatal(err)
	}
	h.db.setTracking(3)
	promote(t, s)
	waitState(t, s, StateOnline)
	if from, to := dropped(s); from != 4 || to != 4 {
		t.Fatalf("dropped %d to %d, want 4 to 4", from, to)
	}
	h.binlog.commit(1)
	waitApplied(t, s, 4)
	if ev := event(t, s, 4); ev.GetSourceId() != "east2" {
		t.Fatalf("seqno 4 extracted by %s, want east2", ev.GetSourceId())
	}
}

// TestMasterDropsWholeLog: everything the THL holds comes after what the
// database applied (the slave's older seqnos were purged): the log is
// emptied and extraction starts at the seqno after the tracking row, not
// at 0.
func TestMasterDropsWholeLog(t *testing.T) {
	h := newHarness(t)
	s := h.start(RoleSlave)
	storeEvents(t, s, 10, 12, "east1")
	h.db.setTracking(9)
	promote(t, s)
	waitState(t, s, StateOnline)
	if from, to := dropped(s); s.Status().GetMaxStoredSeqno() != -1 || from != 10 || to != 12 {
		t.Fatalf("maximumStoredSeqNo %d, dropped %d to %d; want -1, 10 to 12", s.Status().GetMaxStoredSeqno(), from, to)
	}
	h.binlog.commit(1)
	waitApplied(t, s, 10)
	if ev := event(t, s, 10); ev.GetSourceId() != "east2" || ev.GetEpoch() != 10 {
		t.Fatalf("seqno 10: extracted by %s, epoch %d; want east2, 10", ev.GetSourceId(), ev.GetEpoch())
	}
}

// TestMasterWithoutTrackingRowRefuses: the database has no tracking row,
// so what it holds of east1's transactions is unknown: the service does
// not go online as master, says why, and leaves its THL as it was.
func TestMasterWithoutTrackingRowRefuses(t *testing.T) {
	h := newHarness(t)
	s := h.start(RoleSlave)
	storeEvents(t, s, 0, 5, "east1")
	promote(t, s)
	waitState(t, s, StateError)
	st := s.Status()
	if !strings.Contains(st.GetPendingError(), "no tracking row") || !strings.Contains(st.GetPendingError(), "seqnos 0 to 5") {
		t.Fatalf("pendingError %q does not say why", st.GetPendingError())
	}
	if from, _ := dropped(s); st.GetMaxStoredSeqno() != 5 || from != -1 {
		t.Fatalf("maximumStoredSeqNo %d, dropped from %d; want 5, none", st.GetMaxStoredSeqno(), from)
	}
}

// TestMasterAppliedEverything: a candidate that applied all it stored (a
// failover that was not forced) drops nothing.
func TestMasterAppliedEverything(t *testing.T) {
	h := newHarness(t)
	s := h.start(RoleSlave)
	storeEvents(t, s, 0, 5, "east1")
	h.db.setTracking(5)
	promote(t, s)
	waitState(t, s, StateOnline)
	if from, _ := dropped(s); s.Status().GetMaxStoredSeqno() != 5 || from != -1 {
		t.Fatalf("maximumStoredSeqNo %d, dropped from %d; want 5, none", s.Status().GetMaxStoredSeqno(), from)
	}
}
