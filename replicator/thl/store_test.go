package thl

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

func TestAppendReadBackAcrossSegmentsAndReopen(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	s := mustOpen(t, cfg)
	if _, ok := s.MaxSeqno(); ok {
		t.Fatal("empty store has a max seqno")
	}
	want := workload(100, 3000, 60)
	appendAll(t, s, want, 37)
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	if min, _ := s.MinSeqno(); min != 100 {
		t.Fatalf("min = %d, want 100", min)
	}
	if max, _ := s.MaxSeqno(); max != 3099 {
		t.Fatalf("max = %d, want 3099", max)
	}
	info := s.Info()
	if len(info.Files) < 10 {
		t.Fatalf("only %d segments; want several", len(info.Files))
	}
	for _, f := range info.Files[:len(info.Files)-1] {
		if !f.Sealed || f.Size > cfg.SegmentSize+2000 {
			t.Fatalf("segment %+v: want sealed, about %d bytes", f, cfg.SegmentSize)
		}
		if _, err := os.Stat(filepath.Join(dir, "thl.index."+strings.TrimPrefix(f.Name, "thl.data."))); err != nil {
			t.Fatalf("sealed segment has no index: %v", err)
		}
	}
	sameEvents(t, readN(t, s, 100, len(want)), want)

	// A fragmented transaction, whole.
	frags, err := s.Get(1004)
	if err != nil || len(frags) != 3 || !frags[2].GetLastFrag() || !proto.Equal(frags[0], want[find(want, 1004)]) {
		t.Fatalf("Get(1004) = %d fragments, %v", len(frags), err)
	}
	if _, err := s.Get(3100); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get past the end: %v, want ErrNotFound", err)
	}
	last, _ := s.Last()
	if last.GetSeqno() != 3099 || last.GetEventId() != want[len(want)-1].GetEventId() || last.GetEpoch() != 7 {
		t.Fatalf("Last = %v", last)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Reopen and continue.
	s = mustOpen(t, cfg)
	if len(s.Repairs()) != 0 {
		t.Fatalf("clean reopen repaired: %v", s.Repairs())
	}
	if max, _ := s.MaxSeqno(); max != 3099 {
		t.Fatalf("max after reopen = %d", max)
	}
	more := workload(3100, 500, 60)
	appendAll(t, s, more, 50)
	all := append(append([]*thlpb.Event(nil), want...), more...)
	sameEvents(t, readN(t, s, 100, len(all)), all)
	if err := s.Verify(t.Context()); err != nil {
		t.Fatal(err)
	}
	// From the middle of the log.
	sameEvents(t, readN(t, s, 2000, 100), all[find(all, 2000):find(all, 2000)+100])
}

func find(evs []*thlpb.Event, seqno uint64) int {
	for i, ev := range evs {
		if ev.GetSeqno() == seqno && ev.GetFragno() == 0 {
			return i
		}
	}
	return -1
}

func TestSeekReadsAtMostOneIndexInterval(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.SegmentSize, cfg.IndexInterval = 256<<10, 4<<10
	s := mustOpen(t, cfg)
	evs := workload(0, 5000, 100)
	appendAll(t, s, evs, 100)
	maxRec := 0
	for _, ev := range evs {
		maxRec = max(maxRec, proto.Size(ev)+recordHeaderSize)
	}
	for _, q := range []uint64{0, 1, 3, 4, 999, 1234, 2500, 2501, 4096, 4999} {
		r, err := s.NewReader(q)
		if err != nil {
			t.Fatal(err)
		}
		ev, err := r.Next(t.Context())
		if err != nil || ev.GetSeqno() != q || ev.GetFragno() != 0 {
			t.Fatalf("reader at %d returned %v, %v", q, ev, err)
		}
		// The seek reads from an index entry to the record before q,
		// through a buffer that may read up to 64 KiB ahead; count
		// what it had to cross, not the buffer.
		if r.seekBytes > readBufferSize+int64(maxRec) {
			t.Fatalf("seek to %d read %d bytes", q, r.seekBytes)
		}
		r.Close()
	}
	// Crossed records: count them through a tiny buffer.
	for _, q := range []uint64{1234, 4999} {
		c := &Reader{s: s}
		s.mu.RLock()
		g := s.segs[s.segFor(q)]
		e, _ := g.seekEntry(q)
		if err := s.seek(c, q); err != nil {
			t.Fatal(err)
		}
		s.mu.RUnlock()
		crossed := c.off - e.off
		c.cur.close()
		if crossed > cfg.IndexInterval+int64(maxRec) {
			t.Fatalf("seek to %d crossed %d bytes of records; interval %d", q, crossed, cfg.IndexInterval)
		}
	}
}

