package thl

import (
	"context"

	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

// AppendedBytes is how many bytes Append wrote since the store opened:
// one atomic add per batch.
func (s *Store) AppendedBytes() uint64 { return s.appended.Load() }

// LastSize is the size in the log of the record Next returned last (0
// before the first). Like Next, for the reader's own goroutine.
func (r *Reader) LastSize() int64 { return r.lastSize }

// NextSized is Next with the record's size (what an applier's read-ahead
// counts).
func (r *Reader) NextSized(ctx context.Context) (*thlpb.Event, int, error) {
	ev, err := r.Next(ctx)
	if ev == nil {
		return nil, 0, err
	}
	return ev, int(r.lastSize), err
}
