package thl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sync"

	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

// Reader iterates over the log from a seqno on, waiting at the end for
// Append (tailing). A Reader is used by one goroutine; Close may be called
// from another.
type Reader struct {
	s    *Store
	from uint64 // the seqno to position at, until positioned

	// Position, changed under s.mu (read lock by the reader, write lock
	// by Truncate, Reset, Purge and Close).
	cur         *segReader // nil until positioned
	segNum      uint64
	off         int64 // next record
	next        pos   // what it must hold
	sealedKnown bool  // the segment is sealed at sealedEnd (kept when it is purged)
	sealedEnd   int64
	lastFile    string
	lastOff     int64
	err         error // sticky
	seekBytes   int64 // bytes read to position, for tests
	lastSize    int64 // the last record's size (counters.go)

	done      chan struct{}
	closeOnce sync.Once
}

// NewReader returns a reader whose first event is the first fragment of
// seqno from. When from is past the end of the log the reader waits for
// it. It fails with an error wrapping ErrPurged and ErrNotFound when from
// is below the first seqno the log holds.
func (s *Store) NewReader(from uint64) (*Reader, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	if s.hasTail && len(s.segs) > 0 && from < s.segs[0].first {
		return nil, purgedError(from, s.segs[0].first)
	}
	r := &Reader{s: s, from: from, done: make(chan struct{})}
	s.readers[r] = struct{}{}
	return r, nil
}

// Next returns the next event (one fragment). At the end of the log it
// waits for Append, ctx, Close or Store.Close; a ReadOnly store's readers
// return io.EOF there instead. Errors are sticky: ErrCorrupt (nothing at
// or past the damage is returned), ErrTruncated, ErrPurged, ErrClosed.
func (r *Reader) Next(ctx context.Context) (*thlpb.Event, error) {
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		ev, wait, err := r.step()
		if ev != nil || err != nil {
			return ev, err
		}
		if r.s.cfg.ReadOnly {
			return nil, io.EOF
		}
		select {
		case <-wait:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-r.done:
			return nil, ErrClosed
		}
	}
}

// File returns the name of the segment file of the last event Next
// returned, and its record's offset.
func (r *Reader) File() (name string, offset int64) {
	return filepath.Base(r.lastFile), r.lastOff
}

// step returns the next event, or a channel to wait on.
func (r *Reader) step() (*thlpb.Event, <-chan struct{}, error) {
	s := r.s
	s.mu.RLock()
	defer s.mu.RUnlock()
	if r.err != nil {
		return nil, nil, r.err
	}
	select {
	case <-r.done:
		return nil, nil, ErrClosed
	default:
	}
	if s.closed {
		return nil, nil, ErrClosed
	}
	if r.cur == nil {
		if !s.hasTail || len(s.segs) == 0 || s.lastWritten.less(pos{r.from, 0}) {
			return nil, s.notify, nil
		}
		if r.from < s.segs[0].first {
			r.err = purgedError(r.from, s.segs[0].first)
			return nil, nil, r.err
		}
		if err := s.seek(r, r.from); err != nil {
			r.err = err
			return nil, nil, err
		}
	}
	ev, wait, err := s.read(r)
	if err != nil {
		r.err = err
		return nil, nil, err
	}
	if wait {
		return nil, s.notify, nil
	}
	return ev, nil, nil
}

// Close releases the reader and wakes a Next waiting in another goroutine;
// it is idempotent.
func (r *Reader) Close() error {
	r.closeOnce.Do(func() { close(r.done) })
	s := r.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.readers != nil {
		delete(s.readers, r)
	}
	err := r.cur.close()
	r.cur = nil
	if r.err == nil {
		r.err = ErrClosed
	}
	return err
}

