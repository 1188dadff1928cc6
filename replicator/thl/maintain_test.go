package thl

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

func TestTruncate(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	s := mustOpen(t, cfg)
	evs := workload(0, 600, 60)
	appendAll(t, s, evs, 30)
	nfiles := len(s.Info().Files)

	// A reader that is behind the cut, and one that is past it.
	behind, _ := s.NewReader(0)
	defer behind.Close()
	readerAt := func(r *Reader, n int) {
		for range n {
			if _, err := r.Next(t.Context()); err != nil {
				t.Fatal(err)
			}
		}
	}
	readerAt(behind, 10)
	past, _ := s.NewReader(500)
	defer past.Close()
	readerAt(past, 1)

	// Nothing to do at or after the end.
	if err := s.Truncate(599); err != nil || len(s.Info().Files) != nfiles {
		t.Fatalf("truncate at the end: %v", err)
	}
	// Cut in the middle of the log: at seqno 200 (and 203, fragmented).
	for _, after := range []uint64{400, 203, 202} {
		if err := s.Truncate(after); err != nil {
			t.Fatal(err)
		}
		if max, _ := s.MaxSeqno(); max != after {
			t.Fatalf("max = %d after Truncate(%d)", max, after)
		}
		last, _ := s.Last()
		want := evs[find(evs, after+1)-1]
		if last.GetSeqno() != after || last.GetEventId() != want.GetEventId() || !last.GetLastFrag() {
			t.Fatalf("Last = %v", last)
		}
		if _, err := s.Get(after + 1); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Get(%d) after the cut: %v", after+1, err)
		}
	}
	if _, err := past.Next(t.Context()); !errors.Is(err, ErrTruncated) {
		t.Fatalf("reader past the cut: %v, want ErrTruncated", err)
	}
	if n := len(s.Info().Files); n >= nfiles {
		t.Fatalf("%d files after truncation, had %d", n, nfiles)
	}
	// It continues with a different history after 202.
	other := workload(203, 100, 90)
	appendAll(t, s, other, 7)
	kept := evs[:find(evs, 203)]
	all := append(append([]*thlpb.Event(nil), kept...), other...)
	// The reader that was behind the cut reads on into the new history.
	var got []*thlpb.Event
	for len(got) < len(all)-10 {
		ev, err := behind.Next(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ev)
	}
	sameEvents(t, got, all[10:])
	s.Close()
	s = mustOpen(t, cfg)
	sameEvents(t, readN(t, s, 0, len(all)), all)
	if err := s.Verify(t.Context()); err != nil {
		t.Fatal(err)
	}

	// Cut exactly at the start of a segment, then below the first seqno.
	info := s.Info()
	segStart := info.Files[3].First
	if err := s.Truncate(segStart - 1); err != nil {
		t.Fatal(err)
	}
	if n := len(s.Info().Files); n != 3 {
		t.Fatalf("%d files after cutting at the start of the 4th", n)
	}
	appendAll(t, s, workload(segStart, 5, 10), 5)
	if err := s.Truncate(0); err != nil {
		t.Fatal(err)
	}
	if max, _ := s.MaxSeqno(); max != 0 {
		t.Fatalf("max %d after Truncate(0)", max)
	}
	m, _ := filepath.Glob(filepath.Join(dir, "thl.data.*"))
	if len(m) != 1 {
		t.Fatalf("files: %v", m)
	}
}

func TestTruncateBelowTheFirstSeqnoEmptiesTheLog(t *testing.T) {
	s := mustOpen(t, testConfig(t, t.TempDir()))
	appendAll(t, s, workload(50, 100, 60), 10)
	if err := s.Truncate(10); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.MinSeqno(); ok {
		t.Fatal("log not empty")
	}
	appendAll(t, s, workload(11, 3, 5), 3)
	if min, _ := s.MinSeqno(); min != 11 {
		t.Fatalf("min = %d", min)
	}
}

