package raftstore

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/hashicorp/raft"
)

// compactRecordSize is the payload size at which compaction starts a new
// record.
const compactRecordSize = 1 << 20

// FirstIndex implements raft.LogStore: the lowest stored index, 0 when the
// log is empty.
func (s *Store) FirstIndex() (uint64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.readable(); err != nil {
		return 0, err
	}
	if len(s.entries) == 0 {
		return 0, nil
	}
	return s.entries[0].log.Index, nil
}

// LastIndex implements raft.LogStore: the highest stored index, 0 when the
// log is empty.
func (s *Store) LastIndex() (uint64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.readable(); err != nil {
		return 0, err
	}
	if len(s.entries) == 0 {
		return 0, nil
	}
	return s.entries[len(s.entries)-1].log.Index, nil
}

// GetLog implements raft.LogStore. A missing index returns
// raft.ErrLogNotFound.
func (s *Store) GetLog(index uint64, log *raft.Log) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.readable(); err != nil {
		return err
	}
	i, ok := s.find(index)
	if !ok {
		return raft.ErrLogNotFound
	}
	*log = *s.entries[i].log
	log.Data = bytes.Clone(log.Data)
	log.Extensions = bytes.Clone(log.Extensions)
	return nil
}

// StoreLog implements raft.LogStore.
func (s *Store) StoreLog(log *raft.Log) error {
	return s.StoreLogs([]*raft.Log{log})
}

// StoreLogs implements raft.LogStore. The batch is one record: after a
// crash it is on disk whole or not at all. An index already stored is
// replaced; gaps between indexes are allowed.
func (s *Store) StoreLogs(logs []*raft.Log) error {
	if len(logs) == 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.writable(); err != nil {
		return err
	}
	buf, start := beginRecord(nil)
	buf = append(buf, kindEntries)
	buf = binary.AppendUvarint(buf, uint64(len(logs)))
	added := make([]entry, len(logs))
	for i, l := range logs {
		n := len(buf)
		buf = appendEntry(buf, l)
		c := *l
		c.Data, c.Extensions = bytes.Clone(l.Data), bytes.Clone(l.Extensions)
		c.AppendedAt = canonicalTime(l.AppendedAt)
		added[i] = entry{log: &c, size: int64(len(buf) - n)}
	}
	if !endRecord(buf, start) {
		return fmt.Errorf("%w: %d entries encode to %d bytes", ErrTooLarge, len(logs), len(buf))
	}
	if err := s.appendRecord(buf); err != nil {
		return err
	}
	for _, e := range added {
		s.put(e)
	}
	return nil
}

// DeleteRange implements raft.LogStore: it deletes the entries with
// indexes from first to last, inclusive. It then compacts raft.log if the
// file is past the threshold and mostly dead; an error from compaction
// leaves the deletion done and the old file in place.
func (s *Store) DeleteRange(first, last uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.writable(); err != nil {
		return err
	}
	if lo, hi := s.span(first, last); lo == hi {
		return nil
	}
	buf, start := beginRecord(nil)
	buf = appendDelete(buf, first, last)
	endRecord(buf, start)
	if err := s.appendRecord(buf); err != nil {
		return err
	}
	s.remove(first, last)
	if s.needsCompaction() {
		if err := s.compact(); err != nil {
			return fmt.Errorf("%w (entries %d-%d are deleted all the same)", err, first, last)
		}
	}
	return nil
}

// appendRecord writes rec at the end of raft.log and fsyncs it. A failed
// write is cut off again so that the next record follows the last good one.
func (s *Store) appendRecord(rec []byte) error {
	if _, err := s.log.WriteAt(rec, s.size); err != nil {
		if terr := s.log.Truncate(s.size); terr != nil {
			s.fail("cut off a failed write to "+s.log.Name(), terr)
		}
		return fmt.Errorf("raftstore: append to %s: %w", s.log.Name(), err)
	}
	if err := s.log.Sync(); err != nil {
		return s.fail("fsync "+s.log.Name(), err)
	}
	s.size += int64(len(rec))
	return nil
}

// applyRecord applies a replayed raft.log payload to the in-memory log.
func (s *Store) applyRecord(payload []byte) error {
	switch payload[0] {
	case kindEntries:
		es, err := decodeEntries(payload)
		if err != nil {
			return err
		}
		for _, e := range es {
			s.put(e)
		}
	case kindDelete:
		first, last, err := decodeDelete(payload)
		if err != nil {
			return err
		}
		s.remove(first, last)
	default:
		return fmt.Errorf("unexpected record kind %d", payload[0])
	}
	return nil
}

// find returns the position of index in entries, or where it would go.
func (s *Store) find(index uint64) (int, bool) {
	return slices.BinarySearchFunc(s.entries, index, func(e entry, i uint64) int {
		return cmp.Compare(e.log.Index, i)
	})
}

// span returns the positions [lo, hi) of the entries from first to last.
func (s *Store) span(first, last uint64) (lo, hi int) {
	if first > last {
		return 0, 0
	}
	lo, _ = s.find(first)
	hi, found := s.find(last)
	if found {
		hi++
	}
	return lo, hi
}

// put adds or replaces an entry; appending is the common case.
func (s *Store) put(e entry) {
	n := len(s.entries)
	s.live += e.size
	if n == 0 || s.entries[n-1].log.Index < e.log.Index {
		s.entries = append(s.entries, e)
		return
	}
	i, found := s.find(e.log.Index)
	if found {
		s.live -= s.entries[i].size
		s.entries[i] = e
		return
	}
	s.entries = slices.Insert(s.entries, i, e)
}

// remove deletes the entries from first to last.
func (s *Store) remove(first, last uint64) {
	lo, hi := s.span(first, last)
	for _, e := range s.entries[lo:hi] {
		s.live -= e.size
	}
	s.entries = slices.Delete(s.entries, lo, hi)
}

// needsCompaction reports whether raft.log is past the threshold and more
// than half of it is dead.
func (s *Store) needsCompaction() bool {
	return s.size > s.opts.compactSize && s.live < s.size/2
}

// compact replaces raft.log with a file holding only the live entries:
// a temporary file, fsync, rename, fsync of the directory. Until the rename
// the old file stays in use; after it, appends go to the new one.
func (s *Store) compact() error {
	var buf []byte
	for i := 0; i < len(s.entries); {
		var start int
		buf, start = beginRecord(buf)
		buf = append(buf, kindEntries)
		j, size := i, int64(0)
		for j < len(s.entries) && (j == i || size+s.entries[j].size <= compactRecordSize) {
			size += s.entries[j].size
			j++
		}
		buf = binary.AppendUvarint(buf, uint64(j-i))
		for _, e := range s.entries[i:j] {
			buf = appendEntry(buf, e.log)
		}
		endRecord(buf, start) // one entry that was stored, or at most compactRecordSize
		i = j
	}
	path := s.path(logName)
	f, err := writeTemp(path, buf)
	if err != nil {
		return fmt.Errorf("raftstore: compact %s: %w", path, err)
	}
	if err := replaceWith(path, f); err != nil {
		return fmt.Errorf("raftstore: compact %s: %w", path, err)
	}
	old := s.log
	s.log, s.size = f, int64(len(buf))
	old.Close()
	if err := syncDir(s.dir); err != nil {
		return s.fail("fsync "+s.dir+" after compacting "+path, err)
	}
	return nil
}
