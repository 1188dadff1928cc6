package datapath

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// kernelProxy starts a proxy with the kernel path and fails the test when
// it is not available (it is on this project's machines: root, kernel 6).
func kernelProxy(t *testing.T) (*testProxy, string) {
	t.Helper()
	t.Setenv("CARBIDE_CONNECTOR_KERNEL", "")
	p, addr := startPath(t, Config{})
	if p.kernel == nil {
		t.Fatalf("the kernel path is not available: %v", p.kernelErr)
	}
	return p, addr
}

// greeted connects to addr and reads the echo server's greeting ("hello");
// nil after reporting an error.
func greeted(t *testing.T, addr string) net.Conn {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Error(err)
		return nil
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	hello := make([]byte, 5)
	if _, err := io.ReadFull(c, hello); err != nil {
		t.Errorf("greeting: %v", err)
		c.Close()
		return nil
	}
	return c
}

// TestKernelQueries: request-and-answer traffic stays in the kernel path
// (no pair leaves it), every answer is exact, and the bytes are counted.
func TestKernelQueries(t *testing.T) {
	p, addr := kernelProxy(t)
	p.route(echoServer(t, nil))
	const conns, rounds = 4, 500
	var wg sync.WaitGroup
	var sent uint64
	var mu sync.Mutex
	release := make(chan struct{})
	closed := make(chan struct{}, conns)
	for i := 0; i < conns; i++ {
		wg.Add(1)
		go func() {
			defer func() { closed <- struct{}{} }()
			c := greeted(t, addr)
			if c == nil {
				wg.Done()
				return
			}
			defer c.Close()
			defer func() { wg.Done(); <-release }()
			for r := 0; r < rounds; r++ {
				q := make([]byte, 20+r%200)
				rand.Read(q)
				c.Write(q)
				got := make([]byte, len(q))
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, q) {
					t.Errorf("round %d: %v, equal %v", r, err, bytes.Equal(got, q))
					return
				}
				mu.Lock()
				sent += uint64(len(q))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	// The watcher reads every flow in one call.
	keys, vals := make([]uint32, 2*conns), make([]flow, 2*conns)
	if n, err := p.kernel.bpf.lookupFlows(keys, vals); err != nil || n != 2*conns {
		t.Errorf("batch lookup of %d flows: %d, %v", 2*conns, n, err)
	}
	var used uint64
	for _, f := range vals {
		used += f.Used
	}
	if used != 2*sent {
		t.Errorf("the flows count %d bytes, want %d", used, 2*sent)
	}
	if n := p.kernel.paused.Load(); n != 0 {
		t.Errorf("%d pairs left the kernel path for want of credit", n)
	}
	if n := p.Stalls(); n != 0 {
		t.Errorf("%d pairs counted as stalled", n)
	}
	b := p.Bytes()
	if b.FromClients != sent || b.FromServers != sent+5*conns {
		t.Errorf("bytes %+v, want %d from clients and %d from servers", b, sent, sent+5*conns)
	}
	close(release)
	for i := 0; i < conns; i++ {
		<-closed
	}
	waitActive(t, p, 0)
}

// TestKernelBulk: connections that each send megabytes and read the echo
// at once, half of them only after a pause, move to the event loops when
// their credit runs out (the kernel keeps no more than its window for
// them); every byte comes back in order, and each pair closes once the
// client does.
func TestKernelBulk(t *testing.T) {
	p, addr := kernelProxy(t)
	p.route(echoServer(t, nil))
	const conns, size = 12, 8 << 20
	var wg sync.WaitGroup
	for i := 0; i < conns; i++ {
		wg.Add(1)
		go func(slow bool) {
			defer wg.Done()
			c := greeted(t, addr)
			if c == nil {
				return
			}
			defer c.Close()
			data := make([]byte, size)
			rand.Read(data)
			go c.Write(data)
			if slow {
				time.Sleep(300 * time.Millisecond)
			}
			h := sha256.New()
			buf := make([]byte, 64<<10)
			n := 0
			c.SetReadDeadline(time.Now().Add(30 * time.Second))
			for n < size {
				k, err := c.Read(buf)
				h.Write(buf[:k])
				n += k
				if err != nil {
					t.Errorf("after %d bytes: %v", n, err)
					return
				}
			}
			if want := sha256.Sum256(data); n != size || !bytes.Equal(h.Sum(nil), want[:]) {
				t.Errorf("echoed %d bytes of %d, same=%v", n, size, bytes.Equal(h.Sum(nil), want[:]))
			}
		}(i%2 == 0)
	}
	wg.Wait()
	waitActive(t, p, 0)
	if n := p.kernel.paused.Load(); n == 0 {
		t.Errorf("no bulk pair left the kernel path")
	}
	if n := p.Stalls(); n != 0 {
		t.Errorf("%d bulk pairs (half of them read late) counted as stalled", n)
	}
	if b := p.Bytes(); b.FromClients != conns*size || b.FromServers != conns*(size+5) {
		t.Errorf("bytes %+v, want %d from clients and %d from servers", b, conns*size, conns*(size+5))
	}
}

// TestKernelServerEndsAfterAnswer: a server that answers with megabytes
// and closes (a KILL, a shutdown) is heard in full by a client that reads
// slowly, then the client sees the end; so is one that answers a little
// and closes (the answer stays in the kernel path until the end).
func TestKernelServerEndsAfterAnswer(t *testing.T) {
	for _, size := range []int{100, 3 << 20} {
		answer := make([]byte, size)
		rand.Read(answer)
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				go func() {
					c.Write([]byte("hello"))
					q := make([]byte, 4)
					io.ReadFull(c, q)
					c.Write(answer)
					c.Close()
				}()
			}
		}()
		p, addr := kernelProxy(t)
		p.route(l.Addr().String())
		var wg sync.WaitGroup
		for i := 0; i < 4; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c := greeted(t, addr)
				if c == nil {
					return
				}
				defer c.Close()
				c.Write([]byte("kill"))
				time.Sleep(50 * time.Millisecond) // the server has closed
				var got []byte
				buf := make([]byte, 8192)
				c.SetReadDeadline(time.Now().Add(30 * time.Second))
				for {
					n, err := c.Read(buf)
					got = append(got, buf[:n]...)
					if len(got) < size/8 {
						time.Sleep(time.Millisecond)
					}
					if err == io.EOF {
						break
					}
					if err != nil {
						t.Errorf("size %d: after %d bytes: %v", size, len(got), err)
						return
					}
				}
				if !bytes.Equal(got, answer) {
					t.Errorf("size %d: read %d bytes, equal %v", size, len(got), bytes.Equal(got, answer))
				}
			}()
		}
		wg.Wait()
		waitActive(t, p, 0)
		if n := p.Stalls(); n != 0 {
			t.Errorf("size %d: %d pairs of slow readers counted as stalled", size, n)
		}
	}
}