// seek positions c at the first fragment of seqno, which the log holds
// (min <= seqno, (seqno, 0) written): from the last index entry before it,
// reading at most one index interval of records. Under s.mu.
func (s *Store) seek(c *Reader, seqno uint64) error {
	g := s.segs[s.segFor(seqno)]
	e, ok := g.seekEntry(seqno)
	if !ok {
		e = indexEntry{pos{g.first, 0}, headerSize}
	}
	if err := c.open(g); err != nil {
		return err
	}
	c.off, c.next = e.off, e.pos
	start := c.cur.nread
	for c.next != (pos{seqno, 0}) {
		if c.off >= g.size {
			return corruptRecord(g.path, c.off, fmt.Sprintf("is where seqno %d should be, but the segment ends there", seqno))
		}
		ea, err := c.cur.event(c.off, g.size, c.next)
		if err != nil {
			return err
		}
		c.off, c.next = c.off+ea.size, c.next.after(ea.ev.GetLastFrag())
	}
	c.seekBytes = c.cur.nread - start
	return nil
}

// open points c at the start of segment g, checking its header.
func (c *Reader) open(g *segment) error {
	c.cur.close()
	c.cur = nil
	sr, err := openSegReader(g.path)
	if err != nil {
		return fmt.Errorf("thl: %w", err)
	}
	first, err := sr.header()
	if err != nil {
		sr.close()
		return err
	}
	if first != g.first {
		sr.close()
		return &CorruptError{Path: g.path, Subject: "header", Offset: 0, Problem: fmt.Sprintf("says the segment starts at seqno %d where %d was expected", first, g.first)}
	}
	c.cur, c.segNum, c.off, c.next = sr, g.num, headerSize, pos{g.first, 0}
	c.sealedKnown, c.sealedEnd = g.sealed, g.size
	return nil
}

// read returns the next record of a positioned c, moving to the next
// segment at the end of a sealed one; wait is true at the published end.
// Under s.mu.
func (s *Store) read(c *Reader) (ev *thlpb.Event, wait bool, err error) {
	for {
		end, sealed := c.sealedEnd, c.sealedKnown
		if g := s.segByNum(c.segNum); g != nil {
			end, sealed = g.size, g.sealed
			c.sealedKnown, c.sealedEnd = g.sealed, g.size
		} else if !sealed {
			return nil, false, fmt.Errorf("%w: the segment this reader was reading is gone", ErrTruncated)
		}
		if c.off < end {
			ea, err := c.cur.event(c.off, end, c.next)
			if err != nil {
				return nil, false, err
			}
			c.lastFile, c.lastOff, c.lastSize = c.cur.path, c.off, ea.size
			c.off, c.next = c.off+ea.size, c.next.after(ea.ev.GetLastFrag())
			return ea.ev, false, nil
		}
		if c.off > end || !sealed {
			return nil, true, nil
		}
		g := s.segByNum(c.segNum + 1)
		if g == nil {
			if len(s.segs) > 0 && c.segNum+1 < s.segs[0].num {
				return nil, false, purgedError(c.next.seqno, s.segs[0].first)
			}
			return nil, true, nil
		}
		want := c.next
		if err := c.open(g); err != nil {
			return nil, false, err
		}
		if want != c.next {
			return nil, false, &CorruptError{Path: g.path, Subject: "header", Offset: 0, Problem: fmt.Sprintf("says the segment starts at seqno %d, but the segment before it ends before %s", g.first, want)}
		}
	}
}

// Get returns every fragment of transaction seqno. It fails with
// ErrNotFound when the log does not hold it complete (ErrPurged too when
// it was purged).
func (s *Store) Get(seqno uint64) ([]*thlpb.Event, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, ErrClosed
	}
	if !s.hasTail || len(s.segs) == 0 || s.last == nil || seqno > s.last.GetSeqno() {
		return nil, fmt.Errorf("%w: seqno %d", ErrNotFound, seqno)
	}
	if seqno < s.segs[0].first {
		return nil, purgedError(seqno, s.segs[0].first)
	}
	c := &Reader{s: s}
	defer func() { c.cur.close() }()
	if err := s.seek(c, seqno); err != nil {
		return nil, err
	}
	var out []*thlpb.Event
	for {
		ev, wait, err := s.read(c)
		if err == nil && wait {
			err = errors.New("thl: internal error: a complete transaction ends early")
		}
		if err != nil {
			return nil, err
		}
		out = append(out, ev)
		if ev.GetLastFrag() {
			return out, nil
		}
	}
}
