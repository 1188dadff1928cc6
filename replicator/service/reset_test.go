package service

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"

	"github.com/carbidedb/carbide/replicator/apply"
	"github.com/carbidedb/carbide/replicator/thl"
	"github.com/carbidedb/carbide/rpc/gen/replicatorpb"
)

// resetHarness is an offline service of role whose THL holds seqnos 0
// to 3 from east1 and whose tracking row is at 3.
func resetHarness(t *testing.T, role string) (*harness, *Service) {
	t.Helper()
	h := newHarness(t)
	s := h.start(role)
	storeEvents(t, s, 0, 3, "east1")
	h.db.setTracking(3)
	return h, s
}

// TestResetRefusedWhileRunning: reset needs the service offline: ONLINE
// and GOING-ONLINE refuse it (ErrState) and nothing is removed.
func TestResetRefusedWhileRunning(t *testing.T) {
	for _, c := range []struct {
		name  string
		role  string
		down  bool // the database does not answer: a master stays GOING-ONLINE
		state string
	}{
		{"online slave", RoleSlave, false, StateOnline},
		{"master going online", RoleMaster, true, StateGoingOnline},
	} {
		t.Run(c.name, func(t *testing.T) {
			h, s := resetHarness(t, c.role)
			h.binlog.down = c.down
			if err := s.Online(OnlineOptions{}); err != nil {
				t.Fatal(err)
			}
			waitState(t, s, c.state)
			if err := s.Reset(context.Background(), true, true, true); !errors.Is(err, ErrState) {
				t.Fatalf("reset while %s: %v, want ErrState", c.state, err)
			}
			if seqno, ok := h.db.tracking(); !ok || seqno != 3 {
				t.Errorf("tracking row at %d (%v), want 3", seqno, ok)
			}
			if max, ok := s.Store().MaxSeqno(); !ok || max != 3 {
				t.Errorf("THL ends at %d (%v), want 3", max, ok)
			}
		})
	}
}

// TestResetRemoves: offline, reset removes what it is asked to: -thl
// empties the THL and keeps the tracking row; -db drops the tracking row,
// a slave remembering where it was (its reset mark) unless told to forget
// (which drops a mark it had), a master never; a slave that had applied
// nothing has nothing to remember; without a role file there is no mark.
func TestResetRemoves(t *testing.T) {
	for _, c := range []struct {
		name            string
		role            string
		thl, db, forget bool
		noTracking      bool // the tracking row says nothing was applied
		noRoleFile      bool
		markBefore      bool  // a reset mark at seqno 1 exists before
		wantStored      bool  // the THL still holds 0 to 3
		wantTracking    bool  // the tracking row is still at 3
		wantMark        int64 // the reset mark's seqno; -1: none
	}{
		{name: "thl", role: RoleSlave, thl: true, wantTracking: true, wantMark: -1},
		{name: "db slave", role: RoleSlave, db: true, wantStored: true, wantMark: 3},
		{name: "db slave replaces its mark", role: RoleSlave, db: true, markBefore: true, wantStored: true, wantMark: 3},
		{name: "all slave", role: RoleSlave, thl: true, db: true, wantMark: 3},
		{name: "db slave forgetting", role: RoleSlave, db: true, forget: true, markBefore: true, wantStored: true, wantMark: -1},
		{name: "db slave that applied nothing", role: RoleSlave, db: true, noTracking: true, wantStored: true, wantMark: -1},
		{name: "db slave without a role file", role: RoleSlave, db: true, noRoleFile: true, wantStored: true, wantMark: -1},
		{name: "db master", role: RoleMaster, db: true, markBefore: true, wantStored: true, wantMark: -1},
		{name: "forget only", role: RoleSlave, forget: true, markBefore: true, wantStored: true, wantTracking: true, wantMark: -1},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			cfg := h.config(c.role)
			if c.noRoleFile {
				cfg.RoleFile = ""
			}
			s, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			storeEvents(t, s, 0, 3, "east1")
			if !c.noTracking {
				h.db.setTracking(3)
			}
			if c.markBefore {
				if err := s.saveResetMark(apply.Position{Seqno: 1, EventID: eventID(1)}); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.Reset(context.Background(), c.thl, c.db, c.forget); err != nil {
				t.Fatal(err)
			}
			st := s.Status()
			if stored := st.GetMaxStoredSeqno() == 3 && st.GetMinStoredSeqno() == 0; stored != c.wantStored {
				t.Errorf("THL holds %d to %d; want it kept: %v", st.GetMinStoredSeqno(), st.GetMaxStoredSeqno(), c.wantStored)
			}
			if !c.wantStored && (st.GetMaxStoredSeqno() != -1 || st.GetMinStoredSeqno() != -1) {
				t.Errorf("THL holds %d to %d; want it empty", st.GetMinStoredSeqno(), st.GetMaxStoredSeqno())
			}
			seqno, has := h.db.tracking()
			if kept := has && seqno == 3; kept != c.wantTracking {
				t.Errorf("tracking row at %d (%v); want it kept: %v", seqno, has, c.wantTracking)
			}
			if want := int64(-1); !c.wantTracking {
				if got := st.GetAppliedLastSeqno(); got != want {
					t.Errorf("appliedLastSeqno %d after the tracking row went, want -1", got)
				}
			}
			m, ok := s.loadResetMark()
			switch {
			case c.wantMark < 0 && ok:
				t.Errorf("reset mark at %d, want none", m.Seqno)
			case c.wantMark >= 0 && (!ok || int64(m.Seqno) != c.wantMark || m.EventID != eventID(m.Seqno)):
				t.Errorf("reset mark %+v (%v), want seqno %d", m, ok, c.wantMark)
			}
			if c.noRoleFile {
				if left, _ := filepath.Glob(filepath.Join(h.dir, "*", "reset-*")); len(left) > 0 {
					t.Errorf("reset marks written without a role file: %v", left)
				}
			}
			if st.GetState() != StateOffline {
				t.Errorf("state %s after reset, want OFFLINE:NORMAL", st.GetState())
			}
		})
	}
}

