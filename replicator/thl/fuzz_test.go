package thl

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/proto"
)

func FuzzDecodeRecord(f *testing.F) {
	for _, ev := range workload(0, 4, 30) {
		rec, err := appendRecord(nil, ev, MaxRecordSize)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(rec)
		f.Add(rec[:len(rec)-1])
	}
	f.Add([]byte{})
	f.Add(make([]byte, 16))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		payload, size, p := decodeRecord(data)
		if size > len(data) {
			t.Fatalf("size %d past %d bytes of input", size, len(data))
		}
		if p != recOK {
			if payload != nil {
				t.Fatal("payload with a problem")
			}
			return
		}
		ev, err := unmarshalEvent(payload)
		if err != nil {
			return
		}
		// What decodes encodes again to a record that decodes the same.
		rec, err := appendRecord(nil, ev, MaxRecordSize)
		if err != nil {
			return // e.g. a decoded empty event, which Append refuses
		}
		payload2, _, p2 := decodeRecord(rec)
		ev2, err := unmarshalEvent(payload2)
		if p2 != recOK || err != nil || !proto.Equal(ev, ev2) {
			t.Fatalf("re-encoded record: %v, %v", p2, err)
		}
	})
}

// fuzzFixture is a small valid store (two segments) and a directory to
// lay it out in, again and again: creating files is what costs most, so
// each input rewrites the same files in place.
type fuzzFixture struct {
	cfg      Config
	files    map[string][]byte
	lastName string
}

func newFuzzFixture(tb testing.TB) *fuzzFixture {
	tb.Helper()
	dir := tb.TempDir()
	cfg := Config{Dir: dir, SegmentSize: minSegmentSize, IndexInterval: minIndexInterval, Logger: slog.New(slog.DiscardHandler), noSync: true}
	s, err := Open(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	for q := uint64(0); len(s.Info().Files) < 2 || q < 9; q++ {
		if err := s.Append(workload(q, 1, 40)...); err != nil {
			tb.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		tb.Fatal(err)
	}
	fx := &fuzzFixture{cfg: cfg, files: map[string][]byte{}}
	m, _ := filepath.Glob(filepath.Join(dir, "thl.*.*"))
	for _, p := range m {
		fx.files[filepath.Base(p)], _ = os.ReadFile(p)
		if _, ok := parseName(filepath.Base(p), dataPrefix); ok {
			fx.lastName = max(fx.lastName, filepath.Base(p))
		}
	}
	if len(fx.files) != 3 {
		tb.Fatalf("fixture has %d files, want 2 segments and an index", len(fx.files))
	}
	fx.cfg.Dir = fastTempDir(tb)
	return fx
}

// fastTempDir returns a temporary directory in memory (/dev/shm) where
// there is one: on a disk, truncating and rewriting files costs a fuzz
// input a millisecond.
func fastTempDir(tb testing.TB) string {
	dir, err := os.MkdirTemp("/dev/shm", "thl-fuzz-")
	if err != nil {
		return tb.TempDir()
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// FuzzOpen opens a store whose last segment is made from the input: by
// data[0] % 5, the rest raw (0), after a valid header (1), after the whole
// valid last segment (2), or the valid last segment cut (3) or overwritten
// with XOR (4) at the offset in data[1:3], with data[3:] after the cut or
// as the XOR mask. Inputs stay small, so the fuzzer can minimise them.
func FuzzOpen(f *testing.F) {
	fx := newFuzzFixture(f)
	f.Add([]byte{0})
	f.Add([]byte{0, 'C', 'T', 'H', 'L', 1, 0, 0, 0})
	f.Add([]byte{1, 10, 0, 0, 0, 1, 2, 3, 4})
	f.Add(append([]byte{2}, make([]byte, 40)...))
	f.Add([]byte{2, 8, 0, 0, 0, 0x1f, 0x2e, 0x3d, 0x4c, 1, 2, 3, 4, 5, 6, 7, 8})
	f.Add([]byte{3, 100, 0})
	f.Add([]byte{3, 30, 0, 0, 0, 0})
	f.Add([]byte{4, 60, 0, 0x40})
	f.Add([]byte{4, 26, 0, 0xff})
	f.Add([]byte{4, 24, 0, 0x01})
	f.Fuzz(func(t *testing.T, data []byte) { fx.run(t, data) })
}

func (fx *fuzzFixture) run(t testing.TB, data []byte) {
	if len(data) == 0 {
		return
	}
	lastSeg := fx.files[fx.lastName]
	var content []byte
	mode, rest := data[0]%5, data[1:]
	var off int
	if mode >= 3 {
		if len(rest) < 2 {
			return
		}
		off, rest = (int(rest[0])|int(rest[1])<<8)%len(lastSeg), rest[2:]
	}
	switch mode {
	case 0:
		content = rest
	case 1:
		content = append(encodeHeader(binaryFirst(lastSeg)), rest...)
	case 2:
		content = append(append([]byte(nil), lastSeg...), rest...)
	case 3:
		content = append(append([]byte(nil), lastSeg[:off]...), rest...)
	case 4:
		content = append([]byte(nil), lastSeg...)
		for i, b := range rest {
			if off+i < len(content) {
				content[off+i] ^= b
			}
		}
	}
	dir := fx.cfg.Dir
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if _, ok := fx.files[e.Name()]; !ok && e.Name() != lockName {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
	for name, b := range fx.files {
		if name == fx.lastName {
			b = content
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	c := fx.cfg
	s, err := Open(c)
	if err != nil {
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("open: %v, want nil or ErrCorrupt", err)
		}
		return
	}
	if err := s.Verify(context.Background()); err != nil {
		t.Fatalf("verify after a successful open: %v", err)
	}
	// It takes the next transaction.
	next := uint64(0)
	if max, ok := s.MaxSeqno(); ok {
		next = max + 1
	}
	if err := s.Append(txn(next, 2, 10)...); err != nil {
		t.Fatalf("append %d: %v", next, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Repaired, it reopens clean, and reads to its end.
	c.ReadOnly = true
	s, err = Open(c)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	if len(s.Repairs()) != 0 {
		t.Fatalf("reopen repaired again: %v", s.Repairs())
	}
	min, _ := s.MinSeqno()
	r, err := s.NewReader(min)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for {
		_, err := r.Next(context.Background())
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("read: %v", err)
		}
	}
}

// BenchmarkFuzzOpenInput measures one FuzzOpen input: keep it cheap.
func BenchmarkFuzzOpenInput(b *testing.B) {
	fx := newFuzzFixture(b)
	in := append([]byte{1}, fx.files[fx.lastName][headerSize:len(fx.files[fx.lastName])-3]...)
	for b.Loop() {
		fx.run(b, in)
	}
}

func binaryFirst(seg []byte) uint64 {
	first, _ := decodeHeader(seg)
	return first
}
