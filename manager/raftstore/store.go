package raftstore

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

var (
	_ raft.LogStore    = (*Store)(nil)
	_ raft.StableStore = (*Store)(nil)
)

// Store is raft's log and stable store, kept in memory and persisted in one
// directory. It is safe for concurrent use.
type Store struct {
	dir  string
	opts options
	lock *os.File // flocked dir/LOCK

	mu      sync.RWMutex
	log     *os.File          // raft.log, opened read-write
	size    int64             // bytes of valid records in raft.log
	entries []entry           // sorted by index, no duplicates
	live    int64             // encoded size of entries; size-live is dead
	kv      map[string][]byte // Set keys; never a nil value
	kvInt   map[string]uint64 // SetUint64 keys
	closed  bool
	failed  error // sticky; wraps ErrFailed
}

// entry is a stored log entry and the size of its encoding.
type entry struct {
	log  *raft.Log // owned by the Store
	size int64
}

// options are Open's defaults; tests shorten them.
type options struct {
	lockWait    time.Duration // how long to retry a held lock
	compactSize int64         // raft.log size above which compaction is considered
}

func defaultOptions() options {
	return options{lockWait: 5 * time.Second, compactSize: 4 << 20}
}

// Open opens the store in dir, creating dir (mode 0700) and the store if
// needed. It takes an exclusive flock on dir/LOCK, retrying for up to 5 s
// while another process holds it, and fails with "raft store <dir> is in use
// by another process" after that. Open replays raft.log, truncating a torn
// tail left by a crash; other damage is a *CorruptError.
func Open(dir string) (*Store, error) {
	return open(dir, defaultOptions())
}

func open(dir string, opts options) (*Store, error) {
	if err := makeDir(dir); err != nil {
		return nil, fmt.Errorf("raftstore: create directory %s: %w", dir, err)
	}
	lock, err := lockDir(dir, opts.lockWait)
	if err != nil {
		return nil, err
	}
	s := &Store{dir: dir, opts: opts, lock: lock}
	if err := s.load(); err != nil {
		if s.log != nil {
			s.log.Close()
		}
		lock.Close()
		return nil, err
	}
	return s, nil
}

// load removes leftover temporary files and reads the stable file and
// raft.log, repairing a torn tail.
func (s *Store) load() error {
	for _, name := range []string{logName, stableName} {
		if err := removeIfExists(s.path(name) + tmpSuffix); err != nil {
			return fmt.Errorf("raftstore: remove leftover temporary file: %w", err)
		}
	}
	if err := s.loadStable(); err != nil {
		return err
	}
	if err := s.openLog(); err != nil {
		return err
	}
	data, err := io.ReadAll(s.log)
	if err != nil {
		return fmt.Errorf("raftstore: read %s: %w", s.log.Name(), err)
	}
	good, err := scanLog(s.log.Name(), data, s.applyRecord)
	if err != nil {
		return err
	}
	s.size = int64(good)
	if good < len(data) {
		// A crash interrupted the last write, which was never acknowledged.
		if err := s.log.Truncate(s.size); err != nil {
			return fmt.Errorf("raftstore: truncate the torn tail of %s at offset %d: %w", s.log.Name(), good, err)
		}
		if err := s.log.Sync(); err != nil {
			return fmt.Errorf("raftstore: fsync %s: %w", s.log.Name(), err)
		}
	}
	return nil
}

// openLog opens raft.log, creating it (and syncing the directory) if needed.
func (s *Store) openLog() error {
	path := s.path(logName)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		f, err = os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if err == nil {
			err = syncDir(s.dir)
		}
	}
	if err != nil {
		if f != nil {
			f.Close()
		}
		return fmt.Errorf("raftstore: open %s: %w", path, err)
	}
	s.log = f
	return nil
}

// Close closes raft.log, then releases the directory lock. It is
// idempotent; other methods return ErrClosed afterwards.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	err := s.log.Close()
	if lerr := s.lock.Close(); err == nil {
		err = lerr
	}
	if err != nil {
		return fmt.Errorf("raftstore: close %s: %w", s.dir, err)
	}
	return nil
}

// readable and writable report why the Store cannot be read or written.
// The caller holds mu.
func (s *Store) readable() error {
	if s.closed {
		return ErrClosed
	}
	return nil
}

func (s *Store) writable() error {
	if s.closed {
		return ErrClosed
	}
	return s.failed
}

// fail records an fsync failure, after which the Store refuses writes.
func (s *Store) fail(what string, err error) error {
	s.failed = fmt.Errorf("%w: %s: %v; reopen the store", ErrFailed, what, err)
	return s.failed
}

func (s *Store) path(name string) string { return filepath.Join(s.dir, name) }
