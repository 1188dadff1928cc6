package wanlink

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/carbidedb/carbide/internal/testutil"
)

// pipePort is a port of whole frames over channels.
type pipePort struct {
	in  chan []byte // frames the link reads
	out chan []byte // frames the link wrote
}

func newPort() *pipePort {
	return &pipePort{in: make(chan []byte, 100000), out: make(chan []byte, 100000)}
}

func (p *pipePort) Read(b []byte) (int, error) {
	f, ok := <-p.in
	if !ok {
		return 0, errors.New("closed")
	}
	return copy(b, f), nil
}

func (p *pipePort) Write(b []byte) (int, error) {
	p.out <- append([]byte(nil), b...)
	return len(b), nil
}

// eth is a frame from src to dst (last MAC byte) carrying n.
func eth(dst, src byte, n uint32) []byte {
	f := make([]byte, 64)
	f[5], f[11] = dst, src
	if dst == 0xff {
		copy(f[0:6], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	}
	binary.BigEndian.PutUint32(f[14:], n)
	return f
}

func run(t *testing.T, l *Link, ports ...*pipePort) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		for _, p := range ports {
			close(p.in)
		}
		<-done
	})
}

// TestDelayAndOrder: every frame crosses after the delay minus the
// jitter at the soonest, and in the order sent, jitter or not.
func TestDelayAndOrder(t *testing.T) {
	a, b := newPort(), newPort()
	shape := Shape{Delay: 30 * time.Millisecond, Jitter: 10 * time.Millisecond}
	l := New(shape, a, b)
	run(t, l, a, b)
	sent := time.Now()
	const n = 2000
	for i := range uint32(n) {
		a.in <- eth(2, 1, i)
	}
	for i := range uint32(n) {
		select {
		case f := <-b.out:
			if got := binary.BigEndian.Uint32(f[14:]); got != i {
				t.Fatalf("frame %d arrived in place of %d", got, i)
			}
			if i == 0 {
				if d := time.Since(sent); d < shape.Delay-shape.Jitter {
					t.Errorf("the first frame crossed in %s, under the delay %s less the jitter", d, shape.Delay)
				}
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("frame %d did not cross", i)
		}
	}
	if c := l.Counters(); c.Frames != n || c.Lost != 0 {
		t.Errorf("counters %+v, want %d frames", c, n)
	}
}

// TestLoss: about the loss asked for is lost (well inside binomial
// bounds over 20,000 frames).
func TestLoss(t *testing.T) {
	a, b := newPort(), newPort()
	l := New(Shape{Loss: 0.1}, a, b)
	run(t, l, a, b)
	const n = 20000
	for i := range uint32(n) {
		a.in <- eth(2, 1, i)
	}
	testutil.Eventually(t, 10*time.Second, func() error {
		if c := l.Counters(); c.Frames+c.Lost+c.Overflow != n {
			return fmt.Errorf("%d frames crossed, %d were lost and %d overflowed of %d", c.Frames, c.Lost, c.Overflow, n)
		}
		return nil
	})
	if c := l.Counters(); c.Lost < 1700 || c.Lost > 2300 {
		t.Errorf("%d of %d frames lost, want about 2,000", c.Lost, n)
	}
}

// TestLearning: a frame to a MAC seen on one port goes there only; a
// broadcast or an unknown destination goes to every other port; nothing
// returns to the port it came from.
func TestLearning(t *testing.T) {
	a, b, c := newPort(), newPort(), newPort()
	l := New(Shape{}, a, b, c)
	run(t, l, a, b, c)
	b.in <- eth(0xff, 2, 1) // b's host 2 broadcasts: a and c get it
	for _, p := range []*pipePort{a, c} {
		select {
		case <-p.out:
		case <-time.After(5 * time.Second):
			t.Fatal("a broadcast did not reach every other port")
		}
	}
	a.in <- eth(2, 1, 2) // to host 2, learned on b
	select {
	case <-b.out:
	case <-time.After(5 * time.Second):
		t.Fatal("a frame to a learned MAC did not reach its port")
	}
	time.Sleep(50 * time.Millisecond)
	if len(c.out) != 0 || len(a.out) != 0 {
		t.Errorf("a frame to a learned MAC also went to %d other port(s)", len(c.out)+len(a.out))
	}
}

// TestParseShape: the sandbox's flags; bad ones get one sentence.
func TestParseShape(t *testing.T) {
	s, err := ParseShape("40ms", "5ms", "0.1%")
	if err != nil || s.Delay != 40*time.Millisecond || s.Jitter != 5*time.Millisecond || s.Loss != 0.001 {
		t.Errorf("ParseShape = %+v, %v", s, err)
	}
	if s.String() != "delay 40ms jitter 5ms loss 0.1%" {
		t.Errorf("String = %q", s.String())
	}
	for _, bad := range [][3]string{{"forty", "", ""}, {"-1ms", "", ""}, {"10ms", "20ms", ""}, {"", "", "100%"}, {"", "", "x%"}, {"", "", "-1"}} {
		if _, err := ParseShape(bad[0], bad[1], bad[2]); err == nil {
			t.Errorf("ParseShape%q succeeded", bad)
		}
	}
}

// TestTap: a TAP device exists while its file is open.
func TestTap(t *testing.T) {
	testutil.Require(t, os.Geteuid() == 0, "TAP devices need root")
	name := "cbtaptest"
	f, err := OpenTap(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := exec.Command("ip", "link", "show", name).Run(); err != nil {
		t.Errorf("ip link show %s: %v", name, err)
	}
	f.Close()
	if err := exec.Command("ip", "link", "show", name).Run(); err == nil {
		t.Errorf("%s outlived its file", name)
	}
}
