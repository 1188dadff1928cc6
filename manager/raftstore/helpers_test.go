package raftstore

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// store is what both Store and raft.InmemStore implement.
type store interface {
	raft.LogStore
	raft.StableStore
}

// testOptions keep a held lock from stalling a test for 5 s.
func testOptions() options {
	o := defaultOptions()
	o.lockWait = 100 * time.Millisecond
	return o
}

// openStore opens dir with testOptions and closes the store at cleanup.
func openStore(t testing.TB, dir string) *Store {
	t.Helper()
	s, err := open(dir, testOptions())
	if err != nil {
		t.Fatalf("open %s: %v", dir, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// reopen closes s and opens its directory again.
func reopen(t testing.TB, s *Store) *Store {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	return openStore(t, s.dir)
}

// mkLog builds an entry whose fields vary with the index: every log type,
// nil and empty Data and Extensions, zero and non-zero AppendedAt.
func mkLog(index, term uint64) *raft.Log {
	l := &raft.Log{Index: index, Term: term, Type: raft.LogType(index % 6)}
	switch index % 4 {
	case 1:
		l.Data = []byte{}
	case 2, 3:
		l.Data = fmt.Appendf(nil, "data-%d-%d", index, term)
	}
	if index%3 != 0 {
		l.Extensions = fmt.Appendf(nil, "ext-%d", index)
	}
	if index%5 != 0 {
		l.AppendedAt = time.Unix(1_700_000_000+int64(index), int64(index)*1001)
	}
	return l
}

// mkLogs builds entries first..last of one term.
func mkLogs(first, last, term uint64) []*raft.Log {
	var logs []*raft.Log
	for i := first; i <= last; i++ {
		logs = append(logs, mkLog(i, term))
	}
	return logs
}

// storeLogs stores logs in s, failing the test on error.
func storeLogs(t testing.TB, s raft.LogStore, logs []*raft.Log) {
	t.Helper()
	if err := s.StoreLogs(logs); err != nil {
		t.Fatalf("StoreLogs(%d..%d): %v", logs[0].Index, logs[len(logs)-1].Index, err)
	}
}

func deleteRange(t testing.TB, s raft.LogStore, first, last uint64) {
	t.Helper()
	if err := s.DeleteRange(first, last); err != nil {
		t.Fatalf("DeleteRange(%d, %d): %v", first, last, err)
	}
}

// renderLog renders every field of l, telling nil from empty slices and
// comparing times by instant.
func renderLog(l *raft.Log) string {
	at := "zero"
	if !l.AppendedAt.IsZero() {
		at = fmt.Sprint(l.AppendedAt.UnixNano())
	}
	return fmt.Sprintf("%d/%d %v data=%s ext=%s at=%s", l.Index, l.Term, l.Type, renderBytes(l.Data), renderBytes(l.Extensions), at)
}

func renderBytes(b []byte) string {
	if b == nil {
		return "nil"
	}
	return fmt.Sprintf("%q", b)
}

// renderLogStore renders FirstIndex, LastIndex and GetLog of every index
// up to upTo.
func renderLogStore(s raft.LogStore, upTo uint64) string {
	var b strings.Builder
	first, err1 := s.FirstIndex()
	last, err2 := s.LastIndex()
	fmt.Fprintf(&b, "first=%d (%v) last=%d (%v)\n", first, err1, last, err2)
	for i := uint64(0); i <= upTo; i++ {
		var l raft.Log
		if err := s.GetLog(i, &l); err != nil {
			if err != raft.ErrLogNotFound {
				fmt.Fprintf(&b, "%d: unexpected error %v\n", i, err)
			}
			continue
		}
		fmt.Fprintf(&b, "%d: %s\n", i, renderLog(&l))
	}
	return b.String()
}

// renderEntries renders the Store's in-memory log, whatever its indexes.
func renderEntries(s *Store) string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var b strings.Builder
	for _, e := range s.entries {
		fmt.Fprintf(&b, "%s size=%d\n", renderLog(e.log), e.size)
	}
	fmt.Fprintf(&b, "live=%d size=%d\n", s.live, s.size)
	return b.String()
}

// diff fails the test when got and want differ, showing the first
// differing line.
func diff(t testing.TB, what, got, want string) {
	t.Helper()
	if got == want {
		return
	}
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := 0; i < max(len(g), len(w)); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			t.Fatalf("%s differs at line %d:\n got: %s\nwant: %s", what, i+1, gl, wl)
		}
	}
}
