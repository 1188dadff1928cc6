package raftstore

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
)

// Set implements raft.StableStore. A nil val removes key.
func (s *Store) Set(key, val []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.writable(); err != nil {
		return err
	}
	kv := maps.Clone(s.kv)
	if val == nil {
		delete(kv, string(key))
	} else {
		kv[string(key)] = bytes.Clone(val)
	}
	if err := s.saveStable(kv, s.kvInt); err != nil {
		return err
	}
	s.kv = kv
	return nil
}

// Get implements raft.StableStore. A key never Set returns
// ErrKeyNotFound, which raft expects on a new store.
func (s *Store) Get(key []byte) ([]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.readable(); err != nil {
		return nil, err
	}
	val, ok := s.kv[string(key)]
	if !ok {
		return nil, ErrKeyNotFound
	}
	return bytes.Clone(val), nil
}

// SetUint64 implements raft.StableStore. Its keys are separate from Set's,
// as in raft.InmemStore.
func (s *Store) SetUint64(key []byte, val uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.writable(); err != nil {
		return err
	}
	kvInt := maps.Clone(s.kvInt)
	kvInt[string(key)] = val
	if err := s.saveStable(s.kv, kvInt); err != nil {
		return err
	}
	s.kvInt = kvInt
	return nil
}

// GetUint64 implements raft.StableStore. A key never set returns 0 and no
// error.
func (s *Store) GetUint64(key []byte) (uint64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.readable(); err != nil {
		return 0, err
	}
	return s.kvInt[string(key)], nil
}

// saveStable replaces the stable file with kv and kvInt. The caller holds
// mu for writing.
func (s *Store) saveStable(kv map[string][]byte, kvInt map[string]uint64) error {
	buf, start := beginRecord(nil)
	buf = appendStable(buf, kv, kvInt)
	if !endRecord(buf, start) {
		return fmt.Errorf("%w: the stable store encodes to %d bytes", ErrTooLarge, len(buf))
	}
	path := s.path(stableName)
	f, err := writeTemp(path, buf)
	if err != nil {
		return fmt.Errorf("raftstore: write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("raftstore: write %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("raftstore: replace %s: %w", path, err)
	}
	if err := syncDir(s.dir); err != nil {
		return s.fail("fsync "+s.dir, err)
	}
	return nil
}

// loadStable reads the stable file; a missing file is an empty store.
func (s *Store) loadStable() error {
	path := s.path(stableName)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		s.kv, s.kvInt = map[string][]byte{}, map[string]uint64{}
		return nil
	}
	if err != nil {
		return fmt.Errorf("raftstore: read %s: %w", path, err)
	}
	// The file is replaced whole, so anything but one valid record is damage.
	payload, next, p := readRecord(data, 0)
	switch {
	case p != recOK:
		return &CorruptError{Path: path, Offset: 0, Problem: p.String()}
	case next != len(data):
		return &CorruptError{Path: path, Offset: int64(next), Problem: "follows the stable record, which should be alone"}
	}
	kv, kvInt, err := decodeStable(payload)
	if err != nil {
		return &CorruptError{Path: path, Offset: 0, Problem: "does not decode (" + err.Error() + ")"}
	}
	s.kv, s.kvInt = kv, kvInt
	return nil
}
