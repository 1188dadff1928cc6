package manager

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/raft"

	"github.com/carbidedb/carbide/internal/security"
)

// Every connection a manager opens leaves from its host's own address, so
// that (in a sandbox of loopback addresses, as on a real network) what
// reaches a peer comes from this host and a partition of the host cuts
// all of it.

// dialer returns a dialer bound to local (nil: unbound).
func dialer(local net.IP, timeout time.Duration) *net.Dialer {
	d := &net.Dialer{Timeout: timeout}
	if local != nil {
		d.LocalAddr = &net.TCPAddr{IP: local}
	}
	return d
}

// localIP is addr as an IP when it is one.
func localIP(addr string) net.IP { return net.ParseIP(addr) }

// boundTransport is memberlist's network transport dialing from local.
type boundTransport struct {
	*memberlist.NetTransport
	local net.IP
}

func (t *boundTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return dialer(t.local, timeout).Dial("tcp", addr)
}

func (t *boundTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	return t.DialTimeout(a.Addr, timeout)
}

// streamLayer is raft's TCP stream layer dialing from local.
type streamLayer struct {
	net.Listener
	advertise net.Addr
	local     net.IP
	sec       *security.Cluster // the handshake proving membership
}

func (s *streamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	c, err := dialer(s.local, timeout).Dial("tcp", string(address))
	if err != nil {
		return nil, err
	}
	if err := s.sec.ClientHandshake(c); err != nil {
		c.Close()
		return nil, fmt.Errorf("raft peer %s: %w", address, err)
	}
	return c, nil
}

func (s *streamLayer) Addr() net.Addr { return s.advertise }

// dialContext is a context dialer from local, for gRPC and MySQL.
func dialContext(local net.IP) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		return dialer(local, 5*time.Second).DialContext(ctx, network, addr)
	}
}

// refusedPeer logs a connection to the raft port that failed the
// membership handshake.
func (a *Agent) refusedPeer(remote net.Addr, err error) {
	a.log.Warn("raft: refused a connection", "remote", remote.String(), "error", err)
}
