package security

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
)

// handshakeTimeout bounds the first bytes and the TLS handshake of a
// connection a server accepted.
const handshakeTimeout = 10 * time.Second

// tlsRecordHandshake is the first byte of a TLS ClientHello.
const tlsRecordHandshake = 0x16

// serverCreds accept TLS (and plaintext unless strict) on a gRPC port.
type serverCreds struct {
	cfg    *tls.Config // nil: plaintext only
	strict bool        // TLS only
	what   string      // "THL" or "control", for the refusal
}

// plainInfo is the AuthInfo of a plaintext connection.
type plainInfo struct{ credentials.CommonAuthInfo }

func (plainInfo) AuthType() string { return "insecure" }

// peekedConn is a connection whose first bytes went through r.
type peekedConn struct {
	net.Conn
	r *bufio.Reader
}

func (p *peekedConn) Read(b []byte) (int, error) { return p.r.Read(b) }

func (s *serverCreds) ServerHandshake(raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	plain := credentials.CommonAuthInfo{SecurityLevel: credentials.NoSecurity}
	if s.cfg == nil {
		return raw, plainInfo{plain}, nil
	}
	_ = raw.SetDeadline(time.Now().Add(handshakeTimeout))
	defer raw.SetDeadline(time.Time{})
	r := bufio.NewReader(raw)
	first, err := r.Peek(1)
	if err != nil {
		return nil, nil, err
	}
	conn := &peekedConn{Conn: raw, r: r}
	if first[0] != tlsRecordHandshake {
		if s.strict {
			why := "thl-ssl=true here"
			if s.what == "control" {
				why = "control-tls-only=true here"
			}
			refusePlaintext(raw, r, fmt.Sprintf("this %s port takes TLS only (%s): set thl-ssl=true and the certificates on the client's install", s.what, why))
			return nil, nil, fmt.Errorf("plaintext client %s refused: this %s port takes TLS only", raw.RemoteAddr(), s.what)
		}
		return conn, plainInfo{plain}, nil
	}
	tc := tls.Server(conn, s.cfg)
	if err := tc.Handshake(); err != nil {
		return nil, nil, fmt.Errorf("TLS handshake with %s: %w", raw.RemoteAddr(), err)
	}
	return tc, credentials.TLSInfo{State: tc.ConnectionState(), CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: credentials.PrivacyAndIntegrity}}, nil
}

// refusePlaintext answers a plaintext client with msg: a gRPC client
// gets it as the status of its call (a trailers-only response to its
// first stream), anything else as a line of text. Then it closes.
func refusePlaintext(c net.Conn, r *bufio.Reader, msg string) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	// Byte by byte, so that a client sending less than a preface (nc)
	// is answered at once.
	for n := 1; n <= len(http2.ClientPreface); n++ {
		b, err := r.Peek(n)
		if err != nil || string(b) != http2.ClientPreface[:n] {
			_ = c.SetWriteDeadline(time.Now().Add(time.Second))
			fmt.Fprintf(c, "%s\n", msg)
			return
		}
	}
	_, _ = r.Discard(len(http2.ClientPreface))
	fr := http2.NewFramer(c, r)
	if err := fr.WriteSettings(); err != nil {
		return
	}
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			return
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				_ = fr.WriteSettingsAck()
			}
		case *http2.HeadersFrame:
			hb.Reset()
			for _, h := range [][2]string{{":status", "200"}, {"content-type", "application/grpc"},
				{"grpc-status", strconv.Itoa(int(codes.FailedPrecondition))}, {"grpc-message", encodeGRPCMessage(msg)}} {
				_ = enc.WriteField(hpack.HeaderField{Name: h[0], Value: h[1]})
			}
			_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: f.StreamID, BlockFragment: hb.Bytes(), EndStream: true, EndHeaders: true})
			_ = fr.WriteGoAway(f.StreamID, http2.ErrCodeNo, []byte(msg))
			// Let the client read the answer before the close.
			_ = c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
			_, _ = io.Copy(io.Discard, io.LimitReader(r, 1<<16))
			return
		}
	}
}

// encodeGRPCMessage percent-encodes a grpc-message value.
func encodeGRPCMessage(msg string) string {
	var b strings.Builder
	for i := 0; i < len(msg); i++ {
		ch := msg[i]
		if ch >= ' ' && ch <= '~' && ch != '%' {
			b.WriteByte(ch)
		} else {
			fmt.Fprintf(&b, "%%%02X", ch)
		}
	}
	return b.String()
}

func (s *serverCreds) ClientHandshake(context.Context, string, net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return nil, nil, errors.New("security: server credentials used by a client")
}

func (s *serverCreds) Info() credentials.ProtocolInfo {
	if s.cfg == nil {
		return credentials.ProtocolInfo{SecurityProtocol: "insecure"}
	}
	return credentials.ProtocolInfo{SecurityProtocol: "tls"}
}

func (s *serverCreds) Clone() credentials.TransportCredentials { n := *s; return &n }

func (s *serverCreds) OverrideServerName(string) error { return nil }

// ControlServerOptions are the options of a control gRPC server: TLS when
// SSL is on (plaintext too, for hosts still on the old settings, unless
// control-tls-only=true) and the token on every call.
func (c *Cluster) ControlServerOptions() []grpc.ServerOption {
	return c.serverOptions(c.controlStrict, "control")
}

