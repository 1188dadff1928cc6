package raftstore

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/hashicorp/raft"
)

// bigLogs builds entries first..last with 4000-byte payloads.
func bigLogs(first, last uint64) []*raft.Log {
	logs := mkLogs(first, last, 1)
	for _, l := range logs {
		l.Data = bytes.Repeat(fmt.Appendf(nil, "%08d", l.Index), 500)
	}
	return logs
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// TestCompaction grows raft.log past the default 4 MiB threshold, deletes
// most of it as raft does after a snapshot, and requires the file to shrink
// to the live entries and to reopen with the same contents.
func TestCompaction(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, logName)
	s := openStore(t, dir)
	want := raft.NewInmemStore()
	for first := uint64(1); first <= 1200; first += 100 {
		for _, st := range []store{s, want} {
			storeLogs(t, st, bigLogs(first, first+99))
		}
	}
	before := fileSize(t, path)
	if before <= defaultOptions().compactSize {
		t.Fatalf("raft.log is %d bytes, not past the threshold", before)
	}
	for _, st := range []store{s, want} {
		deleteRange(t, st, 1, 500) // dead, but not yet more than half
	}
	if got := fileSize(t, path); got <= before {
		t.Fatalf("raft.log shrank from %d to %d bytes with less than half of it dead", before, got)
	}
	for _, st := range []store{s, want} {
		deleteRange(t, st, 501, 1100)
	}
	after := fileSize(t, path)
	if after >= before/10 {
		t.Errorf("raft.log is %d bytes after compaction, was %d; want it under a tenth", after, before)
	}
	if after != s.size {
		t.Errorf("raft.log is %d bytes, the store thinks %d", after, s.size)
	}
	if _, err := os.Stat(path + tmpSuffix); !os.IsNotExist(err) {
		t.Errorf("temporary file left behind: %v", err)
	}
	diff(t, "log after compaction", renderLogStore(s, 1210), renderLogStore(want, 1210))

	// Appends go to the new file.
	for _, st := range []store{s, want} {
		storeLogs(t, st, bigLogs(1201, 1210))
	}
	s = reopen(t, s)
	diff(t, "log after reopen", renderLogStore(s, 1210), renderLogStore(want, 1210))
}

// TestCompactionCycles runs many rounds of append-then-trim with a small
// threshold: the file stays bounded and the contents survive every reopen.
func TestCompactionCycles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, logName)
	opts := testOptions()
	opts.compactSize = 64 << 10
	s, err := open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { s.Close() }()
	want := raft.NewInmemStore()
	var next uint64 = 1
	var biggest int64
	for round := range 40 {
		logs := mkLogs(next, next+19, uint64(round+1))
		for _, l := range logs {
			l.Data = bytes.Repeat([]byte{byte(l.Index)}, 1000)
		}
		next += 20
		for _, st := range []store{s, want} {
			storeLogs(t, st, logs)
			first, _ := st.FirstIndex()
			deleteRange(t, st, first, next-11) // keep 10 trailing entries
		}
		biggest = max(biggest, fileSize(t, path))
		if round%10 == 9 {
			s.Close()
			if s, err = open(dir, opts); err != nil {
				t.Fatalf("round %d: reopen: %v", round, err)
			}
		}
		diff(t, fmt.Sprintf("round %d", round), renderLogStore(s, next), renderLogStore(want, next))
	}
	if limit := 2*opts.compactSize + 30_000; biggest > limit {
		t.Errorf("raft.log reached %d bytes, want at most %d", biggest, limit)
	}
}
