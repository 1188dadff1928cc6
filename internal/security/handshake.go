package security

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// A members-only stream (the managers' raft transport) opens with a
// mutual challenge: the client sends a magic and a nonce, the server its
// nonce and a MAC of both under the cluster key, the client its MAC.
// Neither side learns anything from a peer without the key, and nothing
// else is read from such a peer.
//
// With SSL on the stream is mutual TLS with the cluster's certificates
// first, and the challenge runs inside it: the challenge alone proves who
// opened a connection but does not bind what follows to it (a relay of a
// recorded handshake could go on to inject messages); TLS does. With SSL
// on a member takes TLS only, so members of one site restart onto SSL one
// at a time (the ones on the new settings form the quorum once they are
// most).

var magic = []byte("CRB1")

const nonceLen = 16

func (c *Cluster) mac(label string, nc, ns []byte) []byte {
	m := hmac.New(sha256.New, c.key)
	m.Write([]byte(label))
	m.Write(nc)
	m.Write(ns)
	return m.Sum(nil)
}

// GossipKey is the memberlist encryption key of a site's managers, from
// the same cluster key as the token and the handshakes.
func (c *Cluster) GossipKey(site string) []byte {
	return c.mac("gossip", []byte(site), nil)
}

// errBadPeer is the handshake's refusal.
var errBadPeer = errors.New("the peer does not hold this cluster's secret")

// memberProto is the ALPN protocol of a member stream over TLS.
const memberProto = "carbide-member"

// ClientMember opens a member stream on conn: TLS (SSL on), then the
// challenge; it returns the connection to use.
func (c *Cluster) ClientMember(conn net.Conn) (net.Conn, error) {
	if c.SSL() {
		cfg := c.ClientTLS()
		cfg.NextProtos = []string{memberProto}
		tc := tls.Client(conn, cfg)
		ctx, cancel := context.WithTimeout(context.Background(), handshakeTimeout)
		defer cancel()
		if err := tc.HandshakeContext(ctx); err != nil {
			return nil, fmt.Errorf("TLS with the member: %w", err)
		}
		conn = tc
	}
	if err := c.ClientHandshake(conn); err != nil {
		return nil, err
	}
	return conn, nil
}

// ServerMember accepts a member stream on conn: TLS (SSL on), then the
// challenge; it returns the connection to use.
func (c *Cluster) ServerMember(conn net.Conn) (net.Conn, error) {
	if c.SSL() {
		cfg := c.ServerTLS()
		cfg.NextProtos = []string{memberProto}
		tc := tls.Server(conn, cfg)
		ctx, cancel := context.WithTimeout(context.Background(), handshakeTimeout)
		defer cancel()
		if err := tc.HandshakeContext(ctx); err != nil {
			return nil, fmt.Errorf("TLS from the member (this cluster's members take TLS only): %w", err)
		}
		conn = tc
	}
	if err := c.ServerHandshake(conn); err != nil {
		return nil, err
	}
	return conn, nil
}

// ClientHandshake runs the client's side of the challenge on conn.
func (c *Cluster) ClientHandshake(conn net.Conn) error {
	_ = conn.SetDeadline(time.Now().Add(handshakeTimeout))
	defer conn.SetDeadline(time.Time{})
	nc := make([]byte, nonceLen)
	rand.Read(nc)
	if _, err := conn.Write(append(append([]byte{}, magic...), nc...)); err != nil {
		return err
	}
	buf := make([]byte, nonceLen+sha256.Size)
	if _, err := io.ReadFull(conn, buf); err != nil {
		return fmt.Errorf("%w (it closed the handshake: %v)", errBadPeer, err)
	}
	ns, sm := buf[:nonceLen], buf[nonceLen:]
	if !hmac.Equal(sm, c.mac("server", nc, ns)) {
		return errBadPeer
	}
	_, err := conn.Write(c.mac("client", nc, ns))
	return err
}

// ServerHandshake runs the server's side of the challenge on conn.
func (c *Cluster) ServerHandshake(conn net.Conn) error {
	_ = conn.SetDeadline(time.Now().Add(handshakeTimeout))
	defer conn.SetDeadline(time.Time{})
	m := make([]byte, len(magic))
	if _, err := io.ReadFull(conn, m); err != nil {
		return err
	}
	if string(m) != string(magic) {
		return errors.New("not a cluster member's connection (no handshake)")
	}
	nc := make([]byte, nonceLen)
	if _, err := io.ReadFull(conn, nc); err != nil {
		return err
	}
	ns := make([]byte, nonceLen)
	rand.Read(ns)
	if _, err := conn.Write(append(ns, c.mac("server", nc, ns)...)); err != nil {
		return err
	}
	cm := make([]byte, sha256.Size)
	if _, err := io.ReadFull(conn, cm); err != nil {
		return err
	}
	if !hmac.Equal(cm, c.mac("client", nc, ns)) {
		return errBadPeer
	}
	return nil
}

// Listener is l whose Accept returns only member streams that passed
// ServerMember (over TLS with SSL on); handshakes run concurrently, so a slow or hostile
// peer holds up nobody. refused, if not nil, hears of each refusal.
func (c *Cluster) Listener(l net.Listener, refused func(remote net.Addr, err error)) net.Listener {
	al := &authListener{Listener: l, conns: make(chan net.Conn), done: make(chan struct{})}
	go al.run(c, refused)
	return al
}

type authListener struct {
	net.Listener
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
	mu    sync.Mutex
	err   error // why the listener stopped, when not closed by Close
}

func (al *authListener) run(c *Cluster, refused func(net.Addr, error)) {
	for {
		conn, err := al.Listener.Accept()
		if err != nil {
			al.mu.Lock()
			al.err = err
			al.mu.Unlock()
			al.Close()
			return
		}
		go func() {
			member, err := c.ServerMember(conn)
			if err != nil {
				if refused != nil {
					refused(conn.RemoteAddr(), err)
				}
				conn.Close()
				return
			}
			select {
			case al.conns <- member:
			case <-al.done:
				member.Close()
			}
		}()
	}
}

func (al *authListener) Accept() (net.Conn, error) {
	select {
	case c := <-al.conns:
		return c, nil
	case <-al.done:
		al.mu.Lock()
		defer al.mu.Unlock()
		if al.err != nil {
			return nil, al.err
		}
		return nil, net.ErrClosed
	}
}

func (al *authListener) Close() error {
	var err error
	al.once.Do(func() {
		close(al.done)
		err = al.Listener.Close()
	})
	return err
}
