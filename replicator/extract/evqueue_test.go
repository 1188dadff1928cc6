package extract

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/replication"
)

func TestEventQueueBoundsBytes(t *testing.T) {
	q := newEventQueue(100, 1000)
	defer q.stop()
	ev := func(n int) *replication.BinlogEvent { return &replication.BinlogEvent{RawData: make([]byte, n)} }
	handled := make(chan error, 3)
	go func() {
		for _, n := range []int{600, 300, 200} {
			handled <- q.HandleEvent(ev(n))
		}
	}()
	for range 2 {
		if err := <-handled; err != nil {
			t.Fatal(err)
		}
	}
	select {
	case err := <-handled:
		t.Fatalf("a third event went past 1000 bytes held: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	first, err := q.next(context.Background())
	if err != nil || len(first.ev.RawData) != 600 {
		t.Fatalf("next = %v, %v", first, err)
	}
	q.done(first.ev)
	if err := <-handled; err != nil {
		t.Fatal(err)
	}

	// The stream's error comes after the events read before it.
	boom := errors.New("connection reset")
	q.errc <- boom
	for _, want := range []int{300, 200} {
		e, err := q.next(context.Background())
		if err != nil || len(e.ev.RawData) != want {
			t.Fatalf("next = %v, %v; want the %d-byte event", e, err, want)
		}
		q.done(e.ev)
	}
	if _, err := q.next(context.Background()); err != boom {
		t.Fatalf("next after the events = %v, want %v", err, boom)
	}

	// A reader waiting for room ends when the run stops.
	full := newEventQueue(1, 10)
	if err := full.HandleEvent(ev(5)); err != nil {
		t.Fatal(err)
	}
	go func() { handled <- full.HandleEvent(ev(5)) }()
	time.Sleep(20 * time.Millisecond)
	full.stop()
	if err := <-handled; err != errQueueStopped {
		t.Fatalf("HandleEvent after stop = %v", err)
	}
}
