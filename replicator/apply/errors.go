package apply

import (
	"errors"
	"fmt"
)

// Sentinel errors.
var (
	// ErrConfig: the Config is not usable.
	ErrConfig = errors.New("apply: invalid configuration")
	// ErrApply: a transaction failed to apply; the error is an *Error.
	ErrApply = errors.New("apply: transaction failed")
	// ErrSequence: events arrived out of order (a gap or a repeat).
	ErrSequence = errors.New("apply: events out of sequence")
	// ErrTooLarge: a transaction's SQL does not fit in one query of the
	// database's max_allowed_packet.
	ErrTooLarge = errors.New("apply: statement over max_allowed_packet")
	// ErrConflict: a row change met a conflict the service stops on; the
	// error is a *ConflictError.
	ErrConflict = errors.New("apply: conflict")
)

// Error is a transaction that failed to apply: what trepctl status shows
// as pendingError, pendingErrorSeqno and pendingExceptionMessage.
type Error struct {
	Seqno   uint64
	Fragno  uint32
	EventID string
	SQL     string // the failing statement, trimmed
	Err     error
}

func (e *Error) Error() string {
	if e.SQL != "" {
		return fmt.Sprintf("apply seqno %d: %v (statement: %s)", e.Seqno, e.Err, e.SQL)
	}
	return fmt.Sprintf("apply seqno %d: %v", e.Seqno, e.Err)
}

// Unwrap makes errors.Is(err, ErrApply) hold, and reach the cause.
func (e *Error) Unwrap() []error { return []error{ErrApply, e.Err} }