func TestSequenceChecks(t *testing.T) {
	s := mustOpen(t, testConfig(t, t.TempDir()))
	if err := s.Append(event(5, 1, true, 10)); !errors.Is(err, ErrSequence) {
		t.Fatalf("first event fragno 1 on an empty log: %v", err)
	}
	appendAll(t, s, txn(5, 1, 10), 1)
	appendAll(t, s, []*thlpb.Event{event(6, 0, false, 10)}, 1)
	cases := map[string]*thlpb.Event{
		"gap":              event(8, 0, true, 10),
		"new txn too soon": event(7, 0, true, 10),
		"repeat":           event(5, 0, true, 10),
		"skipped fragment": event(6, 2, true, 10),
	}
	for name, ev := range cases {
		err := s.Append(ev)
		if !errors.Is(err, ErrSequence) {
			t.Errorf("%s: %v, want ErrSequence", name, err)
		}
	}
	err := s.Append(event(6, 1, true, 10), event(8, 0, true, 10))
	if !errors.Is(err, ErrSequence) || !strings.Contains(err.Error(), "gap of 1 seqno") {
		t.Fatalf("gap inside a batch: %v", err)
	}
	// Nothing of the refused batch was written.
	if max, _ := s.MaxSeqno(); max != 5 {
		t.Fatalf("max = %d after a refused batch", max)
	}
	appendAll(t, s, []*thlpb.Event{event(6, 1, true, 10), event(7, 0, true, 10)}, 2)
	for _, bad := range []*thlpb.Event{nil, {}} {
		if err := s.Append(bad); !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrSequence) {
			t.Fatalf("append %v: %v", bad, err)
		}
	}
	if max, _ := s.MaxSeqno(); max != 7 {
		t.Fatalf("max = %d", max)
	}
}

func TestEmptyEventIsRefused(t *testing.T) {
	s := mustOpen(t, testConfig(t, t.TempDir()))
	if err := s.Append(&thlpb.Event{}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("empty event: %v", err)
	}
}

// An event over the record limit is refused, naming its seqno and the
// limit, and nothing of its batch is stored; one just under it is stored
// and read back.
func TestTooLargeEventIsRefused(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.maxRecord = 1 << 20
	s := mustOpen(t, cfg)
	err := s.Append(event(0, 0, true, 10), event(1, 0, true, 1<<20))
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "seqno 1 fragno 0") || !strings.Contains(err.Error(), "record limit of 1048576 bytes") {
		t.Fatalf("oversized event: %v", err)
	}
	if _, ok := s.MaxSeqno(); ok {
		t.Fatal("a batch with an oversized event was stored in part")
	}
	if err := s.Append(event(0, 0, true, 1<<20-200)); err != nil {
		t.Fatalf("event under the limit: %v", err)
	}
	if got := readN(t, s, 0, 1); len(got[0].GetChanges()[0].GetRows().GetRows()[0].GetAfter()[1].GetBytes()) != 1<<20-200 {
		t.Fatal("event under the limit read back changed")
	}
}

func TestLockAndReadOnly(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	s := mustOpen(t, cfg)
	appendAll(t, s, workload(0, 300, 50), 10)
	if _, err := Open(cfg); !errors.Is(err, ErrLocked) {
		t.Fatalf("second writable open: %v, want ErrLocked", err)
	}
	ro := cfg
	ro.ReadOnly = true
	r := mustOpen(t, ro)
	if err := r.Append(event(300, 0, true, 1)); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("append to a read-only store: %v", err)
	}
	got, err := readToEnd(r, 0)
	if err != nil {
		t.Fatal(err)
	}
	sameEvents(t, got, workload(0, 300, 50))
	s.Close()
	s2 := mustOpen(t, cfg) // lock released by Close
	s2.Close()
	if _, err := Open(Config{Dir: filepath.Join(dir, "nope"), ReadOnly: true}); err == nil {
		t.Fatal("read-only open of a missing directory succeeded")
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []Config{{}, {Dir: "x", SegmentSize: 10}, {Dir: "x", IndexInterval: 1}, {Dir: "x", SegmentSize: 4096, IndexInterval: 8192}} {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v validated", c)
		}
	}
	if err := DefaultConfig("x").Validate(); err != nil {
		t.Fatal(err)
	}
	if DirFor("/opt/continuent", "east") != "/opt/continuent/thl/east" {
		t.Fatal(DirFor("/opt/continuent", "east"))
	}
}

