package datapath

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

// TestPumpEcho: many connections at once each send megabytes through the
// pump to an echo server and read them back, reading slowly so that the
// pump must keep what the client cannot take yet and pause the server;
// every byte comes back in order, the client's half-close reaches the
// server after the last byte, and the counters return to zero. (The event
// loops only: a pair that was in the kernel path ends at its first EOF.)
func TestPumpEcho(t *testing.T) {
	p, addr := startPath(t, Config{NoKernel: true})
	p.route(echoServer(t, nil))
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
	if c, a := p.created.Load(), p.active.Load(); c != conns || a != 0 {
		t.Errorf("after %d connections: %d created, %d active", conns, c, a)
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
	p, addr := startPath(t, Config{})
	p.route(l.Addr().String())
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
