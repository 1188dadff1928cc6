package service

import (
	"database/sql/driver"
	"fmt"
	"testing"
	"time"
)

// The THL client of these tests takes clientLinger to return once its
// run is cancelled, as a fetch storing the batch it has received does.
// A pipeline run that does not wait for it lets the next run start its
// own writer (an extractor, a second client) meanwhile: the fakes record
// that as two writers of one THL. (Without the join the next run starts
// within milliseconds; with it, each of these tests waits clientLinger.)
const clientLinger = 500 * time.Millisecond

// TestRoleChangeJoinsThePipeline: offline, setrole master and online right
// away; the slave's THL client has ended before the extractor starts.
func TestRoleChangeJoinsThePipeline(t *testing.T) {
	h := newHarness(t)
	h.src.linger = clientLinger
	h.src.add(2)
	s := h.start(RoleSlave)
	if err := s.Online(OnlineOptions{}); err != nil {
		t.Fatal(err)
	}
	waitApplied(t, s, 2)
	offline(t, s)
	if err := s.SetRole(RoleMaster, ""); err != nil {
		t.Fatal(err)
	}
	h.binlog.commit(2)
	if err := s.Online(OnlineOptions{FromEvent: "local-bin.000001:0000000000000000"}); err != nil {
		t.Fatal(err)
	}
	waitApplied(t, s, 4)
	offline(t, s)
	h.w.check(t)
	// The THL: what the slave fetched, then the master's new lineage.
	for seqno := uint64(0); seqno <= 4; seqno++ {
		frags, err := s.Store().Get(seqno)
		want := "east1"
		if seqno > 2 {
			want = "east2"
		}
		if err != nil || len(frags) != 1 || frags[0].GetSourceId() != want {
			t.Fatalf("seqno %d: %v %v, want one event from %s", seqno, frags, err, want)
		}
	}
	if last, _ := s.Store().Last(); last.GetEpoch() != 3 {
		t.Fatalf("the master's lineage starts at epoch %d, want 3", last.GetEpoch())
	}
}

// TestRetryJoinsThePipeline: a run retried after the database dropped
// its connection starts its THL client once the last run's has ended.
func TestRetryJoinsThePipeline(t *testing.T) {
	h := newHarness(t)
	h.src.linger = clientLinger
	h.db.failAt[2] = fmt.Errorf("commit: %w", driver.ErrBadConn)
	h.src.add(4)
	s := h.start(RoleSlave)
	if err := s.Online(OnlineOptions{}); err != nil {
		t.Fatal(err)
	}
	waitApplied(t, s, 4)
	h.w.check(t)
}

// TestMasterRecordsBeforeItsTrackerCloses: the master's last record of
// what it extracted is made before the run ends and its tracker closes,
// not by a goroutine left behind while the next run applies.
func TestMasterRecordsBeforeItsTrackerCloses(t *testing.T) {
	h := newHarness(t)
	h.db.recordLinger = clientLinger
	s := h.start(RoleMaster)
	h.binlog.commit(2)
	if err := s.Online(OnlineOptions{FromEvent: "local-bin.000001:0000000000000000"}); err != nil {
		t.Fatal(err)
	}
	waitApplied(t, s, 1)
	offline(t, s)
	if seqno, ok := h.db.tracking(); !ok || seqno != 1 {
		t.Fatalf("tracking row at %d (%v) once offline, want 1", seqno, ok)
	}
	h.w.check(t)
}