// Partial names the last stored fragment while the log ends inside a
// transaction, and nothing once it is finished, truncated or reopened.
func TestPartial(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, Config{Dir: dir})
	if _, ok := s.Partial(); ok {
		t.Fatal("an empty log has a partial transaction")
	}
	frags := txn(5, 4, 10)
	if err := s.Append(event(4, 0, true, 10)); err != nil {
		t.Fatal(err)
	}
	if err := s.Append(frags[:3]...); err != nil {
		t.Fatal(err)
	}
	p, ok := s.Partial()
	if !ok || p.GetSeqno() != 5 || p.GetFragno() != 2 || p.GetEventId() != frags[2].GetEventId() || len(p.GetChanges()) != 0 {
		t.Fatalf("partial = %v, %v", p, ok)
	}
	if err := s.Append(frags[3]); err != nil {
		t.Fatal(err)
	}
	if p, ok := s.Partial(); ok {
		t.Fatalf("finished transaction still partial: %v", p)
	}
	if err := s.Append(txn(6, 3, 10)[:2]...); err != nil {
		t.Fatal(err)
	}
	if err := s.Truncate(5); err != nil {
		t.Fatal(err)
	}
	if p, ok := s.Partial(); ok {
		t.Fatalf("partial after truncation: %v", p)
	}
	s.Append(txn(6, 3, 10)[:2]...)
	s.Close()
	s = mustOpen(t, Config{Dir: dir})
	if p, ok := s.Partial(); ok {
		t.Fatalf("partial after reopening (Open cuts it): %v", p)
	}
}

// DropIncomplete removes the fragments of an unfinished last transaction,
// the whole log when it is the first, and nothing when the log ends at a
// transaction boundary; the same seqno can be appended again after it.
func TestDropIncomplete(t *testing.T) {
	s := mustOpen(t, Config{Dir: t.TempDir()})
	if p, err := s.DropIncomplete(); p != nil || err != nil {
		t.Fatalf("empty log: %v, %v", p, err)
	}
	if err := s.Append(txn(0, 3, 10)[:2]...); err != nil {
		t.Fatal(err)
	}
	if p, err := s.DropIncomplete(); err != nil || p.GetSeqno() != 0 || p.GetFragno() != 1 {
		t.Fatalf("first transaction: dropped %v, %v; want seqno 0 fragno 1", p, err)
	}
	if _, ok := s.MinSeqno(); ok {
		t.Fatal("the log still holds the fragments of its first, unfinished transaction")
	}
	if err := s.Append(event(4, 0, true, 10)); err != nil {
		t.Fatal(err)
	}
	if p, err := s.DropIncomplete(); p != nil || err != nil {
		t.Fatalf("log at a transaction boundary: dropped %v, %v", p, err)
	}
	if err := s.Append(txn(5, 4, 10)[:3]...); err != nil {
		t.Fatal(err)
	}
	if p, err := s.DropIncomplete(); err != nil || p.GetSeqno() != 5 || p.GetFragno() != 2 {
		t.Fatalf("dropped %v, %v; want seqno 5 fragno 2", p, err)
	}
	if _, ok := s.Partial(); ok {
		t.Fatal("partial after DropIncomplete")
	}
	if err := s.Append(txn(5, 2, 10)...); err != nil {
		t.Fatalf("append seqno 5 again: %v", err)
	}
	if last, ok := s.Last(); !ok || last.GetSeqno() != 5 || last.GetFragno() != 1 {
		t.Fatalf("last = %v, %v", last, ok)
	}
}
