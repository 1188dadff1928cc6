package stream

import (
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

// A replica behind its client cannot check the client's last transaction,
// but it can say what it holds last: the client compares that with its
// own transaction at the same seqno. The same there, the source is only
// behind (the client waits or reads another); different, the source
// holds another history (the origin's THL was rewritten, a forced
// failover gave up a tail) and the client has diverged from it — a
// shorter rewritten history would otherwise look behind for ever.

// BehindError is ErrBehind with the source's last transaction (nil when
// its log is empty).
type BehindError struct {
	Last *thlpb.Event
	msg  string
}

func (e *BehindError) Error() string { return e.msg }
func (e *BehindError) Unwrap() error { return ErrBehind }

// behindStatus carries e to the client: its last transaction's seqno,
// epoch and event id as a status detail.
func behindStatus(e *BehindError) error {
	st := status.New(codes.Unavailable, e.Error())
	if e.Last != nil {
		last := &thlpb.Event{Seqno: e.Last.GetSeqno(), Epoch: e.Last.GetEpoch(), EventId: e.Last.GetEventId()}
		if d, err := st.WithDetails(last); err == nil {
			st = d
		}
	}
	return st.Err()
}

// sourceLast is the last transaction a behind source said it holds.
func sourceLast(err error) (*thlpb.Event, bool) {
	for _, d := range status.Convert(err).Details() {
		if ev, ok := d.(*thlpb.Event); ok {
			return ev, true
		}
	}
	return nil, false
}

// eventGetter is a store that can read back what it holds.
type eventGetter interface {
	Get(seqno uint64) ([]*thlpb.Event, error)
}

// behindDiverged checks a behind source's last transaction against the
// store's at that seqno: an error wrapping ErrDiverged when they differ,
// nil when they agree or the store cannot tell.
func behindDiverged(store Store, src string, last *thlpb.Event) error {
	g, ok := store.(eventGetter)
	if !ok {
		return nil
	}
	frags, err := g.Get(last.GetSeqno())
	if err != nil || len(frags) == 0 {
		return nil // purged, or not held: nothing to compare
	}
	mine := frags[len(frags)-1]
	if mine.GetEpoch() == last.GetEpoch() && mine.GetEventId() == last.GetEventId() {
		return nil
	}
	return fmt.Errorf("%w at seqno %d: the source %s (behind this replica) holds epoch %d event %s there, this replica epoch %d event %s",
		ErrDiverged, last.GetSeqno(), src, last.GetEpoch(), last.GetEventId(), mine.GetEpoch(), mine.GetEventId())
}
