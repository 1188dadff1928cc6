package consensus

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"sync"

	"github.com/hashicorp/raft"

	"github.com/carbidedb/carbide/manager/policy"
)

// fsm is the raft state machine: the site's policy.State.
type fsm struct {
	mu sync.Mutex
	st policy.State
	// index is the raft index of the last entry applied to st: the
	// version connectors and managers confirm a command by (confirm.go).
	index  uint64
	notify func()
	log    *slog.Logger
}

func (f *fsm) state() policy.State {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.st.Clone()
}

// view returns the state with the raft index of its last entry, read
// together so that the index never claims a change the state lacks.
func (f *fsm) view() (policy.State, uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.st.Clone(), f.index
}

// applied is the raft index of the last entry applied.
func (f *fsm) applied() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.index
}

// Apply applies one committed change; the result is nil or the error
// that kept the change from applying (the state is then unchanged).
func (f *fsm) Apply(l *raft.Log) any {
	var c policy.Change
	if err := json.Unmarshal(l.Data, &c); err != nil {
		return fmt.Errorf("raft entry %d: %w", l.Index, err)
	}
	f.mu.Lock()
	n, err := f.st.Apply(c)
	if err == nil {
		f.st = n
	}
	f.index = l.Index
	f.mu.Unlock()
	if err != nil && f.log != nil {
		f.log.Warn("raft entry not applied", "index", l.Index, "op", c.Op, "error", err)
	}
	if err == nil && f.notify != nil {
		f.notify()
	}
	return err
}

// snapshotState is what a snapshot holds: the state's fields, and the
// index of its last entry (a snapshot without one restores index 0 until
// the next entry).
type snapshotState struct {
	policy.State
	Index uint64 `json:"raft_index,omitempty"`
}

func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	st, index := f.view()
	b, err := json.Marshal(snapshotState{State: st, Index: index})
	if err != nil {
		return nil, err
	}
	return snapshot(b), nil
}

func (f *fsm) Restore(r io.ReadCloser) error {
	defer r.Close()
	var st snapshotState
	if err := json.NewDecoder(r).Decode(&st); err != nil {
		return fmt.Errorf("restore manager state: %w", err)
	}
	f.mu.Lock()
	f.st, f.index = st.State, st.Index
	f.mu.Unlock()
	if f.notify != nil {
		f.notify()
	}
	return nil
}

type snapshot []byte

func (s snapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := sink.Write(s); err != nil {
		_ = sink.Cancel()
		return err
	}
	return sink.Close()
}

func (s snapshot) Release() {}