// THLServerOptions are the options of a THL server: TLS only when SSL is
// on, and the token on every stream.
func (c *Cluster) THLServerOptions() []grpc.ServerOption {
	return c.serverOptions(true, "THL")
}

func (c *Cluster) serverOptions(strict bool, what string) []grpc.ServerOption {
	sc := &serverCreds{strict: strict, what: what}
	if c.SSL() {
		sc.cfg = c.ServerTLS()
	}
	return []grpc.ServerOption{grpc.Creds(sc), grpc.UnaryInterceptor(c.unaryAuth), grpc.StreamInterceptor(c.streamAuth),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: ServerKeepaliveTime, Timeout: KeepaliveTimeout}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: ClientKeepaliveTime / 2, PermitWithoutStream: true})}
}

// Keepalive of every connection between agents: an end pings the other
// after its keepalive time without traffic and drops the connection when
// no answer comes within KeepaliveTimeout. A peer that hangs (SIGSTOP, a
// frozen VM) or a cut network ends its streams within seconds instead of
// never (a Watch stream from a hung manager would keep a connector on a
// stale routing table). gRPC lets a client ping no more often than every
// 10 s; a server pings every 2 s.
const (
	ClientKeepaliveTime = 10 * time.Second
	ServerKeepaliveTime = 2 * time.Second
	KeepaliveTimeout    = 2 * time.Second
)

// Dialer dials TCP connections; nil is a default net.Dialer.
type Dialer func(ctx context.Context, addr string) (net.Conn, error)

// ControlDialOptions are the options of a control client: TLS first when
// SSL is on, plaintext when the server takes no TLS (a host not updated
// yet; never with control-tls-only=true), and the token. dial nil: a
// plain TCP dial.
func (c *Cluster) ControlDialOptions(dial Dialer) []grpc.DialOption {
	return c.dialOptions(dial, c.controlStrict, "control")
}

// THLDialOptions are the options of a THL client: TLS only when SSL is on,
// and a receive window wide enough for a WAN (THLWindow).
func (c *Cluster) THLDialOptions(dial Dialer) []grpc.DialOption {
	return append(c.dialOptions(dial, true, "THL"),
		grpc.WithInitialWindowSize(THLWindow), grpc.WithInitialConnWindowSize(THLWindow))
}

// THLWindow is a THL stream's HTTP/2 receive window. gRPC's default
// starts at 64 KiB and widens by estimating the bandwidth-delay product,
// which over a WAN takes many round trips: a backlog crossed 80 ms of
// round trip at half the rate of plain TCP (docs/benchmarks.md, WAN). A
// fixed window of 8 MiB covers 100 MB/s at 80 ms; it bounds what one
// stream holds unread in the client's memory.
const THLWindow = 8 << 20

// ControlTLSOnly reports whether the control ports take TLS only.
func (c *Cluster) ControlTLSOnly() bool { return c.SSL() && c.controlStrict }

func (c *Cluster) dialOptions(dial Dialer, strict bool, what string) []grpc.DialOption {
	if dial == nil {
		d := &net.Dialer{Timeout: 5 * time.Second}
		dial = func(ctx context.Context, addr string) (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) }
	}
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(tokenCreds(c.token)),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: ClientKeepaliveTime, Timeout: KeepaliveTimeout, PermitWithoutStream: true}),
		// A peer back from a partition or a restart is dialled again within
		// a second, not after gRPC's default back-off of up to two minutes.
		grpc.WithConnectParams(grpc.ConnectParams{MinConnectTimeout: 2 * time.Second,
			Backoff: backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second}}),
	}
	if c.SSL() {
		cfg := c.ClientTLS()
		opts = append(opts, grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			return dialTLS(ctx, dial, addr, cfg, strict, what)
		}))
	} else {
		opts = append(opts, grpc.WithContextDialer(dial))
	}
	return opts
}

// dialTLS connects with TLS; unless strict, a server that answers
// without TLS is dialed again in plaintext. what names the port ("THL",
// "control") in the refusal.
func dialTLS(ctx context.Context, dial Dialer, addr string, cfg *tls.Config, strict bool, what string) (net.Conn, error) {
	raw, err := dial(ctx, addr)
	if err != nil {
		return nil, err
	}
	tc := tls.Client(raw, cfg)
	hctx, cancel := context.WithTimeout(ctx, handshakeTimeout)
	defer cancel()
	err = tc.HandshakeContext(hctx)
	if err == nil {
		return tc, nil
	}
	raw.Close()
	var rh tls.RecordHeaderError
	if errors.As(err, &rh) {
		if strict {
			if what == "THL" {
				return nil, fmt.Errorf("the THL server at %s does not use TLS (thl-ssl is false there) while this install has thl-ssl=true", addr)
			}
			return nil, fmt.Errorf("the %s server at %s does not use TLS (thl-ssl is false there) while this install has control-tls-only=true; run tpm update with thl-ssl=true there first", what, addr)
		}
		return dial(ctx, addr)
	}
	return nil, fmt.Errorf("TLS with %s: %w", addr, err)
}
