package netbind

import (
	"context"
	"net"
	"time"
)

// Dialer returns a dialer bound to local (nil: unbound).
func Dialer(local net.IP, timeout time.Duration) *net.Dialer {
	d := &net.Dialer{Timeout: timeout}
	if local != nil {
		d.LocalAddr = &net.TCPAddr{IP: local}
	}
	return d
}

// IP is addr as an IP when it is one (nil otherwise: unbound).
func IP(addr string) net.IP { return net.ParseIP(addr) }

// DialContext is a context dialer from local, for gRPC and MySQL.
func DialContext(local net.IP) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		return Dialer(local, 5*time.Second).DialContext(ctx, network, addr)
	}
}
