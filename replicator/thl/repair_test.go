package thl

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

// buildStore writes workload(0, n) into dir and closes it.
func buildStore(t *testing.T, dir string, n int) []*thlpb.Event {
	t.Helper()
	s := mustOpen(t, testConfig(t, dir))
	evs := workload(0, n, 60)
	appendAll(t, s, evs, 25)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return evs
}

// segFiles returns the data files of dir in order.
func segFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "thl.data.*"))
	if err != nil || len(m) == 0 {
		t.Fatalf("no segments in %s: %v", dir, err)
	}
	return m
}

// recordOffsets returns the offset of every record of a segment file.
func recordOffsets(t *testing.T, path string) []int64 {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var offs []int64
	for off := headerSize; off < len(data); {
		_, n, p := decodeRecord(data[off:])
		if p != recOK {
			t.Fatalf("%s: bad record at %d: %v", path, off, p)
		}
		offs = append(offs, int64(off))
		off += n
	}
	return offs
}

// complete drops trailing fragments of an unfinished transaction.
func complete(evs []*thlpb.Event) []*thlpb.Event {
	for len(evs) > 0 && !evs[len(evs)-1].GetLastFrag() {
		evs = evs[:len(evs)-1]
	}
	return evs
}

func flipByte(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x5a
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func TestTornTailCutAtEveryByteOfTheLastRecord(t *testing.T) {
	dir := t.TempDir()
	evs := buildStore(t, dir, 494) // seqno 493 has 3 fragments
	files := segFiles(t, dir)
	lastSeg := files[len(files)-1]
	orig, _ := os.ReadFile(lastSeg)
	offs := recordOffsets(t, lastSeg)
	// The last record, and for good measure the one before it.
	for _, k := range []int{1, 2} {
		recOff := offs[len(offs)-k]
		recEnd := int64(len(orig))
		if k == 2 {
			recEnd = offs[len(offs)-1]
		}
		want := complete(evs[:len(evs)-k])
		for cut := recOff + 1; cut < recEnd; cut++ {
			if err := os.WriteFile(lastSeg, orig[:cut], 0o640); err != nil {
				t.Fatal(err)
			}
			s, err := Open(testConfig(t, dir))
			if err != nil {
				t.Fatalf("cut at %d: open: %v", cut, err)
			}
			if max, _ := s.MaxSeqno(); max != want[len(want)-1].GetSeqno() {
				t.Fatalf("cut at %d: max %d, want %d", cut, max, want[len(want)-1].GetSeqno())
			}
			rp := s.Repairs()
			if len(rp) == 0 || rp[0].File != lastSeg || rp[0].Offset != recOff || !rp[0].Applied {
				t.Fatalf("cut at %d: repairs %v", cut, rp)
			}
			if cut == recOff+5 {
				sameEvents(t, readN(t, s, 0, len(want)), want)
			}
			s.Close()
			if fi, _ := os.Stat(lastSeg); fi.Size() > recOff {
				t.Fatalf("cut at %d: segment still %d bytes, want at most %d", cut, fi.Size(), recOff)
			}
			// It goes on where it stopped.
			s = mustOpen(t, testConfig(t, dir))
			appendAll(t, s, evs[len(want):], 10)
			s.Close()
		}
	}
	s := mustOpen(t, testConfig(t, dir))
	sameEvents(t, readN(t, s, 0, len(evs)), evs)
	if err := s.Verify(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func TestTornTailOfZerosOrGarbageIsCut(t *testing.T) {
	for name, tail := range map[string]func(last []byte) []byte{
		"zeros": func(last []byte) []byte { return append(last, make([]byte, 5000)...) },
		"bad crc": func(last []byte) []byte {
			last = bytes.Clone(last)
			last[len(last)-10] ^= 1
			return last
		},
		"bad crc then garbage": func(last []byte) []byte {
			last = bytes.Clone(last)
			last[len(last)-10] ^= 1
			return append(last, []byte("\x10\x00\x00\x00garbage-that-is-no-record")...)
		},
		"zeros then garbage": func(last []byte) []byte {
			return append(append(last, make([]byte, 64)...), 0xff, 0xff, 0xff, 0xff, 1, 2, 3)
		},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			evs := buildStore(t, dir, 300)
			files := segFiles(t, dir)
			lastSeg := files[len(files)-1]
			data, _ := os.ReadFile(lastSeg)
			offs := recordOffsets(t, lastSeg)
			lastOff := offs[len(offs)-1]
			var want []*thlpb.Event
			if name == "zeros" || name == "zeros then garbage" {
				want = evs
			} else {
				want = complete(evs[:len(evs)-1])
			}
			if err := os.WriteFile(lastSeg, tail(data), 0o640); err != nil {
				t.Fatal(err)
			}
			s := mustOpen(t, testConfig(t, dir))
			rp := s.Repairs()
			if len(rp) == 0 {
				t.Fatal("no repair reported")
			}
			if name != "zeros" && name != "zeros then garbage" && rp[0].Offset != lastOff {
				t.Fatalf("repair %v, want it at %d", rp[0], lastOff)
			}
			sameEvents(t, readN(t, s, 0, len(want)), want)
		})
	}
}

func TestDamageInTheActiveSegmentFailsOpen(t *testing.T) {
	dir := t.TempDir()
	buildStore(t, dir, 300)
	files := segFiles(t, dir)
	lastSeg := files[len(files)-1]
	offs := recordOffsets(t, lastSeg)
	if len(offs) < 4 {
		t.Fatalf("active segment has %d records; want more", len(offs))
	}
	bad := offs[len(offs)-3]
	size := len(mustRead(t, lastSeg))
	flipByte(t, lastSeg, bad+20)
	_, err := Open(testConfig(t, dir))
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("open: %v, want ErrCorrupt", err)
	}
	wantMsg := fmt.Sprintf("thl: %s: record at offset %d fails its CRC check; the log is damaged", lastSeg, bad)
	if !strings.HasPrefix(err.Error(), wantMsg) {
		t.Fatalf("error %q\nwant it to start %q", err, wantMsg)
	}
	// The files are left alone.
	if len(mustRead(t, lastSeg)) != size {
		t.Fatal("open changed the damaged segment")
	}
}

