package thl

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

// Truncate drops every event with a seqno above after: what a replica does
// when its log holds transactions a new primary never had. Readers that
// had returned a dropped event fail with ErrTruncated.
func (s *Store) Truncate(after uint64) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := s.writable(); err != nil {
		return err
	}
	if !s.hasTail || len(s.segs) == 0 || s.lastWritten.seqno <= after {
		return nil
	}
	cut := pos{after + 1, 0}
	if after < s.segs[0].first {
		return s.removeAll(cut, fmt.Sprintf("truncated after seqno %d", after))
	}
	// Where (after+1, 0) is, and the event before it.
	i := s.segFor(after + 1)
	g := s.segs[i]
	c := &Reader{s: s}
	err := s.seek(c, after+1)
	c.cur.close()
	if err != nil {
		return err
	}
	keep := g // the new active segment
	if c.off == headerSize {
		keep = s.segs[i-1] // after+1 > first, so g is not the first
	}
	end := keep.size
	if keep == g {
		end = c.off
	}
	last, err := lastEvent(keep, end)
	if err != nil {
		return err
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.active != nil {
		s.active.Close()
		s.active = nil
	}
	removed := map[uint64]bool{}
	for j := len(s.segs) - 1; j >= 0 && s.segs[j] != keep; j-- {
		if err := s.removeSegment(s.segs[j]); err != nil {
			return s.fail(err)
		}
		removed[s.segs[j].num] = true
	}
	s.segs = s.segs[:len(s.segs)-len(removed)]
	if err := removeIfExists(keep.ipath); err != nil {
		return s.fail(fmt.Errorf("thl: remove index: %w", err))
	}
	if keep == g && c.off < g.size {
		if err := os.Truncate(g.path, c.off); err != nil {
			return s.fail(fmt.Errorf("thl: truncate %s: %w", g.path, err))
		}
		g.trimTo(c.off)
	}
	keep.sealed = false
	keep.setLast(last)
	f, err := os.OpenFile(keep.path, os.O_RDWR, 0)
	if err == nil {
		s.active = f
		err = s.fsync(f)
	}
	if err == nil {
		err = s.syncDir()
	}
	if err != nil {
		return s.fail(fmt.Errorf("thl: truncate: %w", err))
	}
	s.last, s.partial, s.lastWritten, s.next = headerOf(last), nil, pos{last.GetSeqno(), last.GetFragno()}, cut
	s.markReaders(cut, removed, fmt.Sprintf("truncated after seqno %d", after))
	s.publish()
	s.log.Info("thl: truncated the log", "after", after, "file", keep.path, "size", keep.size)
	return nil
}

// DropIncomplete removes the fragments of the transaction the log ends
// inside of (see Partial), if any, and returns the header of the last of
// them (nil: the log ended at a transaction boundary). A replica drops
// them when its source holds another transaction there; a master when its
// extraction stopped between two parts of a transaction, which it reads
// again from the binlog.
func (s *Store) DropIncomplete() (*thlpb.Event, error) {
	partial, ok := s.Partial()
	if !ok {
		return nil, nil
	}
	if last, ok := s.Last(); ok {
		return partial, s.Truncate(last.GetSeqno())
	}
	return partial, s.Reset() // fragments of a first transaction only
}

// removeSegment deletes g's files, data first (an index alone is removed
// on open). Under wmu.
func (s *Store) removeSegment(g *segment) error {
	if err := removeIfExists(g.path); err != nil {
		return fmt.Errorf("thl: remove %s: %w", g.path, err)
	}
	if err := removeIfExists(g.ipath); err != nil {
		return fmt.Errorf("thl: remove %s: %w", g.ipath, err)
	}
	return nil
}

// removeAll deletes every segment, newest first. Under wmu.
func (s *Store) removeAll(cut pos, what string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.active != nil {
		s.active.Close()
		s.active = nil
	}
	removed := map[uint64]bool{}
	for j := len(s.segs) - 1; j >= 0; j-- {
		if err := s.removeSegment(s.segs[j]); err != nil {
			return s.fail(err)
		}
		removed[s.segs[j].num] = true
		s.segs = s.segs[:j]
	}
	if err := s.syncDir(); err != nil {
		return s.fail(fmt.Errorf("thl: sync %s: %w", s.cfg.Dir, err))
	}
	s.segs, s.hasTail, s.last, s.partial, s.lastWritten, s.next = nil, false, nil, nil, pos{}, pos{}
	s.markReaders(cut, removed, what)
	s.publish()
	s.log.Info("thl: emptied the log", "why", what)
	return nil
}

// markReaders fails the readers that had read past cut, repositions those
// whose segment was removed, and drops every reader's buffer (the files
// changed under it). Under mu (write).
func (s *Store) markReaders(cut pos, removed map[uint64]bool, what string) {
	for r := range s.readers {
		if r.cur == nil || r.err != nil {
			continue
		}
		r.cur.invalidate()
		switch {
		case cut.less(r.next):
			r.err = fmt.Errorf("%w: the log was %s, and this reader had read up to %s", ErrTruncated, what, r.next)
		case removed[r.segNum]:
			r.cur.close()
			r.cur, r.from = nil, r.next.seqno
		}
	}
}

