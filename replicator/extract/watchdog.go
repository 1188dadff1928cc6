package extract

import (
	"sync/atomic"
	"time"
)

// stallPeriods is how many heartbeat periods of silence, while Run waits
// for the next event, mean the stream is dead.
const stallPeriods = 4

// watchdog notices a silent binlog stream. go-mysql's own ReadTimeout
// sets a socket deadline for every packet, which costs more than decoding
// (measured: 3-4× slower extraction); instead Run counts events and marks
// when it waits for one, and the watchdog, ticking once per heartbeat
// period, fires when the count stood still through stallPeriods ticks of
// waiting. Waiting on send (downstream back pressure) never counts.
type watchdog struct {
	events  atomic.Uint64
	waiting atomic.Bool
	stalled atomic.Bool
	// observed, when set (tests), receives a value after each tick has
	// been looked at, so a test can step the watchdog deterministically.
	observed chan struct{}
}

// watch runs until done closes or the stream stalls, then calls stall
// once. It looks at the stream at every tick (one per heartbeat period).
func (w *watchdog) watch(done <-chan struct{}, ticks <-chan time.Time, stall func()) {
	last, silent := w.events.Load(), 0
	for {
		select {
		case <-done:
			return
		case <-ticks:
		}
		n := w.events.Load()
		switch {
		case n != last || !w.waiting.Load():
			last, silent = n, 0
		default:
			if silent++; silent >= stallPeriods {
				w.stalled.Store(true)
				stall()
				w.observe()
				return
			}
		}
		w.observe()
	}
}

func (w *watchdog) observe() {
	if w.observed != nil {
		w.observed <- struct{}{}
	}
}
