package extract

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error the package returns is a sentence for an
// operator that wraps one of these (errors.Is tells its kind).
var (
	// ErrConfig: Config.Validate refused the configuration.
	ErrConfig = errors.New("extract: invalid configuration")
	// ErrConnect: the database could not be reached or refused a query.
	ErrConnect = errors.New("extract: database unreachable")
	// ErrServerSetup: the database is not configured for row extraction
	// (binlog off, binlog_format not ROW, binlog_row_image not FULL, same
	// server id).
	ErrServerSetup = errors.New("extract: database not set up for row extraction")
	// ErrPositionGone: the start position is not in the server's binlog
	// (purged, or from another server).
	ErrPositionGone = errors.New("extract: start position not in the binlog")
	// ErrStream: the binlog stream broke (connection lost, server error).
	// Run again from the last stored event.
	ErrStream = errors.New("extract: binlog stream failed")
	// ErrDecode: an event could not be turned into THL (unsupported type,
	// missing column metadata, partial row image).
	ErrDecode = errors.New("extract: cannot decode binlog event")
	// ErrSpill: a transaction larger than Config.SpillBytes could not be
	// written to or read back from its spill file (disk full, spill
	// directory gone). Run again once there is room.
	ErrSpill = errors.New("extract: cannot spill a large transaction to disk")
)

// kindError is an operator sentence that also matches a sentinel (kind)
// and, when there is one, the underlying cause.
type kindError struct {
	kind error
	msg  string
	err  error
}

func (e *kindError) Error() string { return e.msg }

func (e *kindError) Unwrap() []error {
	if e.err == nil {
		return []error{e.kind}
	}
	return []error{e.kind, e.err}
}

// errorf formats an operator sentence of the given kind; a %w verb in
// format becomes the cause.
func errorf(kind error, format string, args ...any) error {
	wrapped := fmt.Errorf(format, args...)
	return &kindError{kind: kind, msg: wrapped.Error(), err: errors.Unwrap(wrapped)}
}
