package budget

import (
	"context"
	"sync"
)

// A Bytes is a count of bytes held, at most its bound unless one holder
// alone holds more: one item always passes, however large, so an item
// larger than the bound still goes through (alone).
type Bytes struct {
	mu      sync.Mutex
	used    int
	max     int
	waiting bool
	wake    chan struct{} // closed by release when a reader waits
}

// New returns a budget of max bytes.
func New(max int) *Bytes {
	return &Bytes{max: max, wake: make(chan struct{})}
}

// Acquire waits until n more bytes fit, or nothing is held, or ctx ends.
func (b *Bytes) Acquire(ctx context.Context, n int) error {
	for {
		b.mu.Lock()
		if b.used == 0 || b.used+n <= b.max {
			b.used += n
			b.mu.Unlock()
			return nil
		}
		b.waiting = true
		wake := b.wake
		b.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Release gives back n bytes.
func (b *Bytes) Release(n int) {
	b.mu.Lock()
	b.used -= n
	if b.waiting {
		b.waiting = false
		close(b.wake)
		b.wake = make(chan struct{})
	}
	b.mu.Unlock()
}
