package thl

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

// Store is the THL of one replication service. See the package comment
// for its files, invariants and concurrency.
type Store struct {
	cfg  Config
	log  *slog.Logger
	lock *os.File // nil when ReadOnly

	// wmu serialises the writer's operations: Append, Sync, Truncate,
	// Purge, Reset, Close. The fields below it change only under wmu
	// (and, where readers see them, also under mu).
	wmu    sync.Mutex
	active *os.File // the last segment, open for writing; nil when empty or ReadOnly
	wbuf   []byte
	metas  []recMeta
	failed error // sticky: a write left the files in an unknown state

	// mu guards what readers see.
	mu          sync.RWMutex
	segs        []*segment // ordered; the last is the active one
	hasTail     bool       // the log holds a record
	lastWritten pos        // the last record
	next        pos        // what the next record must be
	last        *thlpb.Event
	partial     *thlpb.Event  // header of the last record when its transaction is unfinished
	notify      chan struct{} // closed and replaced when records are published
	closed      bool
	readers     map[*Reader]struct{}
	repairs     []Repair

	appended atomic.Uint64 // bytes Append wrote (counters.go)
}

// Repair is a change Open made (or, ReadOnly, would have made) to the last
// segment: a torn tail or an incomplete transaction cut away.
type Repair struct {
	File    string // the segment's path
	Offset  int64  // where the cut is
	Bytes   int64  // bytes removed
	Reason  string
	Applied bool // false on a ReadOnly open: the bytes are still there
}

func (r Repair) String() string {
	verb := "removed"
	if !r.Applied {
		verb = "ignored (read-only)"
	}
	return fmt.Sprintf("%s: %s %d bytes at offset %d: %s", r.File, verb, r.Bytes, r.Offset, r.Reason)
}

// Open opens (creating it, unless ReadOnly) the store in cfg.Dir: it takes
// the lock, checks every sealed segment's index (rebuilding a missing or
// damaged one), scans the last segment and repairs its tail.
func Open(cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	s := &Store{cfg: cfg, log: cfg.Logger.With("dir", cfg.Dir), notify: make(chan struct{}), readers: map[*Reader]struct{}{}}
	if cfg.ReadOnly {
		fi, err := os.Stat(cfg.Dir)
		if err != nil {
			return nil, fmt.Errorf("thl: no THL store at %s (%w)", cfg.Dir, err)
		}
		if !fi.IsDir() {
			return nil, fmt.Errorf("thl: %s is not a directory", cfg.Dir)
		}
	} else {
		if err := os.MkdirAll(cfg.Dir, 0o750); err != nil {
			return nil, fmt.Errorf("thl: create %s: %w", cfg.Dir, err)
		}
		lock, err := lockDir(filepath.Join(cfg.Dir, lockName))
		if err != nil {
			return nil, err
		}
		s.lock = lock
	}
	if err := s.load(); err != nil {
		s.closeFiles()
		return nil, err
	}
	return s, nil
}

// load reads the directory into s.
func (s *Store) load() error {
	dir := s.cfg.Dir
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("thl: read %s: %w", dir, err)
	}
	var nums []uint64
	indexes := map[uint64]bool{}
	for _, e := range ents {
		name := e.Name()
		if strings.HasSuffix(name, tmpSuffix) && strings.HasPrefix(name, "thl.") && !s.cfg.ReadOnly {
			// A file being written when the process stopped.
			if err := os.Remove(filepath.Join(dir, name)); err != nil {
				return fmt.Errorf("thl: remove leftover %s: %w", name, err)
			}
			continue
		}
		if n, ok := parseName(name, dataPrefix); ok {
			nums = append(nums, n)
		} else if n, ok := parseName(name, indexPrefix); ok {
			indexes[n] = true
		}
	}
	slices.Sort(nums)
	for i := 1; i < len(nums); i++ {
		if nums[i] != nums[i-1]+1 {
			return &CorruptError{Path: dir, Subject: "segment", Offset: -1,
				Problem: fmt.Sprintf("%s is missing (the segments jump from %s to %s)", DataName(nums[i-1]+1), DataName(nums[i-1]), DataName(nums[i]))}
		}
	}
	if !s.cfg.ReadOnly {
		// Index files of no sealed segment: left by a purge, a
		// truncation or a rotation that stopped half way.
		for n := range indexes {
			if len(nums) == 0 || n < nums[0] || n >= nums[len(nums)-1] {
				if err := removeIfExists(filepath.Join(dir, IndexName(n))); err != nil {
					return fmt.Errorf("thl: remove stale index: %w", err)
				}
			}
		}
	}
	var prev *segment
	for i, num := range nums {
		g := &segment{num: num, path: filepath.Join(dir, DataName(num)), ipath: filepath.Join(dir, IndexName(num))}
		var err error
		if i < len(nums)-1 {
			err = s.loadSealed(g)
		} else {
			err = s.loadActive(g, prev)
		}
		if err != nil {
			return err
		}
		if prev != nil && g.first != prev.last+1 {
			return &CorruptError{Path: g.path, Subject: "header", Offset: 0,
				Problem: fmt.Sprintf("says the segment starts at seqno %d, but the one before it ends at seqno %d", g.first, prev.last)}
		}
		if g.num == nums[len(nums)-1] && !g.hasRecords && prev == nil {
			// An empty log: the next Append may start at any seqno.
			if !s.cfg.ReadOnly {
				if err := os.Remove(g.path); err != nil {
					return fmt.Errorf("thl: remove empty segment: %w", err)
				}
			}
			break
		}
		s.segs = append(s.segs, g)
		prev = g
	}
	if !s.cfg.ReadOnly && len(s.segs) > 0 {
		g := s.segs[len(s.segs)-1]
		f, err := os.OpenFile(g.path, os.O_RDWR, 0)
		if err != nil {
			return fmt.Errorf("thl: open %s for writing: %w", g.path, err)
		}
		s.active = f
	}
	return nil
}

