package router

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

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

func onlineTo(addr string) Table {
	return Table{State: StateOnline, Primary: Target{Host: "db", Addr: addr}, ReadOnly: Target{Host: "db", Addr: addr}}
}

// waitActive waits until the proxy counts n active connections.
func waitActive(t *testing.T, p *Proxy, n int64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for p.Counters().Active != n {
		if time.Now().After(deadline) {
			t.Fatalf("active connections %d, want %d", p.Counters().Active, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestPumpEcho: many connections at once each send megabytes through the
// pump to an echo server and read them back, reading slowly so that the
// pump must keep what the client cannot take yet and pause the server;
// every byte comes back in order, the client's half-close reaches the
// server after the last byte, and the counters return to zero. (The event
// loops only: a pair that was in the kernel path ends at its first EOF.)
func TestPumpEcho(t *testing.T) {
	p, addr := startProxy(t, ProxyConfig{NoKernel: true})
	p.SetTable(onlineTo(echoServer(t, nil)))
	const conns, size = 20, 2 << 20
	var wg sync.WaitGroup
	for i := 0; i < conns; i++ {
		wg.Add(1)
		go func(slow bool) {
			defer wg.Done()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			hello := make([]byte, 5)
			if _, err := io.ReadFull(c, hello); err != nil {
				t.Error(err)
				return
			}
			data := make([]byte, size)
			rand.Read(data)
			go func() {
				c.Write(data)
				c.(*net.TCPConn).CloseWrite()
			}()
			h := sha256.New()
			buf := make([]byte, 4096)
			var n int
			for {
				k, err := c.Read(buf)
				h.Write(buf[:k])
				n += k
				if slow && n < size/4 {
					time.Sleep(time.Millisecond)
				}
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Error(err)
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
	if c := p.Counters(); c.Created != conns || c.PerHost["db"] != [2]int64{conns, 0} {
		t.Errorf("counters after %d connections: %+v", conns, c)
	}
}

// TestPumpServerSpeaksFirst: a server that greets and closes (as MySQL
// does when it refuses a client) is heard in full before the EOF, even
// when it closed before the client read anything.
func TestPumpServerSpeaksFirst(t *testing.T) {
	greet := bytes.Repeat([]byte("hello "), 50000)
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
			c.Write(greet)
			c.Close()
		}
	}()
	p, addr := startProxy(t, ProxyConfig{})
	p.SetTable(onlineTo(l.Addr().String()))
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	time.Sleep(50 * time.Millisecond) // the server has closed before the client reads
	got, err := io.ReadAll(c)
	if err != nil || !bytes.Equal(got, greet) {
		t.Fatalf("read %d bytes of %d, %v", len(got), len(greet), err)
	}
	c.Close() // the pair ends once both sides have
	waitActive(t, p, 0)
}

// TestPumpClose: a FAILED datasource's connections and every connection
// of a closed proxy end at once, whether idle or in the middle of a
// transfer the client stopped reading.
func TestPumpClose(t *testing.T) {
	p, addr := startProxy(t, ProxyConfig{})
	p.SetTable(onlineTo(echoServer(t, nil)))
	var cs []net.Conn
	for i := 0; i < 4; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		cs = append(cs, c)
	}
	// One stalls with data pending in both directions.
	go cs[0].Write(make([]byte, 8<<20))
	waitActive(t, p, 4)
	time.Sleep(100 * time.Millisecond)
	p.SetTable(Table{State: StateOnHold, Failed: map[string]bool{"db": true}})
	for i, c := range cs {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.Copy(io.Discard, c); err != nil {
			t.Errorf("connection %d: %v (want EOF or reset, not a timeout)", i, err)
		}
	}
	waitActive(t, p, 0)
}

// TestHoldThroughDeadTarget: a primary that does not answer (died, not yet
// failed over) holds the connection until a table names another; with no
// new table the client gets the connector's error once the hold ends.
func TestHoldThroughDeadTarget(t *testing.T) {
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.Addr().String()
	dead.Close()
	p, addr := startProxy(t, ProxyConfig{HoldTimeout: 2 * time.Second})
	p.SetTable(onlineTo(deadAddr))
	live := echoServer(t, nil)
	go func() { time.Sleep(300 * time.Millisecond); p.SetTable(onlineTo(live)) }()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 5)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "hello" {
		t.Fatalf("held connection after the new table: %q, %v", buf, err)
	}

	p2, addr2 := startProxy(t, ProxyConfig{HoldTimeout: 300 * time.Millisecond})
	p2.SetTable(onlineTo(deadAddr))
	c2, err := net.Dial("tcp", addr2)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	c2.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, _ := io.ReadAll(c2)
	if !bytes.Contains(got, []byte("cannot reach db")) {
		t.Fatalf("after the hold: %q, want the connector's error", got)
	}
}