func TestDamageInASealedSegmentStopsReaders(t *testing.T) {
	dir := t.TempDir()
	evs := buildStore(t, dir, 600)
	files := segFiles(t, dir)
	seg := files[2]
	offs := recordOffsets(t, seg)
	bad := offs[len(offs)/2]
	flipByte(t, seg, bad+30)

	s := mustOpen(t, testConfig(t, dir)) // the index is intact: open does not read it all
	r, err := s.NewReader(0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var got []*thlpb.Event
	for {
		ev, err := r.Next(t.Context())
		if err != nil {
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), fmt.Sprintf("%s: record at offset %d fails its CRC check", seg, bad)) {
				t.Fatalf("reader: %v", err)
			}
			break
		}
		if name, off := r.File(); name == filepath.Base(seg) && off >= bad {
			t.Fatalf("reader returned the record at %d of the damaged segment", off)
		}
		got = append(got, ev)
	}
	sameEvents(t, got, evs[:len(got)])
	// Sticky: nothing past it.
	if _, err := r.Next(t.Context()); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("second Next: %v", err)
	}
	damaged := evs[len(got)]
	if _, err := s.Get(damaged.GetSeqno()); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Get of the damaged transaction: %v", err)
	}
	if err := s.Verify(t.Context()); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Verify: %v", err)
	}
	// Rebuilding that segment's index (on a fresh open) finds it too.
	s.Close()
	os.Remove(filepath.Join(dir, "thl.index."+strings.TrimPrefix(filepath.Base(seg), "thl.data.")))
	if _, err := Open(testConfig(t, dir)); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("open with the index gone: %v", err)
	}
}

// syncBuffer is a log sink for tests.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func TestMissingOrDamagedIndexIsRebuilt(t *testing.T) {
	dir := t.TempDir()
	evs := buildStore(t, dir, 600)
	idx, _ := filepath.Glob(filepath.Join(dir, "thl.index.*"))
	if len(idx) < 5 {
		t.Fatalf("%d index files", len(idx))
	}
	orig := map[string][]byte{}
	for _, p := range idx {
		orig[p], _ = os.ReadFile(p)
	}
	os.Remove(idx[0])
	flipByte(t, idx[1], 30)
	os.Truncate(idx[2], 10)
	os.WriteFile(idx[3], []byte("not an index"), 0o640)

	var logs syncBuffer
	cfg := testConfig(t, dir)
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	s := mustOpen(t, cfg)
	if n := strings.Count(logs.String(), "rebuilding segment index"); n != 4 {
		t.Fatalf("%d rebuilds logged, want 4:\n%s", n, logs.String())
	}
	for _, p := range idx {
		got, _ := os.ReadFile(p)
		if !bytes.Equal(got, orig[p]) {
			t.Fatalf("%s rebuilt differently", p)
		}
	}
	sameEvents(t, readN(t, s, 0, len(evs)), evs)
	s.Close()

	// An index that describes another size of data (a segment changed
	// behind the store's back) is stale: rebuilt as well.
	files := segFiles(t, dir)
	d, _ := os.ReadFile(files[1])
	os.WriteFile(files[1], d[:len(d)-3], 0o640)
	_, err := Open(cfg)
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), files[1]) {
		t.Fatalf("open with a sealed segment cut short: %v", err)
	}
}

