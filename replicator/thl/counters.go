package thl

// AppendedBytes is how many bytes Append wrote since the store opened:
// one atomic add per batch.
func (s *Store) AppendedBytes() uint64 { return s.appended.Load() }

// LastSize is the size in the log of the record Next returned last (0
// before the first). Like Next, for the reader's own goroutine.
func (r *Reader) LastSize() int64 { return r.lastSize }
