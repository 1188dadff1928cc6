package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/carbidedb/carbide/internal/testutil"
	"github.com/carbidedb/carbide/replicator/thl"
	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

// The THL writeSegments makes: transactions 0 to segTxns-1, those
// before segRecent committed 30 days ago, the others now.
const segTxns, segRecent = 30, 20

// writeSegments fills the THL in dir with segTxns transactions that
// source extracted, in segments of about 1 KiB (a few transactions each),
// and returns its segments.
func writeSegments(t *testing.T, dir string, source string) []thl.FileInfo {
	t.Helper()
	st, err := thl.Open(thl.Config{Dir: dir, SegmentSize: 1 << 10, IndexInterval: 256})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	old := time.Now().Add(-30 * 24 * time.Hour).UnixMicro()
	for seqno := range uint64(segTxns) {
		commit := old
		if seqno >= segRecent {
			commit = time.Now().UnixMicro()
		}
		ev := &thlpb.Event{Seqno: seqno, LastFrag: true, EventId: eventID(seqno), SourceId: source, SourceCommitTimeUs: commit,
			Shard: strings.Repeat("s", 200)}
		if source == "east2" {
			ev.EventId = localID(seqno + 1)
		}
		if err := st.Append(ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Sync(); err != nil {
		t.Fatal(err)
	}
	files := st.Info().Files
	if len(files) < 6 {
		t.Fatalf("%d segments; the tests need more", len(files))
	}
	return files
}

// segFirst is the first seqno of the segment holding seqno.
func segFirst(t *testing.T, files []thl.FileInfo, seqno uint64) uint64 {
	t.Helper()
	for _, f := range files {
		if f.First <= seqno && seqno <= f.Last {
			return f.First
		}
	}
	t.Fatalf("no segment holds seqno %d", seqno)
	return 0
}

// logRecorder keeps the messages a service logs at Warn and above.
type logRecorder struct {
	mu   sync.Mutex
	msgs []string
}

func (r *logRecorder) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (r *logRecorder) WithAttrs([]slog.Attr) slog.Handler           { return r }
func (r *logRecorder) WithGroup(string) slog.Handler                { return r }
func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	msg := rec.Message
	rec.Attrs(func(a slog.Attr) bool { msg += " " + a.String(); return true })
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, msg)
	return nil
}

func (r *logRecorder) has(prefix string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range r.msgs {
		if strings.HasPrefix(m, prefix) {
			return true
		}
	}
	return false
}

// TestPurgeByRetention: THL segments whose transactions are all older
// than the retention go, the newest segment never; a master purges
// whatever is old, a slave only what its database has applied: as its
// running applier says, else as its tracking row was last known, and
// nothing while it does not know it. A purge that fails is logged.
func TestPurgeByRetention(t *testing.T) {
	const applied = 10 // a slave's tracking row
	for _, c := range []struct {
		name      string
		role      string
		retention time.Duration
		prepare   func(t *testing.T, h *harness, s *Service)
		want      func(files []thl.FileInfo) uint64 // the first seqno kept
	}{
		{"master", RoleMaster, 24 * time.Hour, nil,
			func(f []thl.FileInfo) uint64 { return segFirst(t, f, segRecent) }},
		{"master within the retention", RoleMaster, 60 * 24 * time.Hour, nil,
			func([]thl.FileInfo) uint64 { return 0 }},
		{"slave stopped after 10", RoleSlave, 24 * time.Hour, func(t *testing.T, h *harness, s *Service) {
			h.db.setTracking(applied)
			h.db.failAt[applied+1] = errors.New("Duplicate entry")
			if err := s.Online(OnlineOptions{}); err != nil {
				t.Fatal(err)
			}
			waitState(t, s, StateError)
		}, func(f []thl.FileInfo) uint64 { return segFirst(t, f, applied+1) }},
		{"online slave", RoleSlave, 24 * time.Hour, func(t *testing.T, h *harness, s *Service) {
			h.db.setTracking(applied)
			if err := s.Online(OnlineOptions{}); err != nil {
				t.Fatal(err)
			}
			waitApplied(t, s, segTxns-1)
		}, func(f []thl.FileInfo) uint64 { return segFirst(t, f, segRecent) }},
		{"slave not knowing its position", RoleSlave, 24 * time.Hour, nil,
			func([]thl.FileInfo) uint64 { return 0 }},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			files := writeSegments(t, filepath.Join(h.dir, "thl"), "east1")
			if next, recent := segFirst(t, files, applied+1), segFirst(t, files, segRecent); next == 0 || next >= recent {
				t.Fatalf("segments start at %d (seqno %d) and %d (seqno %d): the cases need them apart", next, applied+1, recent, segRecent)
			}
			cfg := h.config(c.role)
			cfg.Retention = c.retention
			s, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			if c.prepare != nil {
				c.prepare(t, h, s)
			}
			s.purgeOld()
			want := c.want(files)
			if min, ok := s.Store().MinSeqno(); !ok || min != want {
				t.Fatalf("THL starts at %d (%v), want %d", min, ok, want)
			}
			if max, _ := s.Store().MaxSeqno(); max != segTxns-1 {
				t.Fatalf("THL ends at %d, want %d", max, segTxns-1)
			}
		})
	}
	t.Run("store closed", func(t *testing.T) {
		h := newHarness(t)
		writeSegments(t, filepath.Join(h.dir, "thl"), "east1")
		logs := &logRecorder{}
		cfg := h.config(RoleMaster)
		cfg.Retention, cfg.Logger = 24*time.Hour, slog.New(logs)
		s, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s.purgeOld()
		if !logs.has("THL purge by retention failed") {
			t.Fatalf("no warning logged for a purge of a closed THL; logged %q", logs.msgs)
		}
	})
}

