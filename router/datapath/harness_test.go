package datapath

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testProxy is as much of package router's Proxy as these tests need: it
// accepts connections, connects each to the backend route named, reads
// the server's greeting, hands both to its Path and counts them.
type testProxy struct {
	*Path

	mu       sync.Mutex
	backend  string
	conduits []Conduit

	created, active atomic.Int64
}

// startPath serves a Path on a free loopback port; the test's end closes
// its connections and the Path, as router.Proxy's Close does.
func startPath(t *testing.T, cfg Config) (*testProxy, string) {
	t.Helper()
	p := &testProxy{Path: New(cfg)}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				p.handle(t, c)
			}()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		wg.Wait()
		p.mu.Lock()
		all := p.conduits
		p.mu.Unlock()
		for _, c := range all {
			c.Shutdown()
		}
		p.Close()
		// The next test (TestBPFObjects with -count) counts the BPF
		// files open before it.
		deadline := time.Now().Add(5 * time.Second)
		for p.kernel != nil && !p.kernel.released() && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
	})
	return p, l.Addr().String()
}

// route sends the connections accepted from now on to addr.
func (p *testProxy) route(addr string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.backend = addr
}

// handle connects client to the backend, reads the server's greeting and
// hands both to the Path, as router.Proxy does once it has routed a
// connection.
func (p *testProxy) handle(t *testing.T, client net.Conn) {
	p.mu.Lock()
	addr := p.backend
	p.mu.Unlock()
	server, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Errorf("connect to the backend: %v", err)
		client.Close()
		return
	}
	server.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 4096)
	n, err := server.Read(buf)
	if err != nil {
		t.Errorf("no greeting from the server: %v", err)
		client.Close()
		server.Close()
		return
	}
	server.SetReadDeadline(time.Time{})
	p.created.Add(1)
	p.active.Add(1)
	c, err := p.Add(client, server, buf[:n], func() { p.active.Add(-1) })
	if err != nil {
		t.Errorf("the data path did not take a connection: %v", err)
		client.Close()
		server.Close()
		p.active.Add(-1)
		return
	}
	p.mu.Lock()
	p.conduits = append(p.conduits, c)
	p.mu.Unlock()
}

// echoServer greets every connection (as a MySQL server does) with greet,
// "hello" when empty, then answers with what it reads, closing its side
// after the client's EOF.
func echoServer(t *testing.T, greet []byte) string {
	t.Helper()
	if len(greet) == 0 {
		greet = []byte("hello")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.Write(greet)
				io.Copy(c, c)
			}()
		}
	}()
	return l.Addr().String()
}

// waitActive waits until n connections are open through p.
func waitActive(t *testing.T, p *testProxy, n int64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for p.active.Load() != n {
		if time.Now().After(deadline) {
			t.Fatalf("active connections %d, want %d", p.active.Load(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// released tells whether the kernel path's watcher has closed its maps
// (it does so after Close has returned).
func (k *kernel) released() bool {
	k.bpf.mu.RLock()
	defer k.bpf.mu.RUnlock()
	return k.bpf.closed
}
