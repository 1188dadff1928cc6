package thl

import (
	"context"
	"os"
	"testing"
)

// TestCounters: what Append wrote is the sum of the records' sizes a
// reader sees, and the segment files hold exactly that (one segment).
func TestCounters(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.SegmentSize = 1 << 20
	s := mustOpen(t, cfg)
	evs := workload(0, 20, 100)
	if err := s.Append(evs[:10]...); err != nil {
		t.Fatal(err)
	}
	if err := s.Append(evs[10:]...); err != nil {
		t.Fatal(err)
	}
	r, err := s.NewReader(0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.LastSize() != 0 {
		t.Fatalf("LastSize before Next = %d", r.LastSize())
	}
	var sum int64
	for range evs {
		if _, err := r.Next(context.Background()); err != nil {
			t.Fatal(err)
		}
		if r.LastSize() <= 0 {
			t.Fatalf("LastSize = %d", r.LastSize())
		}
		sum += r.LastSize()
	}
	if uint64(sum) != s.AppendedBytes() {
		t.Fatalf("records read total %d bytes, Append wrote %d", sum, s.AppendedBytes())
	}
	name, _ := r.File()
	st, err := os.Stat(cfg.Dir + "/" + name)
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() < sum {
		t.Fatalf("segment %s has %d bytes, fewer than the %d appended", name, st.Size(), sum)
	}
}
