package raftstore

import (
	"fmt"
	"testing"

	"github.com/hashicorp/raft"
)

// op is one call on a store; it returns its result as text so that the
// Store and raft.InmemStore can be compared.
type op interface {
	run(t *testing.T, s store) string
}

type (
	storeOp  struct{ first, last, term uint64 } // StoreLogs(first..last)
	logOp    struct{ index, term uint64 }       // StoreLog
	deleteOp struct{ first, last uint64 }       // DeleteRange
	setOp    struct {
		key string
		val []byte
	}
	getOp  struct{ key string }
	setUOp struct {
		key string
		val uint64
	}
	getUOp   struct{ key string }
	reopenOp struct{} // close and reopen the Store; nothing for InmemStore
)

func (o storeOp) run(_ *testing.T, s store) string {
	return fmt.Sprint(s.StoreLogs(mkLogs(o.first, o.last, o.term)))
}

func (o logOp) run(_ *testing.T, s store) string {
	return fmt.Sprint(s.StoreLog(mkLog(o.index, o.term)))
}

func (o deleteOp) run(_ *testing.T, s store) string {
	return fmt.Sprint(s.DeleteRange(o.first, o.last))
}

func (o setOp) run(_ *testing.T, s store) string {
	return fmt.Sprint(s.Set([]byte(o.key), o.val))
}

func (o getOp) run(_ *testing.T, s store) string {
	v, err := s.Get([]byte(o.key))
	return fmt.Sprintf("%s %v", renderBytes(v), err)
}

func (o setUOp) run(_ *testing.T, s store) string {
	return fmt.Sprint(s.SetUint64([]byte(o.key), o.val))
}

func (o getUOp) run(_ *testing.T, s store) string {
	v, err := s.GetUint64([]byte(o.key))
	return fmt.Sprintf("%d %v", v, err)
}

func (reopenOp) run(t *testing.T, s store) string {
	if h, ok := s.(*storeHolder); ok {
		h.Store = reopen(t, h.Store)
	}
	return ""
}

// storeHolder lets reopenOp swap the Store under the test.
type storeHolder struct{ *Store }

// TestConformance runs the ways raft uses its store on both the Store and
// raft.InmemStore and requires the same results, and the same log contents
// after every step. Sequences where InmemStore's FirstIndex/LastIndex
// bookkeeping drifts from the stored indexes (deleting around a gap, or past
// either end) are left out: the Store reports the indexes actually stored.
func TestConformance(t *testing.T) {
	tests := []struct {
		name string
		ops  []op
	}{
		{"new store as raft reads it", []op{
			getUOp{"CurrentTerm"}, getUOp{"LastVoteTerm"}, getOp{"LastVoteCand"},
			deleteOp{1, 10}, reopenOp{}, getUOp{"CurrentTerm"},
		}},
		{"append", []op{
			logOp{1, 1}, storeOp{2, 10, 1}, reopenOp{}, logOp{11, 2}, storeOp{12, 12, 2}, reopenOp{},
		}},
		{"snapshot compaction", []op{
			storeOp{1, 20, 1}, deleteOp{1, 15}, reopenOp{}, storeOp{21, 25, 2}, deleteOp{16, 20}, reopenOp{},
		}},
		{"conflicting suffix replaced", []op{
			storeOp{1, 10, 1}, deleteOp{7, 10}, storeOp{7, 9, 2}, reopenOp{}, storeOp{10, 11, 2},
		}},
		{"everything removed then logs after a snapshot", []op{
			storeOp{1, 5, 1}, deleteOp{1, 5}, reopenOp{}, storeOp{100, 102, 3}, reopenOp{},
		}},
		{"gap after an installed snapshot", []op{
			storeOp{1, 5, 1}, storeOp{10, 12, 2}, reopenOp{}, deleteOp{1, 9}, reopenOp{},
		}},
		{"overwrite", []op{
			storeOp{1, 3, 1}, logOp{2, 3}, reopenOp{}, storeOp{3, 4, 4},
		}},
		{"hole in the middle", []op{
			storeOp{1, 10, 1}, deleteOp{4, 6}, reopenOp{}, deleteOp{5, 5}, deleteOp{3, 7},
		}},
		{"empty batch", []op{
			storeOp{5, 4, 1}, storeOp{1, 2, 1}, storeOp{5, 4, 1},
		}},
		{"stable keys", []op{
			setOp{"a", []byte("x")}, getOp{"a"}, setOp{"a", []byte{}}, getOp{"a"}, reopenOp{}, getOp{"a"},
			setOp{"a", nil}, getOp{"a"}, reopenOp{}, getOp{"a"},
			setUOp{"t", 5}, getUOp{"t"}, getOp{"t"}, getUOp{"a"}, setOp{"t", []byte("bytes")},
			reopenOp{}, getUOp{"t"}, getOp{"t"}, setUOp{"t", 0}, setUOp{"", 1}, setOp{"", []byte("empty key")},
			reopenOp{}, getUOp{"t"}, getUOp{""}, getOp{""},
		}},
		{"raft's keys", []op{
			setUOp{"CurrentTerm", 1}, setUOp{"LastVoteTerm", 1}, setOp{"LastVoteCand", []byte("n1")},
			reopenOp{}, getUOp{"CurrentTerm"}, getUOp{"LastVoteTerm"}, getOp{"LastVoteCand"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := raft.NewInmemStore()
			got := &storeHolder{openStore(t, t.TempDir())}
			for i, o := range tt.ops {
				step := fmt.Sprintf("step %d %T%+v", i, o, o)
				w, g := o.run(t, want), o.run(t, got)
				if g != w {
					t.Fatalf("%s: got %q, want %q", step, g, w)
				}
				diff(t, step, renderLogStore(got, 110), renderLogStore(want, 110))
			}
		})
	}
}
