package service

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/carbidedb/carbide/internal/position"
	"github.com/carbidedb/carbide/replicator/apply"
	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

// localPos is the fake binlog's position at offset.
func localPos(offset uint64) position.Position {
	return position.Position{File: "local-bin.000001", Offset: offset}
}

// onlineMasterOf makes a master that extracted n transactions from the
// start of the fake binlog (seqno i ends at offset 100*(i+1)).
func onlineMasterOf(t *testing.T, h *harness, n int) *Service {
	t.Helper()
	h.binlog.commit(n)
	s := h.start(RoleMaster)
	if err := s.Online(OnlineOptions{FromEvent: localID(0)}); err != nil {
		t.Fatal(err)
	}
	waitState(t, s, StateOnline)
	waitApplied(t, s, int64(n-1))
	return s
}

// TestHeartbeatRefusals: a heartbeat is written on an ONLINE master only:
// a slave refuses it in any state (ErrRole), a master that is not ONLINE
// refuses it (ErrState), and an ONLINE master whose database does not
// answer returns the database's error, neither of those.
func TestHeartbeatRefusals(t *testing.T) {
	for _, c := range []struct {
		name   string
		role   string
		online bool
		want   error
	}{
		{"offline slave", RoleSlave, false, ErrRole},
		{"online slave", RoleSlave, true, ErrRole},
		{"offline master", RoleMaster, false, ErrState},
		{"online master, database down", RoleMaster, true, syscall.ECONNREFUSED},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			s := h.start(c.role)
			if c.online {
				if err := s.Online(OnlineOptions{}); err != nil {
					t.Fatal(err)
				}
				waitState(t, s, StateOnline)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			err := s.Heartbeat(ctx, "hb")
			if !errors.Is(err, c.want) {
				t.Fatalf("heartbeat: %v, want %v", err, c.want)
			}
			if c.want == syscall.ECONNREFUSED && (errors.Is(err, ErrRole) || errors.Is(err, ErrState)) {
				t.Fatalf("heartbeat on an ONLINE master: %v is a refusal, want the database's error", err)
			}
		})
	}
}