func TestPurge(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	now := t0.Add(24 * time.Hour)
	cfg.Clock = func() time.Time { return now }
	s := mustOpen(t, cfg)
	evs := workload(0, 600, 60) // seqno n commits at t0 + n seconds
	appendAll(t, s, evs, 30)
	files := s.Info().Files

	// Nothing is old enough.
	if n, err := s.Purge(t0, 1000); err != nil || n != 0 {
		t.Fatalf("purge before t0: %d, %v", n, err)
	}
	// By time: segments whose last event is before t0+100s.
	n, err := s.Purge(t0.Add(100*time.Second), 1000)
	if err != nil {
		t.Fatal(err)
	}
	wantN := 0
	for _, f := range files {
		if f.Sealed && f.Last < 100 {
			wantN++
		}
	}
	if n != wantN || n == 0 {
		t.Fatalf("purged %d segments, want %d", n, wantN)
	}
	min, _ := s.MinSeqno()
	if min != files[n].First {
		t.Fatalf("min %d, want %d", min, files[n].First)
	}
	// By keepFrom: a replica still needs seqno 250.
	n, err = s.PurgeOlderThan(time.Hour, 250)
	if err != nil {
		t.Fatal(err)
	}
	min, _ = s.MinSeqno()
	if min > 250 || n == 0 {
		t.Fatalf("min %d after keeping 250 (%d purged)", min, n)
	}
	for _, f := range s.Info().Files[:1] {
		if f.First > 250 {
			t.Fatalf("purged seqno 250: %+v", f)
		}
	}
	// The purged seqnos are gone, for readers and Get.
	if _, err := s.NewReader(min - 1); !errors.Is(err, ErrPurged) || !errors.Is(err, ErrNotFound) {
		t.Fatalf("reader below min: %v", err)
	}
	if _, err := s.Get(0); !errors.Is(err, ErrPurged) {
		t.Fatalf("Get(0): %v", err)
	}
	// Never the active segment.
	_, err = s.Purge(now, 1<<62)
	if err != nil {
		t.Fatal(err)
	}
	if info := s.Info(); len(info.Files) != 1 {
		t.Fatalf("%d files left, want the active one", len(info.Files))
	}
	min, _ = s.MinSeqno()
	sameEvents(t, readN(t, s, min, len(evs)-find(evs, min)), evs[find(evs, min):])
	s.Close()
	s = mustOpen(t, cfg)
	if m2, _ := s.MinSeqno(); m2 != min {
		t.Fatalf("min after reopen %d, want %d", m2, min)
	}
}

func TestPurgeUnderAReader(t *testing.T) {
	s := mustOpen(t, testConfig(t, t.TempDir()))
	evs := workload(0, 600, 60)
	appendAll(t, s, evs, 30)
	files := s.Info().Files
	// One reader in the third segment, one in the first.
	from := files[2].First + 1
	r, _ := s.NewReader(from)
	defer r.Close()
	early, _ := s.NewReader(0)
	defer early.Close()
	for _, rd := range []*Reader{r, early} {
		if _, err := rd.Next(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := s.Purge(t0.Add(time.Hour), files[2].First); err != nil || n != 2 {
		t.Fatalf("purge: %d, %v", n, err)
	}
	// The reader in the third segment reads on.
	want := evs[find(evs, from):]
	got := append([]*thlpb.Event(nil), want[0])
	for len(got) < len(want) {
		ev, err := r.Next(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ev)
	}
	sameEvents(t, got, want)
	// The one in the first segment reads what it holds open, then finds
	// the next segment purged.
	n := 1
	for {
		_, err := early.Next(t.Context())
		if err != nil {
			if !errors.Is(err, ErrPurged) || n != find(evs, files[1].First) {
				t.Fatalf("after %d events: %v", n, err)
			}
			break
		}
		n++
	}
}

func TestReset(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, testConfig(t, dir))
	appendAll(t, s, workload(0, 300, 60), 30)
	r, _ := s.NewReader(5)
	defer r.Close()
	if err := s.Reset(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Next(t.Context()); !errors.Is(err, ErrTruncated) {
		t.Fatalf("reader after reset: %v", err)
	}
	if _, ok := s.MaxSeqno(); ok {
		t.Fatal("max after reset")
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if e.Name() != lockName {
			t.Fatalf("%s left after reset", e.Name())
		}
	}
	appendAll(t, s, workload(1000, 10, 10), 5)
	if min, _ := s.MinSeqno(); min != 1000 {
		t.Fatalf("min %d", min)
	}
}
