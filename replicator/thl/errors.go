package thl

import (
	"errors"
	"fmt"
)

// Sentinel errors. Errors returned by the store wrap one of them with the
// file, offset or seqno concerned.
var (
	// ErrCorrupt: the log is damaged (CRC mismatch, malformed record or
	// header, seqnos out of order, a missing segment). See CorruptError.
	ErrCorrupt = errors.New("thl: the log is damaged")
	// ErrNotFound: no transaction with that seqno is stored.
	ErrNotFound = errors.New("thl: seqno not found")
	// ErrPurged: the seqno was purged from this log; errors wrapping it
	// also wrap ErrNotFound.
	ErrPurged = errors.New("thl: seqno purged")
	// ErrSequence: Append was given an event that does not follow the last
	// stored one (a gap, a repeat, a fragment out of order).
	ErrSequence = errors.New("thl: event out of sequence")
	// ErrInvalid: Append was given an event it cannot store (nil, empty,
	// too large, not marshallable).
	ErrInvalid = errors.New("thl: invalid event")
	// ErrClosed: the store or the reader is closed.
	ErrClosed = errors.New("thl: closed")
	// ErrLocked: another process holds the store's lock.
	ErrLocked = errors.New("thl: store in use by another process")
	// ErrReadOnly: a write was attempted on a store opened ReadOnly.
	ErrReadOnly = errors.New("thl: store opened read-only")
	// ErrTruncated: Truncate or Reset removed events this reader had
	// returned or was about to return; open a new reader.
	ErrTruncated = errors.New("thl: log truncated under the reader")
)

// CorruptError describes damage: which file, where, and what is wrong.
// It matches ErrCorrupt with errors.Is.
type CorruptError struct {
	Path    string // the file (or directory, for a missing segment)
	Subject string // "record at offset 81920", "header", "index"
	Problem string // "fails its CRC check"
	Offset  int64  // byte offset of the damage in Path; -1 when none applies
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("thl: %s: %s %s; the log is damaged: restore this host's THL (trepctl reset -thl) rather than edit it",
		e.Path, e.Subject, e.Problem)
}

// Is makes errors.Is(err, ErrCorrupt) true.
func (e *CorruptError) Is(target error) bool { return target == ErrCorrupt }

func corruptRecord(path string, off int64, problem string) *CorruptError {
	return &CorruptError{Path: path, Subject: fmt.Sprintf("record at offset %d", off), Problem: problem, Offset: off}
}

// purgedError wraps both ErrPurged and ErrNotFound.
func purgedError(seqno, min uint64) error {
	return fmt.Errorf("%w: seqno %d is below the log's first seqno %d (%w)", ErrPurged, seqno, min, ErrNotFound)
}
