package raftstore

import (
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/carbidedb/carbide/internal/testutil"
)

// countFSM counts the commands applied to it and remembers the last one.
type countFSM struct {
	mu       sync.Mutex
	state    fsmState
	restores int
}

type fsmState struct {
	Count int
	Last  string
}

func (f *countFSM) Apply(l *raft.Log) any {
	f.mu.Lock()
	defer f.mu.Unlock()
	if l.Type == raft.LogCommand {
		f.state.Count++
		f.state.Last = string(l.Data)
	}
	return nil
}

func (f *countFSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return countSnapshot(f.state), nil
}

func (f *countFSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	var st fsmState
	if err := json.NewDecoder(rc).Decode(&st); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.state = st
	f.restores++
	return nil
}

func (f *countFSM) get() (fsmState, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.state, f.restores
}

type countSnapshot fsmState

func (s countSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := json.NewEncoder(sink).Encode(fsmState(s)); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (countSnapshot) Release() {}

// raftNode is a single-node raft over a Store.
type raftNode struct {
	r     *raft.Raft
	store *Store
	trans *raft.InmemTransport
	fsm   *countFSM
}

// startRaft opens the store in dir and starts a single-node raft on it,
// bootstrapping the cluster on first use, and waits until it leads.
func startRaft(t *testing.T, dir, snapDir string) *raftNode {
	t.Helper()
	conf := raft.DefaultConfig()
	conf.LocalID = "m1"
	conf.HeartbeatTimeout = 50 * time.Millisecond
	conf.ElectionTimeout = 50 * time.Millisecond
	conf.LeaderLeaseTimeout = 50 * time.Millisecond
	conf.CommitTimeout = 5 * time.Millisecond
	conf.TrailingLogs = 10
	conf.LogOutput = io.Discard

	n := &raftNode{store: openStore(t, dir), fsm: &countFSM{}}
	snaps, err := raft.NewFileSnapshotStore(snapDir, 2, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var addr raft.ServerAddress
	addr, n.trans = raft.NewInmemTransport("m1")
	has, err := raft.HasExistingState(n.store, n.store, snaps)
	if err != nil {
		t.Fatal(err)
	}
	if !has {
		cfg := raft.Configuration{Servers: []raft.Server{{ID: conf.LocalID, Address: addr}}}
		if err := raft.BootstrapCluster(conf, n.store, n.store, snaps, n.trans, cfg); err != nil {
			t.Fatalf("bootstrap: %v", err)
		}
	}
	if n.r, err = raft.NewRaft(conf, n.fsm, n.store, n.store, snaps, n.trans); err != nil {
		t.Fatalf("NewRaft: %v", err)
	}
	testutil.Eventually(t, 3*time.Second, func() error {
		if st := n.r.State(); st != raft.Leader {
			return fmt.Errorf("raft is %v, not leader", st)
		}
		return nil
	})
	return n
}

func (n *raftNode) stop(t *testing.T) {
	t.Helper()
	if err := n.r.Shutdown().Error(); err != nil {
		t.Fatalf("raft shutdown: %v", err)
	}
	n.trans.Close()
	if err := n.store.Close(); err != nil {
		t.Fatal(err)
	}
}

// apply applies commands entry-from..entry-(to-1), all in flight at once.
func (n *raftNode) apply(t *testing.T, from, to int) {
	t.Helper()
	var fs []raft.ApplyFuture
	for i := from; i < to; i++ {
		fs = append(fs, n.r.Apply(fmt.Appendf(nil, "entry-%d", i), time.Second))
	}
	for i, f := range fs {
		if err := f.Error(); err != nil {
			t.Fatalf("apply entry-%d: %v", from+i, err)
		}
	}
}

// TestRaft runs a real single-node raft on the Store: 100 commands with a
// snapshot (and so a DeleteRange) in the middle, a restart on the same
// directory, and the FSM rebuilt from the snapshot and the log.
func TestRaft(t *testing.T) {
	dir, snapDir := t.TempDir(), t.TempDir()
	n := startRaft(t, dir, snapDir)
	n.apply(t, 0, 60)
	if err := n.r.Snapshot().Error(); err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	n.apply(t, 60, 100)
	if err := n.r.Barrier(time.Second).Error(); err != nil {
		t.Fatal(err)
	}
	if st, _ := n.fsm.get(); st.Count != 100 || st.Last != "entry-99" {
		t.Fatalf("FSM before restart: %+v, want 100 commands ending with entry-99", st)
	}
	first, _ := n.store.FirstIndex()
	last, _ := n.store.LastIndex()
	if first <= 1 {
		t.Fatalf("FirstIndex = %d: the snapshot did not compact the log", first)
	}
	var lastLog raft.Log
	if err := n.store.GetLog(last, &lastLog); err != nil {
		t.Fatal(err)
	}
	term, _ := n.store.GetUint64([]byte("CurrentTerm"))
	n.stop(t)

	// The reopened store holds what raft left in it.
	s := openStore(t, dir)
	gotFirst, _ := s.FirstIndex()
	gotLast, _ := s.LastIndex()
	gotTerm, _ := s.GetUint64([]byte("CurrentTerm"))
	var gotLog raft.Log
	if err := s.GetLog(gotLast, &gotLog); err != nil {
		t.Fatal(err)
	}
	if gotFirst != first || gotLast != last || gotLog.Term != lastLog.Term || gotTerm != term {
		t.Fatalf("reopened store: first %d last %d (term %d) current term %d; want %d %d (%d) %d",
			gotFirst, gotLast, gotLog.Term, gotTerm, first, last, lastLog.Term, term)
	}
	s.Close()

	// Raft restarts on it and rebuilds the FSM: the snapshot, then the log.
	n = startRaft(t, dir, snapDir)
	defer n.stop(t)
	if err := n.r.Barrier(time.Second).Error(); err != nil {
		t.Fatal(err)
	}
	st, restores := n.fsm.get()
	if st.Count != 100 || st.Last != "entry-99" || restores != 1 {
		t.Fatalf("FSM after restart: %+v after %d restores, want 100 commands ending with entry-99 after 1 restore",
			st, restores)
	}
	// The barrier answers from the FSM; raft records the applied index
	// after, in its own goroutine.
	for deadline := time.Now().Add(5 * time.Second); n.r.AppliedIndex() <= last && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	if applied := n.r.AppliedIndex(); applied <= last {
		t.Errorf("AppliedIndex after restart = %d, want past %d", applied, last)
	}
	if got, _ := n.store.GetUint64([]byte("CurrentTerm")); got <= term {
		t.Errorf("CurrentTerm after restart = %d, want past %d", got, term)
	}
	n.apply(t, 100, 110)
	if st, _ := n.fsm.get(); st.Count != 110 {
		t.Errorf("FSM after more commands: %+v, want 110", st)
	}
}
