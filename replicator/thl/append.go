package thl

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

// recMeta is one encoded record of an Append batch.
type recMeta struct {
	ev    *thlpb.Event
	start int // in the batch buffer
	size  int
}

// maxKeptBuffer bounds the batch buffer kept between Appends.
const maxKeptBuffer = 4 << 20

// writable reports why the store cannot be written. Under wmu.
func (s *Store) writable() error {
	switch {
	case s.closed:
		return ErrClosed
	case s.cfg.ReadOnly:
		return ErrReadOnly
	case s.failed != nil:
		return fmt.Errorf("thl: the store failed earlier (%w); close and reopen it", s.failed)
	}
	return nil
}

// fail makes err sticky: the files may no longer match what s knows.
func (s *Store) fail(err error) error {
	if s.failed == nil {
		s.failed = err
		s.log.Error("thl: store failed; it must be reopened", "err", err)
	}
	return err
}

// Append stores events, in order, after the last stored one: each must be
// the next fragment of an unfinished transaction, or the first fragment
// (fragno 0) of the transaction after the last. An empty log takes any
// seqno to start with. Either every event is checked and encoded and then
// written, or none is written and the error says which event was refused.
// Append does not fsync (see Sync); readers see the events when it
// returns. The events are not retained.
func (s *Store) Append(events ...*thlpb.Event) error {
	if len(events) == 0 {
		return nil
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := s.writable(); err != nil {
		return err
	}
	buf, metas := s.wbuf[:0], s.metas[:0]
	next, has := s.next, s.hasTail
	for _, ev := range events {
		if ev == nil {
			return fmt.Errorf("%w: nil event", ErrInvalid)
		}
		p := pos{ev.GetSeqno(), ev.GetFragno()}
		if has && p != next {
			return s.sequenceError(p, next)
		}
		if !has && p.fragno != 0 {
			return fmt.Errorf("%w: append %s: the log is empty, so its first event must be a first fragment (fragno 0)", ErrSequence, p)
		}
		start := len(buf)
		var err error
		if buf, err = appendRecord(buf, ev, s.cfg.maxRecord); err != nil {
			return err
		}
		metas = append(metas, recMeta{ev: ev, start: start, size: len(buf) - start})
		next, has = p.after(ev.GetLastFrag()), true
	}
	err := s.write(buf, metas)
	if err == nil {
		s.appended.Add(uint64(len(buf)))
	}
	if cap(buf) <= maxKeptBuffer {
		s.wbuf = buf[:0]
	}
	clear(metas)
	s.metas = metas[:0]
	return err
}

func (s *Store) sequenceError(got, want pos) error {
	var last string
	if s.lastWritten.seqno+1 == want.seqno && want.fragno == 0 {
		last = fmt.Sprintf("the log ends with seqno %d complete", s.lastWritten.seqno)
	} else {
		last = fmt.Sprintf("the log ends with %s, not the last fragment", s.lastWritten)
	}
	what := "out of order"
	switch {
	case got.seqno > want.seqno:
		what = fmt.Sprintf("a gap of %d seqnos", got.seqno-want.seqno)
	case got.seqno < want.seqno:
		what = "already stored"
	}
	return fmt.Errorf("%w: append %s refused (%s): %s, so the next event must be %s", ErrSequence, got, what, last, want)
}

// write writes an encoded batch, rotating to a new segment before a first
// fragment when the active one has reached the segment size. Under wmu.
func (s *Store) write(buf []byte, metas []recMeta) error {
	from := 0
	for i, m := range metas {
		if m.ev.GetFragno() != 0 {
			continue
		}
		g := s.activeSeg()
		if g == nil {
			if err := s.newSegment(m.ev.GetSeqno(), 1); err != nil {
				return err
			}
			continue
		}
		pending := int64(m.start - metas[from].start)
		if (g.hasRecords || pending > 0) && g.size+pending >= s.cfg.SegmentSize {
			if err := s.writeChunk(buf, metas[from:i]); err != nil {
				return err
			}
			from = i
			if err := s.rotate(m.ev.GetSeqno()); err != nil {
				return err
			}
		}
	}
	return s.writeChunk(buf, metas[from:])
}

// activeSeg returns the last segment, or nil. Under wmu.
func (s *Store) activeSeg() *segment {
	if len(s.segs) == 0 {
		return nil
	}
	return s.segs[len(s.segs)-1]
}

// writeChunk writes the records of metas to the active segment and
// publishes them. Under wmu.
func (s *Store) writeChunk(buf []byte, metas []recMeta) error {
	if len(metas) == 0 {
		return nil
	}
	g := s.activeSeg()
	base, end := metas[0].start, metas[len(metas)-1].start+metas[len(metas)-1].size
	off := g.size
	if _, err := s.active.WriteAt(buf[base:end], off); err != nil {
		err = fmt.Errorf("thl: write %s at offset %d: %w", g.path, off, err)
		if terr := s.active.Truncate(off); terr != nil {
			return s.fail(err)
		}
		return err
	}
	s.mu.Lock()
	var lastTx *thlpb.Event
	for _, m := range metas {
		ev := m.ev
		p := pos{ev.GetSeqno(), ev.GetFragno()}
		g.addRecord(p, ev.GetLastFrag(), off+int64(m.start-base), int64(m.size), ev.GetEpoch(), ev.GetEventId(), ev.GetSourceCommitTimeUs(), s.cfg.IndexInterval)
		s.lastWritten, s.next, s.hasTail = p, p.after(ev.GetLastFrag()), true
		if ev.GetLastFrag() {
			lastTx = ev
		}
	}
	if last := metas[len(metas)-1].ev; last.GetLastFrag() {
		s.partial = nil
	} else {
		s.partial = headerOf(last)
	}
	if lastTx != nil {
		s.last = headerOf(lastTx)
	}
	s.publish()
	s.mu.Unlock()
	return nil
}

// rotate seals the active segment (fsync, then its index) and starts the
// next one at seqno first. Under wmu.
func (s *Store) rotate(first uint64) error {
	g := s.activeSeg()
	if err := s.fsync(s.active); err != nil {
		return s.fail(fmt.Errorf("thl: sync %s: %w", g.path, err))
	}
	if err := s.writeFileAtomic(g.ipath, encodeIndex(g)); err != nil {
		return s.fail(fmt.Errorf("thl: write index of %s: %w", g.path, err))
	}
	if err := s.active.Close(); err != nil {
		return s.fail(fmt.Errorf("thl: close %s: %w", g.path, err))
	}
	s.active = nil
	s.mu.Lock()
	g.sealed = true
	s.mu.Unlock()
	s.log.Debug("thl: sealed segment", "file", g.path, "first", g.first, "last", g.last, "size", g.size)
	return s.newSegment(first, g.num+1)
}

// newSegment creates segment num starting at seqno first (through a
// temporary file, so that it appears with its whole header) and makes it
// the active one. Under wmu.
func (s *Store) newSegment(first, num uint64) error {
	g := &segment{num: num, path: filepath.Join(s.cfg.Dir, DataName(num)), ipath: filepath.Join(s.cfg.Dir, IndexName(num)), first: first, size: headerSize}
	if err := s.writeFileAtomic(g.path, encodeHeader(first)); err != nil {
		return s.fail(fmt.Errorf("thl: create %s: %w", g.path, err))
	}
	if err := s.syncDir(); err != nil {
		return s.fail(fmt.Errorf("thl: sync %s: %w", s.cfg.Dir, err))
	}
	f, err := os.OpenFile(g.path, os.O_RDWR, 0)
	if err != nil {
		return s.fail(fmt.Errorf("thl: open %s: %w", g.path, err))
	}
	s.active = f
	s.mu.Lock()
	s.segs = append(s.segs, g)
	s.mu.Unlock()
	return nil
}

// Sync makes every event appended before it durable (fsync of the active
// segment). The fsync runs on a duplicate of the segment's descriptor
// without the write lock, so Append goes on meanwhile (a rotation closes
// the original; the duplicate stays valid).
func (s *Store) Sync() error {
	s.wmu.Lock()
	if err := s.writable(); err != nil {
		s.wmu.Unlock()
		return err
	}
	if s.active == nil || s.cfg.noSync {
		s.wmu.Unlock()
		return nil
	}
	fd, err := unix.Dup(int(s.active.Fd()))
	name := s.active.Name()
	if err != nil {
		defer s.wmu.Unlock()
		return s.fail(fmt.Errorf("thl: sync %s: %w", name, err))
	}
	s.wmu.Unlock()
	f := os.NewFile(uintptr(fd), name)
	err = f.Sync()
	f.Close()
	if err != nil {
		s.wmu.Lock()
		defer s.wmu.Unlock()
		return s.fail(fmt.Errorf("thl: sync %s: %w", name, err))
	}
	return nil
}