func TestMissingSegmentIsCorruption(t *testing.T) {
	dir := t.TempDir()
	buildStore(t, dir, 600)
	files := segFiles(t, dir)
	os.Remove(files[3])
	_, err := Open(testConfig(t, dir))
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), filepath.Base(files[3])+" is missing") {
		t.Fatalf("open: %v", err)
	}
}

func TestIncompleteTransactionIsDroppedOnOpen(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	s := mustOpen(t, cfg)
	appendAll(t, s, workload(0, 10, 20), 5)
	appendAll(t, s, txn(10, 4, 20)[:2], 5) // the replicator stopped inside seqno 10
	if max, _ := s.MaxSeqno(); max != 9 {
		t.Fatalf("max = %d with seqno 10 incomplete", max)
	}
	s.Close()

	ro := cfg
	ro.ReadOnly = true
	r := mustOpen(t, ro)
	if rp := r.Repairs(); len(rp) != 1 || rp[0].Applied {
		t.Fatalf("read-only repairs: %v", rp)
	}
	got, err := readToEnd(r, 0)
	if err != nil || len(got) != 12+2 {
		t.Fatalf("read-only store shows %d events, %v", len(got), err)
	}
	r.Close()

	s = mustOpen(t, cfg)
	if rp := s.Repairs(); len(rp) != 1 || !strings.Contains(rp[0].Reason, "incomplete transaction") {
		t.Fatalf("repairs: %v", rp)
	}
	appendAll(t, s, txn(10, 4, 20), 5) // its source sends all of it again
	sameEvents(t, readN(t, s, 0, 16), append(workload(0, 10, 20), txn(10, 4, 20)...))
}

func TestIncompleteFirstTransactionEmptiesTheLog(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	s := mustOpen(t, cfg)
	appendAll(t, s, txn(40, 3, 20)[:2], 5)
	s.Close()
	s = mustOpen(t, cfg)
	if _, ok := s.MinSeqno(); ok {
		t.Fatal("log not empty")
	}
	appendAll(t, s, txn(77, 1, 20), 1) // an empty log starts anywhere
	if min, _ := s.MinSeqno(); min != 77 {
		t.Fatalf("min %d", min)
	}
}

func TestReadOnlyOpenDoesNotRepair(t *testing.T) {
	dir := t.TempDir()
	evs := buildStore(t, dir, 100)
	files := segFiles(t, dir)
	lastSeg := files[len(files)-1]
	data, _ := os.ReadFile(lastSeg)
	os.WriteFile(lastSeg, data[:len(data)-7], 0o640)
	cfg := testConfig(t, dir)
	cfg.ReadOnly = true
	s := mustOpen(t, cfg)
	if rp := s.Repairs(); len(rp) != 1 || rp[0].Applied {
		t.Fatalf("repairs %v", rp)
	}
	if fi, _ := os.Stat(lastSeg); fi.Size() != int64(len(data)-7) {
		t.Fatal("read-only open changed the file")
	}
	got, err := readToEnd(s, 0)
	if err != nil {
		t.Fatal(err)
	}
	sameEvents(t, got, evs[:len(evs)-1])
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// writeSegment writes a segment of the given events, CRCs and all.
func writeSegment(t *testing.T, path string, first uint64, evs ...*thlpb.Event) {
	t.Helper()
	b := encodeHeader(first)
	for _, ev := range evs {
		var err error
		if b, err = appendRecord(b, ev, MaxRecordSize); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(path, b, 0o640); err != nil {
		t.Fatal(err)
	}
}

func TestSeqnosOutOfOrderAreCorruption(t *testing.T) {
	for name, evs := range map[string][]*thlpb.Event{
		"gap":              {event(5, 0, true, 10), event(7, 0, true, 10)},
		"repeat":           {event(5, 0, true, 10), event(5, 0, true, 10)},
		"fragment skipped": {event(5, 0, false, 10), event(5, 2, true, 10)},
		"new txn inside":   {event(5, 0, false, 10), event(6, 0, true, 10)},
		"wrong first":      {event(6, 0, true, 10)},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, DataName(1))
			// A valid record after the bad one, so it is not a torn tail.
			writeSegment(t, path, 5, append(evs, event(9, 0, true, 10))...)
			_, err := Open(testConfig(t, dir))
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "was expected") || !strings.Contains(err.Error(), path+": record at offset ") {
				t.Fatalf("open: %v", err)
			}
		})
	}
	// Across segments: the second starts where the first does not end.
	dir := t.TempDir()
	writeSegment(t, filepath.Join(dir, DataName(1)), 5, event(5, 0, true, 10), event(6, 0, true, 10))
	writeSegment(t, filepath.Join(dir, DataName(2)), 8, event(8, 0, true, 10))
	_, err := Open(testConfig(t, dir))
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "starts at seqno 8, but the one before it ends at seqno 6") {
		t.Fatalf("open: %v", err)
	}
}
