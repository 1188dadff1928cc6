package raftstore

import (
	"errors"
	"fmt"
)

// Sentinel errors. Errors about the store's state wrap one of them with the
// file or directory concerned; I/O errors are wrapped as they come, with
// the operation and file. Two errors are returned unwrapped because raft
// compares them directly: ErrKeyNotFound, and raft.ErrLogNotFound from
// GetLog of a missing index.
var (
	// ErrKeyNotFound is returned, unwrapped, by Get for a key that was never
	// Set. Its text is "not found", without the package prefix, because
	// raft recognises a missing key by err.Error() == "not found".
	ErrKeyNotFound = errors.New("not found")
	// ErrCorrupt: raft.log or the stable file is damaged. See CorruptError.
	ErrCorrupt = errors.New("raftstore: the store is damaged")
	// ErrLocked: another process holds the store's lock.
	ErrLocked = errors.New("raftstore: locked")
	// ErrClosed: the Store is closed.
	ErrClosed = errors.New("raftstore: store closed")
	// ErrFailed: an earlier fsync failed, so the Store refuses writes until
	// it is reopened.
	ErrFailed = errors.New("raftstore: store failed an earlier write")
	// ErrTooLarge: a StoreLogs batch does not fit in one record.
	ErrTooLarge = errors.New("raftstore: batch too large")
)

// CorruptError describes damage: which file, where, and what is wrong.
// It matches ErrCorrupt with errors.Is.
type CorruptError struct {
	Path    string // the damaged file
	Offset  int64  // byte offset of the bad record in Path
	Problem string // "fails its CRC check", ...
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("raftstore: %s: record at byte offset %d %s; this is damage, not a torn write: "+
		"move the raft directory aside and let this manager rejoin the cluster from its peers",
		e.Path, e.Offset, e.Problem)
}

// Is makes errors.Is(err, ErrCorrupt) true.
func (e *CorruptError) Is(target error) bool { return target == ErrCorrupt }
