package datapath

import (
	"bytes"
	"crypto/rand"
	"io"
	"net"
	"testing"
	"time"
)

// onlyPair returns the one pair in the kernel path, once kernel.add is
// done with it: the client gets the greeting, and may have its first
// answer, before add has registered the pair and checked its sockets
// (which a test that then changes the pair's maps would upset).
func onlyPair(t *testing.T, p *testProxy) *kpair {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		p.kernel.mu.Lock()
		n := len(p.kernel.pairs)
		var kp *kpair
		for _, kp = range p.kernel.pairs {
		}
		p.kernel.mu.Unlock()
		if n == 1 {
			time.Sleep(50 * time.Millisecond) // add's last checks
			return kp
		}
		if n > 1 || time.Now().After(deadline) {
			t.Fatalf("%d pairs in the kernel path, want 1", n)
		}
		time.Sleep(time.Millisecond)
	}
}

// echoes writes n random bytes on c and checks that they come back whole
// and in order within limit; it returns how long that took.
func echoes(t *testing.T, c net.Conn, n int, limit time.Duration) time.Duration {
	t.Helper()
	data := make([]byte, n)
	rand.Read(data)
	start := time.Now()
	go c.Write(data)
	got := make([]byte, n)
	c.SetReadDeadline(time.Now().Add(limit))
	if k, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("echo of %d bytes: read %d, %v, equal %v", n, k, err, bytes.Equal(got, data))
	}
	return time.Since(start)
}

// TestKernelStall: a flow whose bytes the kernel stops moving (here the
// program no longer finds the pair's flows, as when it is not run on a
// socket's packets: they stay on the connector's end) is detected after
// kernelStallAfter; the pair moves to the event loops, which pass every
// byte on in order, and the move is counted once in the stalls metric.
// A flow held for want of credit (the watcher's design) moves out as
// paused and is not counted as a stall.
func TestKernelStall(t *testing.T) {
	p, addr := kernelProxy(t)
	p.route(echoServer(t, nil))
	c := greeted(t, addr)
	if c == nil {
		t.FailNow()
	}
	defer c.Close()
	echoes(t, c, 1000, 5*time.Second) // in the kernel
	kp := onlyPair(t, p)
	p.kernel.bpf.forget(kp.keys)
	took := echoes(t, c, 300<<10, 10*time.Second)
	if took < kernelStallAfter {
		t.Errorf("the stalled bytes came back after %v, before the stall could be seen", took)
	}
	if n := p.Stalls(); n != 1 {
		t.Errorf("%d stalls counted, want 1", n)
	}
	if n := p.kernel.paused.Load(); n != 0 {
		t.Errorf("%d pairs counted as paused, want 0", n)
	}
	for i := 0; i < 20; i++ { // in the event loops now
		echoes(t, c, 1+i*997, 5*time.Second)
	}
	c.Close()
	waitActive(t, p, 0)

	// Credit withheld: the flow pauses and leaves as paused.
	c = greeted(t, addr)
	if c == nil {
		t.FailNow()
	}
	defer c.Close()
	echoes(t, c, 1000, 5*time.Second)
	kp = onlyPair(t, p)
	kp.mu.Lock()
	leaving := kp.leaving
	kp.mu.Unlock()
	if leaving {
		t.Fatalf("a new pair left the kernel path before its credit was withheld")
	}
	f, err := p.kernel.flow(kp.slot << 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.kernel.grant(kp.slot<<1, f.Used); err != nil {
		t.Fatal(err)
	}
	echoes(t, c, 300<<10, 10*time.Second)
	if n := p.kernel.paused.Load(); n != 1 {
		t.Errorf("%d pairs counted as paused, want 1", n)
	}
	if n := p.Stalls(); n != 1 {
		t.Errorf("%d stalls counted after a paused flow, want still 1", n)
	}
}

// TestKernelReaderStops: a client that stops reading for a second, with
// an answer in the kernel within its credit, holds bytes on purpose: the
// pair stays in the kernel path, no stall is counted, and the answer
// comes whole once it reads.
func TestKernelReaderStops(t *testing.T) {
	p, addr := kernelProxy(t)
	p.route(echoServer(t, nil))
	c := greeted(t, addr)
	if c == nil {
		t.FailNow()
	}
	defer c.Close()
	data := make([]byte, 3*kernelWindow/4)
	rand.Read(data)
	go c.Write(data)
	time.Sleep(time.Second)
	got := make([]byte, len(data))
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if k, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read %d of %d bytes, %v, equal %v", k, len(data), err, bytes.Equal(got, data))
	}
	kp := onlyPair(t, p)
	kp.mu.Lock()
	leaving := kp.leaving
	kp.mu.Unlock()
	if n := p.Stalls(); n != 0 || leaving || p.kernel.paused.Load() != 0 {
		t.Errorf("a reader that stopped for a second: %d stalls, left the kernel path %v, %d paused", n, leaving, p.kernel.paused.Load())
	}
}
