package extract

import (
	"context"
	"errors"

	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/carbidedb/carbide/internal/budget"
)

// errQueueStopped ends go-mysql's reader when the run has stopped.
var errQueueStopped = errors.New("extract: the run stopped reading events")

// eventQueue carries decoded binlog events from go-mysql's reader
// goroutine (as its SynchronousEventHandler) to the run's, bounded in
// events (Config.EventBuffer) and in bytes (Config.EventBufferBytes): a
// row event can hold a row of up to a gigabyte, and go-mysql's own
// queue, bounded in events only, held a thousand of them decoded.
type eventQueue struct {
	ch    chan queuedEvent
	comp  compression // on the reader's goroutine
	bytes *budget.Bytes
	ctx   context.Context // ends when the run stops reading
	stop  context.CancelFunc
	errc  chan error // the stream's error (watch)
	err   error      // sticky once received
}

func newEventQueue(events, bytes int) *eventQueue {
	ctx, stop := context.WithCancel(context.Background())
	return &eventQueue{ch: make(chan queuedEvent, events), bytes: budget.New(bytes), ctx: ctx, stop: stop, errc: make(chan error, 1)}
}

// queuedEvent is an event and, for a table map, its COMPRESSED columns.
type queuedEvent struct {
	ev         *replication.BinlogEvent
	compressed []bool
}

// HandleEvent implements replication.EventHandler: it waits for room.
func (q *eventQueue) HandleEvent(e *replication.BinlogEvent) error {
	compressed, err := q.comp.see(e)
	if err != nil {
		return err
	}
	if err := q.bytes.Acquire(q.ctx, len(e.RawData)); err != nil {
		return errQueueStopped
	}
	select {
	case q.ch <- queuedEvent{e, compressed}:
		return nil
	case <-q.ctx.Done():
		return errQueueStopped
	}
}

// done gives back an event's bytes once the run has converted it.
func (q *eventQueue) done(e *replication.BinlogEvent) { q.bytes.Release(len(e.RawData)) }

// watch delivers the stream's error to next: with the events going
// through HandleEvent, go-mysql's GetEvent returns nothing but it.
func (q *eventQueue) watch(s *replication.BinlogStreamer) {
	go func() {
		_, err := s.GetEvent(q.ctx)
		q.errc <- err
	}()
}

// next returns the next event, or the stream's error once every event
// read before it has been returned.
func (q *eventQueue) next(ctx context.Context) (queuedEvent, error) {
	if q.err == nil {
		select {
		case e := <-q.ch:
			return e, nil
		case q.err = <-q.errc:
		case <-ctx.Done():
			return queuedEvent{}, ctx.Err()
		}
	}
	// The reader queued everything it read before its error.
	select {
	case e := <-q.ch:
		return e, nil
	default:
		return queuedEvent{}, q.err
	}
}