// TestResetSlaveContinuesAfterItsMark: a slave reset with -all (THL and
// tracking row gone) asks its source to continue after the transaction
// it had applied: nothing is applied twice; once it has a tracking row
// again, the mark goes.
func TestResetSlaveContinuesAfterItsMark(t *testing.T) {
	h := newHarness(t)
	h.src.add(3)
	s := h.start(RoleSlave)
	if err := s.Online(OnlineOptions{}); err != nil {
		t.Fatal(err)
	}
	waitApplied(t, s, 3)
	offline(t, s)
	if err := s.Reset(context.Background(), true, true, false); err != nil {
		t.Fatal(err)
	}
	h.src.add(5)
	if err := s.Online(OnlineOptions{}); err != nil {
		t.Fatal(err)
	}
	waitApplied(t, s, 5)
	h.db.mu.Lock()
	applied := slices.Clone(h.db.applied)
	h.db.mu.Unlock()
	if want := []uint64{0, 1, 2, 3, 4, 5}; !slices.Equal(applied, want) {
		t.Fatalf("applied %v, want %v", applied, want)
	}
	// The next run starts from the tracking row: the mark goes.
	offline(t, s)
	if err := s.Online(OnlineOptions{}); err != nil {
		t.Fatal(err)
	}
	waitState(t, s, StateOnline)
	if _, ok := s.loadResetMark(); ok {
		t.Fatal("the reset mark is still there once the slave started from its tracking row")
	}
}

// TestResetFailures: a reset -db whose applier cannot be made or opened,
// whose reset mark cannot be written, or whose database refuses to drop
// the tracking schema says why; the tracking row stays, and a slave's THL
// is not emptied after a failed -db.
func TestResetFailures(t *testing.T) {
	openErr, resetErr, newErr := errors.New("Access denied"), errors.New("DROP refused"), errors.New("bad applier config")
	for _, c := range []struct {
		name string
		// before changes the harness and the configuration before the
		// service starts, after the files once it has started.
		before func(t *testing.T, h *harness, cfg *Config)
		after  func(t *testing.T, cfg Config)
		want   error // nil: any error
	}{
		{name: "applier not made", before: func(_ *testing.T, _ *harness, cfg *Config) {
			cfg.Stages.NewApplier = func(apply.Config) (Applier, error) { return nil, newErr }
		}, want: newErr},
		{name: "database not opened", before: func(_ *testing.T, h *harness, _ *Config) { h.db.openErr = openErr }, want: openErr},
		{name: "tracking schema not dropped", before: func(_ *testing.T, h *harness, _ *Config) { h.db.resetErr = resetErr }, want: resetErr},
		{name: "reset mark not written", after: func(t *testing.T, cfg Config) {
			// A directory where the mark's file goes.
			if err := os.MkdirAll(filepath.Join(filepath.Dir(cfg.RoleFile), "reset-east.json", "x"), 0o755); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "reset mark's directory not made", after: func(t *testing.T, cfg Config) {
			// A file where the mark's directory goes.
			if err := os.WriteFile(filepath.Dir(cfg.RoleFile), nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}, want: syscall.ENOTDIR},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			cfg := h.config(RoleSlave)
			if c.before != nil {
				c.before(t, h, &cfg)
			}
			s, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			if c.after != nil {
				c.after(t, cfg)
			}
			storeEvents(t, s, 0, 3, "east1")
			h.db.setTracking(3)
			err = s.Reset(context.Background(), true, true, false)
			if err == nil || c.want != nil && !errors.Is(err, c.want) {
				t.Fatalf("reset: %v, want %v", err, c.want)
			}
			if seqno, ok := h.db.tracking(); !ok || seqno != 3 {
				t.Errorf("tracking row at %d (%v), want 3", seqno, ok)
			}
			if max, ok := s.Store().MaxSeqno(); !ok || max != 3 {
				t.Errorf("THL ends at %d (%v), want 3", max, ok)
			}
		})
	}
}

