package raftstore

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// TestReopen stores what raft stores around a snapshot, closes the store
// and requires the same contents after reopening it.
func TestReopen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "raft") // Open creates it
	s := openStore(t, dir)
	want := raft.NewInmemStore()
	for _, st := range []store{s, want} {
		storeLogs(t, st, mkLogs(1, 30, 1))
		storeLogs(t, st, mkLogs(31, 50, 2))
		deleteRange(t, st, 1, 20) // compaction after a snapshot at 30 keeping 10
		for _, kv := range []struct {
			key string
			val uint64
		}{{"CurrentTerm", 2}, {"LastVoteTerm", 2}} {
			if err := st.SetUint64([]byte(kv.key), kv.val); err != nil {
				t.Fatal(err)
			}
		}
		if err := st.Set([]byte("LastVoteCand"), []byte("manager-2")); err != nil {
			t.Fatal(err)
		}
	}
	s = reopen(t, s)

	if fi, err := os.Stat(dir); err != nil {
		t.Error(err)
	} else if fi.Mode().Perm() != 0o700 {
		t.Errorf("directory mode %v, want 0700", fi.Mode().Perm())
	}
	diff(t, "log after reopen", renderLogStore(s, 60), renderLogStore(want, 60))
	for _, key := range []string{"CurrentTerm", "LastVoteTerm"} {
		got, err := s.GetUint64([]byte(key))
		if w, _ := want.GetUint64([]byte(key)); got != w || err != nil {
			t.Errorf("GetUint64(%s) = %d, %v; want %d", key, got, err, w)
		}
	}
	if got, err := s.Get([]byte("LastVoteCand")); string(got) != "manager-2" || err != nil {
		t.Errorf("Get(LastVoteCand) = %q, %v", got, err)
	}
}

func TestClose(t *testing.T) {
	s := openStore(t, t.TempDir())
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	calls := map[string]error{
		"StoreLog":    s.StoreLog(mkLog(1, 1)),
		"DeleteRange": s.DeleteRange(1, 1),
		"GetLog":      s.GetLog(1, new(raft.Log)),
		"Set":         s.Set([]byte("k"), []byte("v")),
		"SetUint64":   s.SetUint64([]byte("k"), 1),
	}
	_, calls["FirstIndex"] = s.FirstIndex()
	_, calls["LastIndex"] = s.LastIndex()
	_, calls["Get"] = s.Get([]byte("k"))
	_, calls["GetUint64"] = s.GetUint64([]byte("k"))
	for name, err := range calls {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", name, err)
		}
	}
}

// TestGetLogCopies checks that callers cannot change stored entries
// through the slices they pass in or get back.
func TestGetLogCopies(t *testing.T) {
	s := openStore(t, t.TempDir())
	l := &raft.Log{Index: 1, Term: 1, Data: []byte("abc")}
	if err := s.StoreLog(l); err != nil {
		t.Fatal(err)
	}
	l.Data[0] = 'x'
	var got raft.Log
	if err := s.GetLog(1, &got); err != nil {
		t.Fatal(err)
	}
	got.Data[1] = 'y'
	if err := s.GetLog(1, &got); err != nil || string(got.Data) != "abc" {
		t.Fatalf("GetLog = %q, %v; want abc", got.Data, err)
	}
}

func TestLock(t *testing.T) {
	t.Run("held", func(t *testing.T) {
		dir := t.TempDir()
		openStore(t, dir)
		opts := testOptions()
		startedAt := time.Now()
		s, err := open(dir, opts)
		if err == nil {
			s.Close()
			t.Fatal("second open of a locked store succeeded")
		}
		if want := "raft store " + dir + " is in use by another process"; !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
		if !errors.Is(err, ErrLocked) {
			t.Errorf("error %v does not wrap ErrLocked", err)
		}
		if waited := time.Since(startedAt); waited < opts.lockWait {
			t.Errorf("gave up after %v, want at least the lock wait %v", waited, opts.lockWait)
		}
	})
	t.Run("released while waiting", func(t *testing.T) {
		dir := t.TempDir()
		first := openStore(t, dir)
		opts := testOptions()
		opts.lockWait = 5 * time.Second
		released := make(chan error, 1)
		go func() {
			time.Sleep(3 * lockRetry) // let the second open find the lock held
			released <- first.Close()
		}()
		s, err := open(dir, opts)
		if err != nil {
			t.Fatalf("open after the holder closed: %v", err)
		}
		s.Close()
		if err := <-released; err != nil {
			t.Fatal(err)
		}
	})
	t.Run("reopen after close", func(t *testing.T) {
		dir := t.TempDir()
		reopen(t, openStore(t, dir))
	})
}

// TestLeftoverTempFiles checks that Open removes the temporary files of a
// compaction or stable write that a crash interrupted.
func TestLeftoverTempFiles(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	storeLogs(t, s, mkLogs(1, 3, 1))
	s.Close()
	for _, name := range []string{logName, stableName} {
		if err := os.WriteFile(filepath.Join(dir, name+tmpSuffix), []byte("half written"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s = openStore(t, dir)
	for _, name := range []string{logName, stableName} {
		if _, err := os.Stat(filepath.Join(dir, name+tmpSuffix)); !os.IsNotExist(err) {
			t.Errorf("%s%s still there: %v", name, tmpSuffix, err)
		}
	}
	if last, _ := s.LastIndex(); last != 3 {
		t.Errorf("LastIndex = %d, want 3", last)
	}
}

// TestAppendedAt checks that GetLog returns the same AppendedAt before and
// after a reopen, whatever the zone and monotonic reading of the original.
func TestAppendedAt(t *testing.T) {
	s := openStore(t, t.TempDir())
	zone := time.FixedZone("UTC+5:30", 5*3600+1800)
	times := []time.Time{{}, time.Now(), time.Now().In(zone), time.Unix(0, 1).UTC(), time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC)}
	for i, at := range times {
		if err := s.StoreLog(&raft.Log{Index: uint64(i + 1), AppendedAt: at}); err != nil {
			t.Fatal(err)
		}
	}
	before := make([]raft.Log, len(times))
	for i := range times {
		if err := s.GetLog(uint64(i+1), &before[i]); err != nil {
			t.Fatal(err)
		}
	}
	s = reopen(t, s)
	for i, at := range times {
		var got raft.Log
		if err := s.GetLog(uint64(i+1), &got); err != nil {
			t.Fatal(err)
		}
		if got.AppendedAt != before[i].AppendedAt || !got.AppendedAt.Equal(at) || got.AppendedAt.IsZero() != at.IsZero() {
			t.Errorf("entry %d: AppendedAt %v before reopen, %v after; stored %v", i+1, before[i].AppendedAt, got.AppendedAt, at)
		}
	}
}
