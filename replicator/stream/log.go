package stream

import (
	"context"
	"errors"

	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

// Reader iterates a log from a seqno on, waiting for new events at its end.
type Reader interface {
	Next(ctx context.Context) (*thlpb.Event, error)
	Close() error
}

// Log is the part of a THL store the server reads.
type Log interface {
	// Last returns the last fragment of the last complete transaction.
	Last() (*thlpb.Event, bool)
	// Get returns every fragment of one transaction.
	Get(seqno uint64) ([]*thlpb.Event, error)
	// NewReader reads from seqno `from` on.
	NewReader(from uint64) (Reader, error)
}

// Sentinel errors.
var (
	// ErrDiverged: the client's history is not the server's.
	ErrDiverged = errors.New("stream: diverged")
	// ErrUnknownService: the server does not serve that service.
	ErrUnknownService = errors.New("stream: unknown service")
)