// TestMaintainPurgesUntilCancelled: Maintain purges at once and again at
// every interval, as far as the slave has applied by then, and returns
// when its context ends.
func TestMaintainPurgesUntilCancelled(t *testing.T) {
	h := newHarness(t)
	files := writeSegments(t, filepath.Join(h.dir, "thl"), "east1")
	h.db.setTracking(10)
	cfg := h.config(RoleSlave)
	cfg.Retention = 24 * time.Hour
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if got := s.Status().GetAppliedLastSeqno(); got != 10 {
		t.Fatalf("appliedLastSeqno %d, want 10", got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Maintain(ctx, 10*time.Millisecond) }()
	purgedTo := func(want uint64) {
		t.Helper()
		testutil.Eventually(t, 5*time.Second, func() error {
			if min, _ := s.Store().MinSeqno(); min != want {
				return fmt.Errorf("THL starts at %d, want %d", min, want)
			}
			return nil
		})
	}
	purgedTo(segFirst(t, files, 11))
	if err := s.Online(OnlineOptions{}); err != nil {
		t.Fatal(err)
	}
	waitApplied(t, s, segTxns-1)
	purgedTo(segFirst(t, files, segRecent))
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Maintain did not return once its context ended")
	}
}

// TestNewWaitsForTheTHLLock: a replicator stopped a moment ago may still
// hold its THL's lock while it exits: New waits for it, then opens the
// THL as it was.
func TestNewWaitsForTheTHLLock(t *testing.T) {
	h := newHarness(t)
	first := h.start(RoleMaster)
	storeEvents(t, first, 0, 2, "east2")
	if _, err := thl.Open(thl.Config{Dir: filepath.Join(h.dir, "thl")}); !errors.Is(err, thl.ErrLocked) {
		t.Fatalf("open of a locked THL: %v, want thl.ErrLocked", err)
	}
	time.AfterFunc(200*time.Millisecond, func() { first.Close() })
	second, err := New(h.config(RoleMaster))
	if err != nil {
		t.Fatalf("New while the THL is locked for a moment: %v", err)
	}
	defer second.Close()
	if max, ok := second.Store().MaxSeqno(); !ok || max != 2 {
		t.Fatalf("THL ends at %d (%v), want 2", max, ok)
	}
}

// TestNewRefusals: New refuses a configuration that lacks what a service
// needs (ErrInput), and a THL directory it cannot make.
func TestNewRefusals(t *testing.T) {
	if _, err := New(Config{Name: "east", Role: RoleSlave}); !errors.Is(err, ErrInput) {
		t.Errorf("New without a THL directory and a database: %v, want ErrInput", err)
	}
	h := newHarness(t)
	cfg := h.config(RoleSlave)
	cfg.THLDir = filepath.Join(h.dir, "file", "thl")
	if err := os.WriteFile(filepath.Join(h.dir, "file"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if s, err := New(cfg); !errors.Is(err, syscall.ENOTDIR) || s != nil {
		t.Errorf("New with a THL directory under a file: %v, %v; want no service and ENOTDIR", s, err)
	}
}

// TestNewRepairsTornTHLTail: a THL whose last write was torn (a process
// killed mid-append) opens repaired, with what was whole, and the repair
// is logged.
func TestNewRepairsTornTHLTail(t *testing.T) {
	h := newHarness(t)
	dir := filepath.Join(h.dir, "thl")
	files := writeSegments(t, dir, "east1")
	f, err := os.OpenFile(filepath.Join(dir, files[len(files)-1].Name), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte{0, 0, 1, 0, 0xde, 0xad}); err != nil {
		t.Fatal(err)
	}
	f.Close()
	logs := &logRecorder{}
	cfg := h.config(RoleSlave)
	cfg.Logger = slog.New(logs)
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.State() != StateOffline || len(s.Store().Repairs()) != 1 {
		t.Fatalf("state %s, repairs %v; want OFFLINE:NORMAL after one repair", s.State(), s.Store().Repairs())
	}
	if max, _ := s.Store().MaxSeqno(); max != segTxns-1 {
		t.Fatalf("THL ends at %d, want %d", max, segTxns-1)
	}
	if !logs.has("THL repaired on open") {
		t.Fatalf("the repair was not logged; logged %q", logs.msgs)
	}
}
