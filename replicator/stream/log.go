package stream

import (
	"context"
	"errors"
	"fmt"
	"math"

	"google.golang.org/grpc"

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
	// ErrBehind: the server, a replica, does not hold the client's last
	// transaction yet.
	ErrBehind = errors.New("stream: the source is behind the client")
	// ErrUnknownService: the server does not serve that service.
	ErrUnknownService = errors.New("stream: unknown service")
	// ErrTooLarge: an event is larger than a message may be; see
	// LimitError.
	ErrTooLarge = errors.New("stream: event over the message size limit")
	// ErrStore: the replica's store refused an event or failed; trying
	// another source cannot help.
	ErrStore = errors.New("stream: the replica's THL store failed")
)

// MaxMessageSize bounds one stream message on both ends: gRPC's largest
// (2 GiB - 1), above thl.MaxRecordSize, so that every event a THL can
// hold can be sent. Buffers grow to the messages received, not to this
// bound: it costs nothing to events of ordinary size.
const MaxMessageSize = math.MaxInt32

// ServerOptions are the gRPC server options a THL server needs: sends up
// to MaxMessageSize.
func ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{grpc.MaxSendMsgSize(MaxMessageSize)}
}

// LimitError is an event over a message size limit: the replicator stops
// before that event. It wraps ErrTooLarge.
type LimitError struct {
	Seqno  uint64 // the transaction whose event it is
	Fragno uint32
	Source string
	Limit  int    // bytes
	Detail string // gRPC's words
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("stream: seqno %d fragno %d from %s is over a THL stream message size limit (%s; this replica takes up to %d bytes); this replicator stops before it",
		e.Seqno, e.Fragno, e.Source, e.Detail, e.Limit)
}

// Unwrap makes errors.Is(err, ErrTooLarge) true.
func (e *LimitError) Unwrap() error { return ErrTooLarge }