// loadSealed reads sealed segment g's header and index, rebuilding the
// index by a scan when it is missing or damaged.
func (s *Store) loadSealed(g *segment) error {
	g.sealed = true
	r, err := openSegReader(g.path)
	if err != nil {
		return fmt.Errorf("thl: %w", err)
	}
	defer r.close()
	if g.first, err = r.header(); err != nil {
		return err
	}
	fi, err := r.f.Stat()
	if err != nil {
		return fmt.Errorf("thl: %w", err)
	}
	data, err := os.ReadFile(g.ipath)
	var why string
	switch {
	case errors.Is(err, fs.ErrNotExist):
		why = "missing"
	case err != nil:
		return fmt.Errorf("thl: read index: %w", err)
	default:
		derr := decodeIndex(data, g, fi.Size())
		if derr == nil {
			return nil
		}
		why = derr.Error()
	}
	s.log.Warn("thl: rebuilding segment index", "file", g.path, "index", g.ipath, "reason", why)
	res, err := scanSegment(r, g, fi.Size(), s.cfg.IndexInterval, false)
	if err != nil {
		return err
	}
	if !res.hasRecord {
		return &CorruptError{Path: g.path, Subject: "segment", Offset: headerSize, Problem: "holds no record, though a later segment follows it"}
	}
	if res.partial > 0 {
		return corruptRecord(g.path, res.txStart, fmt.Sprintf("starts transaction seqno %d, which the segment ends without finishing, though a later segment follows it", res.lastPos.seqno))
	}
	if s.cfg.ReadOnly {
		return nil
	}
	if err := s.writeFileAtomic(g.ipath, encodeIndex(g)); err != nil {
		return fmt.Errorf("thl: write rebuilt index: %w", err)
	}
	return s.syncDir()
}

// loadActive scans the last segment, cuts a torn tail and an incomplete
// last transaction, and sets the store's tail from it (or from prev, the
// segment before it, when it holds no complete transaction).
func (s *Store) loadActive(g *segment, prev *segment) error {
	r, err := openSegReader(g.path)
	if err != nil {
		return fmt.Errorf("thl: %w", err)
	}
	defer r.close()
	if g.first, err = r.header(); err != nil {
		return err
	}
	if !s.cfg.ReadOnly {
		// Its index, if any, is from a rotation or truncation that
		// stopped half way; it is written again when it is sealed.
		if err := removeIfExists(g.ipath); err != nil {
			return fmt.Errorf("thl: remove index of the active segment: %w", err)
		}
	}
	fi, err := r.f.Stat()
	if err != nil {
		return fmt.Errorf("thl: %w", err)
	}
	res, err := scanSegment(r, g, fi.Size(), s.cfg.IndexInterval, true)
	if err != nil {
		return err
	}
	end := res.validEnd
	if res.torn != recOK {
		s.repair(g, res.tornAt, fi.Size()-res.tornAt, "torn write: the record there "+res.torn.String()+", and no valid record follows it")
	}
	if res.partial > 0 {
		s.repair(g, res.txStart, res.validEnd-res.txStart, fmt.Sprintf("incomplete transaction: seqno %d has %d fragments and no last one", res.lastPos.seqno, res.partial))
		if !s.cfg.ReadOnly {
			end = res.txStart
			g.trimTo(end)
		}
	}
	if end < fi.Size() && !s.cfg.ReadOnly {
		if err := os.Truncate(g.path, end); err != nil {
			return fmt.Errorf("thl: repair %s: %w", g.path, err)
		}
		if err := s.syncFile(g.path); err != nil {
			return fmt.Errorf("thl: repair %s: %w", g.path, err)
		}
	}
	// The store's tail.
	switch {
	case g.hasRecords && (s.cfg.ReadOnly || res.partial == 0):
		s.hasTail, s.lastWritten, s.next = true, res.lastPos, res.next
	case g.hasComplete: // an incomplete transaction was cut after it
		s.hasTail, s.lastWritten, s.next = true, pos{res.last.GetSeqno(), res.last.GetFragno()}, pos{res.last.GetSeqno() + 1, 0}
	case prev != nil:
		s.hasTail, s.next = true, pos{prev.last + 1, 0}
	}
	switch {
	case res.last != nil:
		s.last = res.last
	case prev != nil:
		ev, err := lastEvent(prev, prev.size)
		if err != nil {
			return err
		}
		s.last = headerOf(ev)
		if !g.hasRecords {
			s.lastWritten = pos{ev.GetSeqno(), ev.GetFragno()}
		}
	}
	return nil
}