// TestWaitForSeqno: Wait returns once the seqno is applied; a seqno that
// never comes ends the wait with its context, saying what it waited for
// and what is applied; a service stopped by an error ends a wait for a
// seqno at once, naming the error, while a wait for OFFLINE:ERROR is met.
func TestWaitForSeqno(t *testing.T) {
	h := newHarness(t)
	h.db.failAt[8] = errors.New("Duplicate entry '8' for key 'PRIMARY'")
	h.src.add(4)
	s := h.start(RoleSlave)
	if err := s.Online(OnlineOptions{}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Wait(ctx, 4, ""); err != nil {
		t.Fatalf("wait for seqno 4: %v", err)
	}
	if got := s.Status().GetAppliedLastSeqno(); got < 4 {
		t.Fatalf("wait for seqno 4 returned at %d", got)
	}

	done := make(chan error, 1)
	go func() { done <- s.Wait(ctx, 6, "") }()
	h.src.add(6)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("wait for seqno 6: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("wait for seqno 6 did not return once it was applied")
	}
	if got := s.Status().GetAppliedLastSeqno(); got < 6 {
		t.Fatalf("wait for seqno 6 returned at %d", got)
	}

	short, cancelShort := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancelShort()
	err := s.Wait(short, 7, "")
	if err == nil || short.Err() == nil || !strings.Contains(err.Error(), "timed out waiting for seqno 7 (applied: 6)") {
		t.Fatalf("wait for a seqno that never comes: %v (context: %v)", err, short.Err())
	}

	h.src.add(8) // seqno 8 fails
	err = s.Wait(ctx, 8, "")
	if err == nil || ctx.Err() != nil || !strings.Contains(err.Error(), "OFFLINE:ERROR") || !strings.Contains(err.Error(), "Duplicate entry '8'") {
		t.Fatalf("wait for seqno 8, which fails: %v (context: %v); want the error at once", err, ctx.Err())
	}
	if err := s.Wait(ctx, -1, StateError); err != nil {
		t.Fatalf("wait for OFFLINE:ERROR while in it: %v", err)
	}
}

// TestWaitForState: Wait for a state returns once the service is in it;
// a state never reached ends with the context, naming both states.
func TestWaitForState(t *testing.T) {
	h := newHarness(t)
	s := h.start(RoleSlave)
	if err := s.Online(OnlineOptions{}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Wait(ctx, -1, StateOnline); err != nil {
		t.Fatalf("wait for ONLINE: %v", err)
	}
	if got := s.State(); got != StateOnline {
		t.Fatalf("wait for ONLINE returned in %s", got)
	}
	short, cancelShort := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancelShort()
	err := s.Wait(short, -1, StateError)
	if err == nil || short.Err() == nil || !strings.Contains(err.Error(), "state OFFLINE:ERROR (now ONLINE)") {
		t.Fatalf("wait for a state never reached: %v (context: %v)", err, short.Err())
	}
	offline(t, s)
	if err := s.Wait(ctx, -1, StateOffline); err != nil {
		t.Fatalf("wait for OFFLINE:NORMAL once offline: %v", err)
	}
}

// TestLocate: an ONLINE master finds the last transaction it extracted at
// or before a binlog position (a backup's), waiting for extraction to pass
// it; a position before its first transaction finds none, and one never
// reached ends with the context.
func TestLocate(t *testing.T) {
	h := newHarness(t)
	s := onlineMasterOf(t, h, 5) // seqno i at offset 100*(i+1)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, c := range []struct {
		offset uint64
		seqno  int64 // -1: none
	}{
		{50, -1}, {100, 0}, {250, 1}, {300, 2}, {499, 3}, {500, 4},
	} {
		ev, ok, err := s.Locate(ctx, localPos(c.offset))
		switch {
		case err != nil:
			t.Errorf("locate %d: %v", c.offset, err)
		case c.seqno < 0 && ok:
			t.Errorf("locate %d: seqno %d, want none (before the first transaction)", c.offset, ev.GetSeqno())
		case c.seqno >= 0 && (!ok || int64(ev.GetSeqno()) != c.seqno || ev.GetEventId() != localID(uint64(c.seqno)+1)):
			t.Errorf("locate %d: %v (%v), want seqno %d", c.offset, ev, ok, c.seqno)
		}
	}

	short, cancelShort := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancelShort()
	if _, _, err := s.Locate(short, localPos(700)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("locate a position not extracted yet: %v, want the context's deadline", err)
	}

	type located struct {
		ev  *thlpb.Event
		ok  bool
		err error
	}
	done := make(chan located, 1)
	go func() {
		ev, ok, err := s.Locate(ctx, localPos(700))
		done <- located{ev, ok, err}
	}()
	h.binlog.commit(3)
	r := <-done
	if r.err != nil || !r.ok || r.ev.GetSeqno() != 6 {
		t.Fatalf("locate 700 once extracted: %v %v %v, want seqno 6", r.ev, r.ok, r.err)
	}
}

// TestLocateAfterPurge: a master whose THL was purged searches from its
// first stored transaction, not from the start of its lineage: a position
// before it finds none, the next finds it.
func TestLocateAfterPurge(t *testing.T) {
	h := newHarness(t)
	files := writeSegments(t, filepath.Join(h.dir, "thl"), "east2") // seqno i at offset 100*(i+1)
	cfg := h.config(RoleMaster)
	cfg.Retention = 24 * time.Hour
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	s.purgeOld()
	min, _ := s.Store().MinSeqno()
	if want := segFirst(t, files, segRecent); min != want || min < 2 {
		t.Fatalf("THL starts at %d after the purge, want %d (past 1)", min, want)
	}
	h.binlog.end = 100 * segTxns
	if err := s.Online(OnlineOptions{}); err != nil {
		t.Fatal(err)
	}
	h.binlog.commit(1)
	waitApplied(t, s, segTxns)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if ev, ok, err := s.Locate(ctx, localPos(100*min)); err != nil || ok {
		t.Fatalf("locate the purged seqno %d: %v (%v), %v; want none", min-1, ev, ok, err)
	}
	if ev, ok, err := s.Locate(ctx, localPos(100*(min+1))); err != nil || !ok || ev.GetSeqno() != min {
		t.Fatalf("locate seqno %d: %v (%v), %v", min, ev, ok, err)
	}
}

// TestLocateInEmptyTHL: a master that has stored nothing finds nothing.
func TestLocateInEmptyTHL(t *testing.T) {
	h := newHarness(t)
	s := h.start(RoleMaster)
	if err := s.Online(OnlineOptions{}); err != nil {
		t.Fatal(err)
	}
	waitState(t, s, StateOnline)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if ev, ok, err := s.Locate(ctx, position.Position{}); err != nil || ok {
		t.Fatalf("locate in an empty THL: %v (%v), %v; want none", ev, ok, err)
	}
}

// TestLocateRefusals: Locate needs an ONLINE master whose lineage it
// extracted: a slave or an offline master refuse it (ErrState), as does a
// master whose last stored transaction another host extracted; an event
// id in the THL that is not a binlog position is an error, not a guess.
func TestLocateRefusals(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	t.Run("slave", func(t *testing.T) {
		h := newHarness(t)
		s := h.start(RoleSlave)
		if err := s.Online(OnlineOptions{}); err != nil {
			t.Fatal(err)
		}
		waitState(t, s, StateOnline)
		if _, _, err := s.Locate(ctx, localPos(100)); !errors.Is(err, ErrState) {
			t.Fatalf("locate on a slave: %v, want ErrState", err)
		}
	})
	t.Run("offline master", func(t *testing.T) {
		s := newHarness(t).start(RoleMaster)
		if _, _, err := s.Locate(ctx, localPos(100)); !errors.Is(err, ErrState) {
			t.Fatalf("locate on an offline master: %v, want ErrState", err)
		}
	})
	t.Run("another host's lineage", func(t *testing.T) {
		h := newHarness(t)
		s := h.start(RoleSlave)
		storeEvents(t, s, 0, 3, "east1")
		h.db.setTracking(3)
		promote(t, s)
		waitState(t, s, StateOnline)
		if _, _, err := s.Locate(ctx, position.Position{}); !errors.Is(err, ErrState) {
			t.Fatalf("locate with east1's transaction last: %v, want ErrState", err)
		}
	})
	t.Run("bad event id", func(t *testing.T) {
		h := newHarness(t)
		s := h.start(RoleMaster)
		// Seqno 2, where the search starts, names no binlog position.
		storeEvents(t, s, 0, 1, "east2")
		if err := s.Store().Append(&thlpb.Event{Seqno: 2, LastFrag: true, EventId: "not-a-position", SourceId: "east2"}); err != nil {
			t.Fatal(err)
		}
		storeEvents(t, s, 3, 4, "east2")
		h.binlog.end = 400
		if err := s.Online(OnlineOptions{}); err != nil {
			t.Fatal(err)
		}
		waitState(t, s, StateOnline)
		h.binlog.commit(1)
		waitApplied(t, s, 5)
		if _, _, err := s.Locate(ctx, localPos(450)); !errors.Is(err, position.ErrSyntax) {
			t.Fatalf("locate over a bad event id: %v, want position.ErrSyntax", err)
		}
	})
}

// TestSetPosition: an offline slave given a position (tprovision, after a
// copy whose position is known) records it as applied, empties its THL and
// forgets its reset mark; once online it fetches from the transaction
// after it. A service OFFLINE:ERROR so placed is OFFLINE:NORMAL without
// its error.
func TestSetPosition(t *testing.T) {
	h := newHarness(t)
	h.db.failAt[3] = errors.New("Duplicate entry '3' for key 'PRIMARY'")
	h.src.add(3)
	s := h.start(RoleSlave)
	if err := s.Online(OnlineOptions{}); err != nil {
		t.Fatal(err)
	}
	waitState(t, s, StateError)
	if err := s.saveResetMark(apply.Position{Seqno: 1, EventID: eventID(1)}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ev := &thlpb.Event{Seqno: 7, Epoch: 0, LastFrag: true, EventId: eventID(7), SourceId: "east1"}
	if err := s.SetPosition(ctx, ev); err != nil {
		t.Fatal(err)
	}
	if seqno, ok := h.db.tracking(); !ok || seqno != 7 {
		t.Fatalf("tracking row at %d (%v), want 7", seqno, ok)
	}
	st := s.Status()
	if st.GetState() != StateOffline || st.GetPendingErrorSeqno() != -1 || st.GetPendingError() != "" {
		t.Fatalf("after setting the position: %s, pending %d %q; want OFFLINE:NORMAL without error", st.GetState(), st.GetPendingErrorSeqno(), st.GetPendingError())
	}
	if st.GetAppliedLastSeqno() != 7 || st.GetMaxStoredSeqno() != -1 || st.GetMinStoredSeqno() != -1 {
		t.Fatalf("appliedLastSeqno %d, stored %d to %d; want 7 and an empty THL", st.GetAppliedLastSeqno(), st.GetMinStoredSeqno(), st.GetMaxStoredSeqno())
	}
	if _, ok := s.loadResetMark(); ok {
		t.Fatal("the reset mark is still there")
	}
	h.src.add(9)
	if err := s.Online(OnlineOptions{}); err != nil {
		t.Fatal(err)
	}
	waitApplied(t, s, 9)
	h.db.mu.Lock()
	applied := slices.Clone(h.db.applied)
	h.db.mu.Unlock()
	if want := []uint64{0, 1, 2, 8, 9}; !slices.Equal(applied, want) {
		t.Fatalf("applied %v, want %v (from the transaction after 7)", applied, want)
	}
}

// TestSetPositionRefusals: SetPosition needs the service offline
// (ErrState), and when the database cannot be opened or refuses the
// tracking row it says why and leaves the THL, the tracking row and the
// reset mark as they were.
func TestSetPositionRefusals(t *testing.T) {
	openErr, setErr, newErr := errors.New("Access denied"), errors.New("Lock wait timeout"), errors.New("bad applier config")
	for _, c := range []struct {
		name   string
		online bool
		fail   func(s *Service, d *fakeDB) // d locked
		want   error
	}{
		{"online", true, func(*Service, *fakeDB) {}, ErrState},
		{"applier not made", false, func(s *Service, _ *fakeDB) {
			s.cfg.Stages.NewApplier = func(apply.Config) (Applier, error) { return nil, newErr }
		}, newErr},
		{"database not opened", false, func(_ *Service, d *fakeDB) { d.openErr = openErr }, openErr},
		{"tracking row refused", false, func(_ *Service, d *fakeDB) { d.setErr = setErr }, setErr},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			h.src.add(3)
			s := h.start(RoleSlave)
			if err := s.Online(OnlineOptions{}); err != nil {
				t.Fatal(err)
			}
			waitApplied(t, s, 3)
			if !c.online {
				offline(t, s)
			}
			if err := s.saveResetMark(apply.Position{Seqno: 1, EventID: eventID(1)}); err != nil {
				t.Fatal(err)
			}
			h.db.mu.Lock()
			c.fail(s, h.db)
			h.db.mu.Unlock()
			ev := &thlpb.Event{Seqno: 7, LastFrag: true, EventId: eventID(7), SourceId: "east1"}
			if err := s.SetPosition(context.Background(), ev); !errors.Is(err, c.want) {
				t.Fatalf("set position: %v, want %v", err, c.want)
			}
			if seqno, _ := h.db.tracking(); seqno != 3 {
				t.Errorf("tracking row at %d, want 3 as it was", seqno)
			}
			if max, ok := s.Store().MaxSeqno(); !ok || max != 3 {
				t.Errorf("THL ends at %d (%v), want 3 as it was", max, ok)
			}
			if m, ok := s.loadResetMark(); !ok || m.Seqno != 1 {
				t.Errorf("reset mark %v (%v), want it kept", m, ok)
			}
		})
	}
}

// TestNameAndDB: the service says its name and how it reaches its
// database, as configured.
func TestNameAndDB(t *testing.T) {
	h := newHarness(t)
	cfg := h.config(RoleSlave)
	cfg.DBUser, cfg.DBPassword = "tungsten", "secret"
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := s.Name(); got != "east" {
		t.Errorf("name %q, want east", got)
	}
	if addr, user, password := s.DB(); addr != "127.0.0.1:1" || user != "tungsten" || password != "secret" {
		t.Errorf("DB() = %q, %q, %q", addr, user, password)
	}
}