// TestKernelOff: CARBIDE_CONNECTOR_KERNEL=off keeps the event loops only,
// and says so; a value that is neither on nor off is refused with one
// sentence (package router's TestKernelOff: before the connector opens
// its install).
func TestKernelOff(t *testing.T) {
	for _, v := range []string{"off", "False", "no", "0"} {
		t.Setenv("CARBIDE_CONNECTOR_KERNEL", v)
		if on, err := kernelSetting(); on || err != nil {
			t.Errorf("CARBIDE_CONNECTOR_KERNEL=%s: on %v, %v", v, on, err)
		}
	}
	for _, v := range []string{"", "on", "Auto", "1"} {
		t.Setenv("CARBIDE_CONNECTOR_KERNEL", v)
		if on, err := kernelSetting(); !on || err != nil {
			t.Errorf("CARBIDE_CONNECTOR_KERNEL=%s: on %v, %v", v, on, err)
		}
	}
	t.Setenv("CARBIDE_CONNECTOR_KERNEL", "maybe")
	if err := CheckEnv(); err == nil || err.Error() != `CARBIDE_CONNECTOR_KERNEL is "maybe": use on or off` {
		t.Errorf("CheckEnv with CARBIDE_CONNECTOR_KERNEL=maybe: %v", err)
	}
	t.Setenv("CARBIDE_CONNECTOR_KERNEL", "off")
	p, addr := startPath(t, Config{})
	if p.kernel != nil || !strings.Contains(fmt.Sprint(p.kernelErr), "CARBIDE_CONNECTOR_KERNEL=off") {
		t.Fatalf("kernel path %v with CARBIDE_CONNECTOR_KERNEL=off (why: %v)", p.kernel != nil, p.kernelErr)
	}
	p.route(echoServer(t, nil))
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	hello := make([]byte, 5)
	if _, err := io.ReadFull(c, hello); err != nil || string(hello) != "hello" {
		t.Fatalf("%q %v", hello, err)
	}
}

// TestKernelChurn: thousands of short connections (connect, one query,
// close; 8 at a time) leave nothing behind: slots are reused, no pair
// stays in the kernel, and the process has as many open files as before.
func TestKernelChurn(t *testing.T) {
	p, addr := kernelProxy(t)
	p.route(echoServer(t, nil))
	// Sockets and anonymous inodes (epoll, eventfd, BPF maps): the echo
	// server's splice pipes are Go's to cache.
	fds := func() int {
		ents, _ := os.ReadDir("/proc/self/fd")
		n := 0
		for _, e := range ents {
			l, _ := os.Readlink("/proc/self/fd/" + e.Name())
			if strings.HasPrefix(l, "socket:") || strings.HasPrefix(l, "anon_inode:") {
				n++
			}
		}
		return n
	}
	before := fds()
	const conns, parallel = 2000, 8
	var wg sync.WaitGroup
	work := make(chan int)
	for w := 0; w < parallel; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range work {
				c := greeted(t, addr)
				if c == nil {
					return
				}
				buf := make([]byte, 5)
				c.Write([]byte("ping!"))
				if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping!" {
					t.Errorf("%q %v", buf, err)
				}
				c.Close()
			}
		}()
	}
	for i := 0; i < conns; i++ {
		work <- i
	}
	close(work)
	wg.Wait()
	waitActive(t, p, 0)
	p.kernel.mu.Lock()
	slots, inKernel := p.kernel.next, len(p.kernel.pairs)
	p.kernel.mu.Unlock()
	if slots > conns/4 || inKernel != 0 {
		t.Errorf("after %d connections: %d slots handed out, %d pairs still in the kernel", conns, slots, inKernel)
	}
	// The echo server's ends close once they read their EOF.
	deadline := time.Now().Add(5 * time.Second)
	for fds() > before+2*parallel && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if after := fds(); after > before+2*parallel {
		t.Errorf("open files: %d before, %d after %d connections", before, after, conns)
	}
	if c := p.created.Load(); c != conns {
		t.Errorf("created %d, want %d", c, conns)
	}
}
