package manager

import (
	"context"
	"net"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/raft"
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
}

func (s *streamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return dialer(s.local, timeout).Dial("tcp", string(address))
}

func (s *streamLayer) Addr() net.Addr { return s.advertise }

// dialContext is a context dialer from local, for gRPC and MySQL.
func dialContext(local net.IP) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		return dialer(local, 5*time.Second).DialContext(ctx, network, addr)
	}
}