// repair notes (and logs) a cut of the last segment.
func (s *Store) repair(g *segment, off, n int64, reason string) {
	rp := Repair{File: g.path, Offset: off, Bytes: n, Reason: reason, Applied: !s.cfg.ReadOnly}
	s.repairs = append(s.repairs, rp)
	if rp.Applied {
		s.log.Warn("thl: repaired the end of the log", "file", g.path, "offset", off, "bytes", n, "reason", reason)
	} else {
		s.log.Info("thl: the end of the log needs repair (read-only: not repaired)", "file", g.path, "offset", off, "bytes", n, "reason", reason)
	}
}

func (s *Store) syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	err = s.fsync(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// closeFiles releases the active file and the lock.
func (s *Store) closeFiles() error {
	var err error
	if s.active != nil {
		err = s.active.Close()
		s.active = nil
	}
	if s.lock != nil {
		if cerr := s.lock.Close(); err == nil {
			err = cerr
		}
		s.lock = nil
	}
	return err
}

// Close syncs and closes the active segment, fails every reader with
// ErrClosed (waking those that wait), then releases the lock, in that
// order. It is idempotent.
func (s *Store) Close() error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.closed {
		return nil
	}
	var err error
	if s.active != nil && s.failed == nil {
		err = s.fsync(s.active)
	}
	s.mu.Lock()
	s.closed = true
	close(s.notify)
	for r := range s.readers {
		r.cur.close()
		r.cur = nil
	}
	s.readers = nil
	s.mu.Unlock()
	if cerr := s.closeFiles(); err == nil {
		err = cerr
	}
	return err
}

// Dir returns the store's directory.
func (s *Store) Dir() string { return s.cfg.Dir }

// MinSeqno returns the first seqno the log holds; ok is false when empty.
func (s *Store) MinSeqno() (seqno uint64, ok bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if !s.hasTail || len(s.segs) == 0 {
		return 0, false
	}
	return s.segs[0].first, true
}

// MaxSeqno returns the seqno of the last complete transaction (its last
// fragment stored); ok is false when there is none.
func (s *Store) MaxSeqno() (seqno uint64, ok bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.last == nil {
		return 0, false
	}
	return s.last.GetSeqno(), true
}

// Last returns the last fragment of the last complete transaction, without
// its changes (seqno, epoch, event_id, times ...): what a replica presents
// to its source. ok is false when there is none.
func (s *Store) Last() (*thlpb.Event, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.last == nil {
		return nil, false
	}
	return headerOf(s.last), true
}

// Partial returns the header of the last stored fragment when the log ends
// inside a transaction (its last fragment not stored yet): what a replica
// holds of a transaction its source is still sending. ok is false when
// the log ends at a transaction boundary. A ReadOnly store reports none.
func (s *Store) Partial() (*thlpb.Event, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.partial == nil {
		return nil, false
	}
	return headerOf(s.partial), true
}

// Repairs returns what Open cut from (or, ReadOnly, found at) the end of
// the log.
func (s *Store) Repairs() []Repair {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return slices.Clone(s.repairs)
}

// segByNum returns the segment numbered num, or nil. Under mu.
func (s *Store) segByNum(num uint64) *segment {
	if len(s.segs) == 0 || num < s.segs[0].num || num > s.segs[len(s.segs)-1].num {
		return nil
	}
	return s.segs[num-s.segs[0].num]
}

// segFor returns the index of the segment that holds seqno (the last whose
// first seqno is at most seqno). Under mu; the log is not empty.
func (s *Store) segFor(seqno uint64) int {
	i, _ := slices.BinarySearchFunc(s.segs, seqno, func(g *segment, q uint64) int {
		if g.first <= q {
			return -1
		}
		return 1
	})
	return max(i-1, 0)
}

// publish wakes waiting readers. Under mu (write).
func (s *Store) publish() {
	close(s.notify)
	s.notify = make(chan struct{})
}
