package extract

import (
	"testing"
	"time"
)

func TestWatchdog(t *testing.T) {
	w := watchdog{observed: make(chan struct{})}
	ticks := make(chan time.Time)
	done := make(chan struct{})
	stalled := make(chan struct{})
	go func() {
		w.watch(done, ticks, func() { close(stalled) })
	}()
	// Each tick returns once the watchdog has looked at the stream, so
	// the test's changes never race with its reads.
	tick := func(n int) {
		for range n {
			ticks <- time.Time{}
			<-w.observed
		}
	}
	// Blocked downstream (not waiting for an event): never a stall.
	tick(10)
	// Waiting, with events arriving: no stall.
	w.waiting.Store(true)
	for range 10 {
		w.events.Add(1)
		tick(1)
	}
	// Waiting through stallPeriods silent ticks: the stall fires.
	tick(stallPeriods - 1)
	select {
	case <-stalled:
		t.Fatal("stalled before stallPeriods silent ticks")
	default:
	}
	tick(1)
	<-stalled
	if !w.stalled.Load() {
		t.Error("stalled flag not set")
	}
	close(done)
}
