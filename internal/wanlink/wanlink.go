// Package wanlink is a wide-area link emulated in user space: it joins
// the ports given to it (TAP devices, one on each site's bridge) as a
// learning switch whose every crossing waits a delay (with jitter) and may
// lose the frame. It does what `tc qdisc add … netem delay D J loss P`
// does on a link, for kernels built without netem (this machine's:
// CONFIG_NET_SCH_NETEM is not set), and it never reorders frames: jitter
// moves a frame's due time, never ahead of the one before it.
//
// It is Ethernet in, Ethernet out: no routing, no forwarding between IP
// networks, no address translation.
//
// It imports only the standard library and golang.org/x/sys/unix.
package wanlink

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Shape is what a crossing of the link costs a frame.
type Shape struct {
	// Delay is the one-way delay of every crossing.
	Delay time.Duration
	// Jitter moves each frame's delay by up to ± Jitter (uniform), never
	// below zero and never ahead of the frame before it.
	Jitter time.Duration
	// Loss is the probability (0 to 1) that a crossing loses the frame.
	Loss float64
}

// ParseShape reads the sandbox's flags: delay and jitter as Go durations
// ("40ms"; empty is none), loss as a percentage ("0.1%") or a fraction.
func ParseShape(delay, jitter, loss string) (Shape, error) {
	var s Shape
	var err error
	if delay != "" {
		if s.Delay, err = time.ParseDuration(delay); err != nil || s.Delay < 0 || s.Delay > 10*time.Second {
			return s, fmt.Errorf("the WAN delay %q is not a duration from 0 to 10s (for example 40ms)", delay)
		}
	}
	if jitter != "" {
		if s.Jitter, err = time.ParseDuration(jitter); err != nil || s.Jitter < 0 || s.Jitter > s.Delay {
			return s, fmt.Errorf("the WAN jitter %q is not a duration from 0 to the delay (%s)", jitter, s.Delay)
		}
	}
	if loss != "" {
		v, pct := strings.CutSuffix(strings.TrimSpace(loss), "%")
		f, err := strconv.ParseFloat(v, 64)
		if pct {
			f /= 100
		}
		if err != nil || f < 0 || f >= 1 {
			return s, fmt.Errorf("the WAN loss %q is not a percentage from 0%% to below 100%% (for example 0.1%%)", loss)
		}
		s.Loss = f
	}
	return s, nil
}

// String is the shape as the sandbox's flags write it.
func (s Shape) String() string {
	return fmt.Sprintf("delay %s jitter %s loss %s%%", s.Delay, s.Jitter, strconv.FormatFloat(s.Loss*100, 'g', -1, 64))
}

// A Port is one end of the link: a device that reads and writes whole
// Ethernet frames, one per call.
type Port interface {
	io.ReadWriter
}

// Counters are what the link did, summed over its crossings.
type Counters struct {
	Frames   uint64 // delivered
	Lost     uint64 // lost on purpose (Shape.Loss)
	Overflow uint64 // dropped because a crossing's queue was full
	Errors   uint64 // writes that failed
}

// queueLen bounds the frames in flight on one crossing (a router's
// buffer): at 40 ms and 1500-byte frames, about 150 MB/s.
const queueLen = 4096

type frame struct {
	due  time.Time
	data []byte
}

// crossing is one direction between two ports.
type crossing struct {
	q       chan frame
	lastDue time.Time // only the source's reader touches it
}

// Link joins ports.
type Link struct {
	shape Shape
	ports []Port
	cross [][]*crossing // [from][to]

	mu   sync.Mutex
	macs map[[6]byte]int // source MAC → the port it was last seen on

	frames, lost, overflow, errs atomic.Uint64
	rng                          func() float64
}

// New joins ports with shape.
func New(shape Shape, ports ...Port) *Link {
	l := &Link{shape: shape, ports: ports, macs: map[[6]byte]int{}, rng: rand.Float64}
	l.cross = make([][]*crossing, len(ports))
	for i := range ports {
		l.cross[i] = make([]*crossing, len(ports))
		for j := range ports {
			if i != j {
				l.cross[i][j] = &crossing{q: make(chan frame, queueLen)}
			}
		}
	}
	return l
}

// Counters returns what the link has done so far.
func (l *Link) Counters() Counters {
	return Counters{Frames: l.frames.Load(), Lost: l.lost.Load(), Overflow: l.overflow.Load(), Errors: l.errs.Load()}
}

// Run carries frames until ctx ends or a port fails to read; closing the
// ports is the caller's (it unblocks their reads).
func (l *Link) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, len(l.ports))
	for i := range l.ports {
		for j := range l.ports {
			if c := l.cross[i][j]; c != nil {
				wg.Add(1)
				go func() { defer wg.Done(); l.deliver(ctx, c, l.ports[j]) }()
			}
		}
		go func() { errc <- l.read(ctx, i) }()
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	cancel()
	wg.Wait()
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

// read takes frames from port i and queues them on their crossings.
func (l *Link) read(ctx context.Context, i int) error {
	buf := make([]byte, 65536)
	for {
		n, err := l.ports[i].Read(buf)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("read port %d: %w", i, err)
		}
		if n < 14 {
			continue // not an Ethernet frame
		}
		now := time.Now()
		for _, j := range l.route(i, buf[:n]) {
			l.queue(i, j, buf[:n], now)
		}
	}
}

// route learns the frame's source and says which ports it goes to: the
// one its destination was last seen on, or all others.
func (l *Link) route(from int, f []byte) []int {
	var dst, src [6]byte
	copy(dst[:], f[0:6])
	copy(src[:], f[6:12])
	l.mu.Lock()
	defer l.mu.Unlock()
	if src[0]&1 == 0 {
		l.macs[src] = from
	}
	if to, ok := l.macs[dst]; ok && dst[0]&1 == 0 {
		if to == from {
			return nil
		}
		return []int{to}
	}
	out := make([]int, 0, len(l.ports)-1)
	for j := range l.ports {
		if j != from {
			out = append(out, j)
		}
	}
	return out
}

func (l *Link) queue(from, to int, f []byte, now time.Time) {
	if l.shape.Loss > 0 && l.rng() < l.shape.Loss {
		l.lost.Add(1)
		return
	}
	c := l.cross[from][to]
	d := l.shape.Delay
	if l.shape.Jitter > 0 {
		d += time.Duration((l.rng()*2 - 1) * float64(l.shape.Jitter))
	}
	due := now.Add(max(d, 0))
	if due.Before(c.lastDue) {
		due = c.lastDue
	}
	fr := frame{due: due, data: append([]byte(nil), f...)}
	select {
	case c.q <- fr:
		c.lastDue = due
	default:
		l.overflow.Add(1)
	}
}

// deliver writes a crossing's frames to port p when they are due.
func (l *Link) deliver(ctx context.Context, c *crossing, p Port) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		var fr frame
		select {
		case <-ctx.Done():
			return
		case fr = <-c.q:
		}
		if wait := time.Until(fr.due); wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
			}
		}
		if _, err := p.Write(fr.data); err != nil {
			l.errs.Add(1)
			continue
		}
		l.frames.Add(1)
	}
}