// TestResetClearsError: reset of an OFFLINE:ERROR service leaves it
// OFFLINE:NORMAL without its error.
func TestResetClearsError(t *testing.T) {
	h := newHarness(t)
	h.db.failAt[2] = errors.New("Duplicate entry '2' for key 'PRIMARY'")
	h.src.add(3)
	s := h.start(RoleSlave)
	if err := s.Online(OnlineOptions{}); err != nil {
		t.Fatal(err)
	}
	waitState(t, s, StateError)
	if err := s.Reset(context.Background(), true, false, false); err != nil {
		t.Fatal(err)
	}
	if st := s.Status(); st.GetState() != StateOffline || st.GetPendingErrorSeqno() != -1 || st.GetPendingError() != "" || st.GetMaxStoredSeqno() != -1 {
		t.Fatalf("after reset -thl: %s, pending %d %q, THL to %d; want OFFLINE:NORMAL, no error, an empty THL",
			st.GetState(), st.GetPendingErrorSeqno(), st.GetPendingError(), st.GetMaxStoredSeqno())
	}
}

// damagedTHL makes a service whose THL has lost a segment in its middle.
func damagedTHL(t *testing.T) (*harness, *Service) {
	t.Helper()
	h := newHarness(t)
	dir := filepath.Join(h.dir, "thl")
	files := writeSegments(t, dir, "east1")
	if err := os.Remove(filepath.Join(dir, files[2].Name)); err != nil {
		t.Fatal(err)
	}
	return h, h.start(RoleSlave)
}

// TestDamagedTHLReset: a THL that fails to open (a segment missing)
// leaves the service OFFLINE:ERROR with a THL error and no store; it
// refuses online and stays in error when put offline; its purge does
// nothing; reset -thl removes the damaged files, opens an empty log and
// clears the error, after which the service goes online.
func TestDamagedTHLReset(t *testing.T) {
	h, s := damagedTHL(t)
	st := s.Status()
	if st.GetState() != StateError || st.GetPendingErrorKind() != replicatorpb.PendingErrorKind_PENDING_ERROR_KIND_THL || s.Store() != nil {
		t.Fatalf("a damaged THL: %s, kind %v, store %v; want OFFLINE:ERROR, THL, none", st.GetState(), st.GetPendingErrorKind(), s.Store())
	}
	if err := s.Online(OnlineOptions{}); !errors.Is(err, ErrState) {
		t.Fatalf("online with a damaged THL: %v, want ErrState", err)
	}
	offline(t, s)
	if got := s.State(); got != StateError {
		t.Fatalf("offline with a damaged THL: %s, want it still OFFLINE:ERROR", got)
	}
	s.purgeOld() // no store: nothing to do
	if err := s.Reset(context.Background(), true, false, false); err != nil {
		t.Fatal(err)
	}
	st = s.Status()
	if st.GetState() != StateOffline || st.GetPendingError() != "" || s.Store() == nil || st.GetMaxStoredSeqno() != -1 {
		t.Fatalf("after reset -thl: %s, pending %q, store %v, THL to %d; want OFFLINE:NORMAL, no error, an empty THL",
			st.GetState(), st.GetPendingError(), s.Store(), st.GetMaxStoredSeqno())
	}
	if _, err := thl.Open(thl.Config{Dir: filepath.Join(h.dir, "thl")}); !errors.Is(err, thl.ErrLocked) {
		t.Fatalf("the new THL is not the service's (not locked): %v", err)
	}
	h.src.add(2)
	if err := s.Online(OnlineOptions{}); err != nil {
		t.Fatal(err)
	}
	waitApplied(t, s, 2)
}

// TestDamagedTHLResetWithoutItsDirectory: reset -thl of a damaged THL
// whose directory is gone says so and leaves the service in error.
func TestDamagedTHLResetWithoutItsDirectory(t *testing.T) {
	h, s := damagedTHL(t)
	if err := os.RemoveAll(filepath.Join(h.dir, "thl")); err != nil {
		t.Fatal(err)
	}
	if err := s.Reset(context.Background(), true, false, false); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("reset -thl without the THL's directory: %v, want it not found", err)
	}
	if got := s.State(); got != StateError {
		t.Fatalf("state %s, want OFFLINE:ERROR still", got)
	}
}

// TestDamagedTHLResetDBKeepsRefusingOnline: reset -db of a service whose
// THL is damaged leaves the THL damaged: online must still refuse it
// (ErrState), not fail otherwise.
func TestDamagedTHLResetDBKeepsRefusingOnline(t *testing.T) {
	_, s := damagedTHL(t)
	if err := s.Reset(context.Background(), false, true, false); err != nil {
		t.Fatal(err)
	}
	if err := s.Online(OnlineOptions{}); !errors.Is(err, ErrState) {
		t.Fatalf("online with a damaged THL after reset -db: %v, want ErrState", err)
	}
	if st := s.Status(); st.GetState() != StateError || st.GetPendingErrorKind() != replicatorpb.PendingErrorKind_PENDING_ERROR_KIND_THL {
		t.Fatalf("after reset -db the status says %s (%v): the THL is still damaged", st.GetState(), st.GetPendingErrorKind())
	}
}