// Reset deletes the whole log (trepctl reset -thl). Every reader fails
// with ErrTruncated; the next Append may start at any seqno.
func (s *Store) Reset() error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := s.writable(); err != nil {
		return err
	}
	err := s.removeAll(pos{0, 0}, "reset")
	s.mu.Lock()
	for r := range s.readers {
		if r.err == nil {
			r.cur.close()
			r.cur = nil
			r.err = fmt.Errorf("%w: the log was reset", ErrTruncated)
		}
	}
	s.publish() // wake readers waiting at the end: they fail now
	s.mu.Unlock()
	return err
}

// Purge deletes whole sealed segments from the start of the log while the
// last event of each was committed before `before` and its seqno is below
// keepFrom (the oldest seqno something still needs). The active segment
// is never deleted. It returns how many segments it deleted.
func (s *Store) Purge(before time.Time, keepFrom uint64) (removed int, err error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := s.writable(); err != nil {
		return 0, err
	}
	limit := before.UnixMicro()
	for len(s.segs) > 1 {
		g := s.segs[0]
		if !g.sealed || g.lastCommitUs >= limit || g.last >= keepFrom {
			break
		}
		s.mu.Lock()
		for r := range s.readers {
			if r.cur != nil && r.segNum == g.num {
				r.sealedKnown, r.sealedEnd = true, g.size
			}
		}
		err := s.removeSegment(g)
		if err == nil {
			s.segs = s.segs[1:]
		}
		s.mu.Unlock()
		if err != nil {
			return removed, err
		}
		removed++
	}
	if removed > 0 {
		if err := s.syncDir(); err != nil {
			return removed, fmt.Errorf("thl: sync %s: %w", s.cfg.Dir, err)
		}
		s.log.Info("thl: purged old segments", "files", removed, "min_seqno", s.segs[0].first)
	}
	return removed, nil
}

// PurgeOlderThan purges (see Purge) the segments whose last event is older
// than age by the store's clock.
func (s *Store) PurgeOlderThan(age time.Duration, keepFrom uint64) (int, error) {
	return s.Purge(s.cfg.Clock().Add(-age), keepFrom)
}

// Info describes the log.
type Info struct {
	Dir      string
	ReadOnly bool
	// Empty: no event at all. Min is the first seqno; Max the last
	// complete transaction (HasMax false when there is none).
	Empty     bool
	Min, Max  uint64
	HasMax    bool
	Size      int64 // bytes of segment files
	FirstTime time.Time
	LastTime  time.Time // source commit time of the last complete transaction
	Files     []FileInfo
	Repairs   []Repair
}

// FileInfo describes one segment.
type FileInfo struct {
	Name         string
	Size         int64
	Sealed       bool
	HasRecords   bool
	First        uint64 // the seqno its header names
	Last         uint64 // its last complete transaction (HasLast)
	HasLast      bool
	IndexEntries int
	FirstTime    time.Time
	LastTime     time.Time
}

// Info returns a description of the log.
func (s *Store) Info() Info {
	s.mu.RLock()
	defer s.mu.RUnlock()
	in := Info{Dir: s.cfg.Dir, ReadOnly: s.cfg.ReadOnly, Empty: !s.hasTail || len(s.segs) == 0, Repairs: append([]Repair(nil), s.repairs...)}
	for _, g := range s.segs {
		fi := FileInfo{Name: filepath.Base(g.path), Size: g.size, Sealed: g.sealed, HasRecords: g.hasRecords, First: g.first,
			Last: g.last, HasLast: g.hasComplete, IndexEntries: len(g.entries)}
		if g.hasRecords {
			fi.FirstTime = time.UnixMicro(g.firstCommitUs)
		}
		if g.hasComplete {
			fi.LastTime = time.UnixMicro(g.lastCommitUs)
		}
		in.Size += g.size
		in.Files = append(in.Files, fi)
	}
	if !in.Empty {
		in.Min, in.FirstTime = s.segs[0].first, in.Files[0].FirstTime
	}
	if s.last != nil {
		in.Max, in.HasMax, in.LastTime = s.last.GetSeqno(), true, time.UnixMicro(s.last.GetSourceCommitTimeUs())
	}
	return in
}

// Verify reads every record of the log as it is now, checking CRCs, that
// every record decodes, and the seqno sequence; it returns the first
// damage found. Readers find damage only when they cross it (a reader
// positioned by the index skips the records before its start), so Verify
// is how to check a whole log. It reads without holding the store's
// locks; run it while the log is not being truncated or purged.
func (s *Store) Verify(ctx context.Context) error {
	type snap struct {
		g      segment
		sealed bool
	}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return ErrClosed
	}
	segs := make([]snap, len(s.segs))
	for i, g := range s.segs {
		segs[i] = snap{segment{num: g.num, path: g.path, first: g.first}, g.sealed}
		segs[i].g.size = g.size
	}
	s.mu.RUnlock()
	for _, sn := range segs {
		if err := ctx.Err(); err != nil {
			return err
		}
		g := sn.g
		end := g.size
		r, err := openSegReader(g.path)
		if err != nil {
			return fmt.Errorf("thl: %w", err)
		}
		first, err := r.header()
		if err == nil && first != g.first {
			err = &CorruptError{Path: g.path, Subject: "header", Offset: 0, Problem: fmt.Sprintf("says the segment starts at seqno %d where %d was expected", first, g.first)}
		}
		if err == nil {
			var res *scanResult
			res, err = scanSegment(r, &g, end, s.cfg.IndexInterval, false)
			if err == nil && sn.sealed && res.partial > 0 {
				err = corruptRecord(g.path, res.txStart, "starts a transaction the sealed segment does not finish")
			}
		}
		r.close()
		if err != nil {
			return err
		}
	}
	return nil
}
