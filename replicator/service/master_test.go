package service

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

// TestMasterStoresTransactionInParts: the extractor sends a large
// transaction in several calls; its fragments share one seqno, counted
// once. Extraction stopping between two calls leaves part of one in the
// THL: the next run drops it and stores it whole.
func TestMasterStoresTransactionInParts(t *testing.T) {
	h := newHarness(t)
	h.binlog.parts = 3
	h.binlog.commit(2)
	s := h.start(RoleMaster)
	if err := s.Online(OnlineOptions{FromEvent: localID(0)}); err != nil {
		t.Fatal(err)
	}
	waitApplied(t, s, 1)
	checkParts := func(seqno uint64) {
		t.Helper()
		frags, err := s.Store().Get(seqno)
		if err != nil || len(frags) != 3 {
			t.Fatalf("seqno %d: %d fragments, %v; want 3", seqno, len(frags), err)
		}
		for i, f := range frags {
			if f.GetFragno() != uint32(i) || f.GetLastFrag() != (i == 2) || f.GetEventId() != localID(seqno+1) {
				t.Fatalf("seqno %d fragment %d: fragno %d, last %v, event_id %s", seqno, i, f.GetFragno(), f.GetLastFrag(), f.GetEventId())
			}
		}
	}
	checkParts(0)
	checkParts(1)
	if got := s.Counters().AppliedEvents; got != 2 {
		t.Fatalf("%d transactions counted, want 2", got)
	}

	h.binlog.mu.Lock()
	h.binlog.breakAt, h.binlog.breakErr = 300, errors.New("the store failed")
	h.binlog.mu.Unlock()
	h.binlog.commit(1)
	waitState(t, s, StateError)
	if p, ok := s.Store().Partial(); !ok || p.GetSeqno() != 2 || p.GetFragno() != 0 {
		t.Fatalf("partial %v, %v; want seqno 2 fragno 0 stored when extraction stopped", p, ok)
	}
	if err := s.Online(OnlineOptions{}); err != nil {
		t.Fatal(err)
	}
	waitApplied(t, s, 2)
	checkParts(2)
	if _, ok := s.Store().Partial(); ok {
		t.Fatal("the THL still ends inside a transaction")
	}
}

// TestMasterDropsOwnPartial: the THL ends with the first fragment of
// this host's transaction at 300, whose last never came: going online as
// master drops it and extracts the transaction again, whole, at the same
// seqno.
func TestMasterDropsOwnPartial(t *testing.T) {
	h := newHarness(t)
	s := h.start(RoleMaster)
	storeEvents(t, s, 0, 2, "east2")
	if err := s.Store().Append(&thlpb.Event{Seqno: 3, EventId: localID(3), SourceId: "east2"}); err != nil {
		t.Fatal(err)
	}
	h.db.setTracking(2)
	h.binlog.end = 300
	if err := s.Online(OnlineOptions{}); err != nil {
		t.Fatal(err)
	}
	waitApplied(t, s, 3)
	if ev := event(t, s, 3); !ev.GetLastFrag() || ev.GetFragno() != 0 || ev.GetEventId() != localID(3) {
		t.Fatalf("seqno 3: fragno %d, last %v, event_id %s; want one fragment at %s", ev.GetFragno(), ev.GetLastFrag(), ev.GetEventId(), localID(3))
	}
	if from, _ := dropped(s); from != -1 {
		t.Fatalf("reported as a dropped tail from %d; the part of its own transaction is not", from)
	}
}

// The spill directory is the service's own: files a killed run left there
// go when extraction starts again.
func TestSpillDirCleanedAtStart(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "spill", "east")
	s := &Service{cfg: Config{SpillDir: dir}, log: slog.New(slog.DiscardHandler)}
	if got, err := s.spillDir(); err != nil || got != dir {
		t.Fatalf("spillDir = %q, %v", got, err)
	}
	left := filepath.Join(dir, "carbide-extract-east-123.spill")
	keep := filepath.Join(dir, "note.txt")
	for _, f := range []string{left, keep} {
		if err := os.WriteFile(f, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.spillDir(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(left); !os.IsNotExist(err) {
		t.Errorf("the spill file a killed run left is still there: %v", err)
	}
	if _, err := os.Stat(keep); err != nil {
		t.Errorf("another file was removed: %v", err)
	}
}

// TestMasterRefusesUnreadableLastEvent: a master continuing after its
// last stored transaction never guesses where that was: an event id or
// prepared_from that is not a binlog position stops it OFFLINE:ERROR,
// naming the transaction, with nothing extracted.
func TestMasterRefusesUnreadableLastEvent(t *testing.T) {
	for _, c := range []struct {
		name    string
		last    *thlpb.Event
		message string
	}{
		{"event id", &thlpb.Event{Seqno: 1, LastFrag: true, EventId: "binlog?", SourceId: "east2"}, "last stored event 1"},
		{"prepared_from", &thlpb.Event{Seqno: 1, LastFrag: true, EventId: localID(1), SourceId: "east2", PreparedFrom: "binlog?"},
			"last stored event 1: prepared_from"},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			s := h.start(RoleMaster)
			storeEvents(t, s, 0, 0, "east2")
			if err := s.Store().Append(c.last); err != nil {
				t.Fatal(err)
			}
			h.db.setTracking(1)
			h.binlog.commit(3)
			if err := s.Online(OnlineOptions{}); err != nil {
				t.Fatal(err)
			}
			waitState(t, s, StateError)
			if st := s.Status(); !strings.Contains(st.GetPendingError(), c.message) || st.GetMaxStoredSeqno() != 1 {
				t.Fatalf("pending error %q, THL to %d; want %q and nothing extracted", st.GetPendingError(), st.GetMaxStoredSeqno(), c.message)
			}
		})
	}
}
