package security

import (
	"bytes"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// memberServer accepts member streams of c on 127.0.0.1 and collects
// what each accepted stream carries until it ends.
type memberServer struct {
	addr     string
	refused  chan error
	mu       sync.Mutex
	got      bytes.Buffer
	accepted chan struct{}
	ended    chan struct{}
}

func startMember(t *testing.T, c *Cluster) *memberServer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := &memberServer{addr: l.Addr().String(), refused: make(chan error, 8), accepted: make(chan struct{}, 8), ended: make(chan struct{}, 8)}
	al := c.Listener(l, func(_ net.Addr, err error) { m.refused <- err })
	t.Cleanup(func() { al.Close() })
	go func() {
		for {
			conn, err := al.Accept()
			if err != nil {
				return
			}
			m.accepted <- struct{}{}
			go func() {
				defer conn.Close()
				buf := make([]byte, 4096)
				for {
					n, err := conn.Read(buf)
					m.mu.Lock()
					m.got.Write(buf[:n])
					m.mu.Unlock()
					if err != nil {
						m.ended <- struct{}{}
						return
					}
				}
			}()
		}
	}()
	return m
}

func (m *memberServer) received() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.got.String()
}

// relay forwards a member's connection to the server; inject writes its
// own bytes into the server's side as if the member sent them: what an
// attacker between two members would do after relaying a handshake it
// cannot make itself.
func relay(t *testing.T, server string) (addr string, inject func([]byte)) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	var mu sync.Mutex
	var up net.Conn
	ready := make(chan struct{})
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		u, err := net.Dial("tcp", server)
		if err != nil {
			return
		}
		defer u.Close()
		mu.Lock()
		up = u
		mu.Unlock()
		close(ready)
		go io.Copy(c, u)
		buf := make([]byte, 4096)
		for {
			n, err := c.Read(buf)
			mu.Lock()
			u.Write(buf[:n])
			mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return l.Addr().String(), func(b []byte) {
		<-ready
		mu.Lock()
		defer mu.Unlock()
		up.Write(b)
	}
}

// TestMemberStreamInjection: a relay that passes a real member's
// handshake on and then writes its own bytes gets them read as the
// member's when SSL is off (the challenge proves who opened the stream,
// not what follows), and refused when SSL is on (TLS binds every byte to
// the handshake).
func TestMemberStreamInjection(t *testing.T) {
	const evil = "RAFT:appendEntries{term:99}"
	for _, tc := range []struct {
		name     string
		cluster  *Cluster
		injected bool
	}{
		{"SSL off", Insecure("secret"), true},
		{"SSL on", Insecure("secret").WithMaterial(testCA(t)), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := startMember(t, tc.cluster)
			addr, inject := relay(t, srv.addr)
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			m, err := tc.cluster.ClientMember(conn)
			if err != nil {
				t.Fatalf("the member's own handshake through the relay: %v", err)
			}
			// The handshake is done both ways (the server accepted the
			// stream): the relay writes first, then the member.
			select {
			case <-srv.accepted:
			case err := <-srv.refused:
				t.Fatalf("the server refused the member: %v", err)
			}
			inject([]byte(evil))
			if _, err := m.Write([]byte("hello")); err != nil {
				t.Fatal(err)
			}
			m.Close()
			select {
			case <-srv.ended:
			case <-time.After(5 * time.Second):
				t.Fatal("the server's stream did not end")
			}
			got := srv.received()
			if tc.injected && !strings.Contains(got, "hello") {
				t.Fatalf("the member's own bytes did not arrive: %q", got)
			}
			if strings.Contains(got, evil) != tc.injected {
				t.Fatalf("received %q; injected bytes taken: %v, want %v", got, strings.Contains(got, evil), tc.injected)
			}
		})
	}
}

// TestMemberStreamTLSOnly: with SSL on a member refuses a peer that
// speaks the challenge without TLS (an old member, a stranger), and a TLS
// peer whose certificate another CA signed.
func TestMemberStreamTLSOnly(t *testing.T) {
	c := Insecure("secret").WithMaterial(testCA(t))
	srv := startMember(t, c)
	conn, err := net.Dial("tcp", srv.addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Insecure("secret").ClientMember(conn); err == nil {
		t.Fatal("a plaintext member passed against an SSL member")
	}
	conn.Close()
	if err := <-srv.refused; err == nil || !strings.Contains(err.Error(), "take TLS only") {
		t.Fatalf("refusal %v", err)
	}
	conn, err = net.Dial("tcp", srv.addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Insecure("secret").WithMaterial(testCA(t)).ClientMember(conn); err == nil {
		t.Fatal("a member of another CA passed")
	}
	conn.Close()
	// And the other way: an SSL member dialing a plaintext one fails.
	plain := startMember(t, Insecure("secret"))
	conn, err = net.Dial("tcp", plain.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.ClientMember(conn); err == nil {
		t.Fatal("an SSL member took a plaintext peer")
	}
}
