package security

import (
	"context"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// TestStreamFromHungPeerEnds: a server stream whose server stops
// answering (SIGSTOP, a frozen host: the TCP connection stays open, nothing
// comes back) ends on the client within the keepalive bounds instead of
// blocking forever, so a connector watching a hung manager moves on.
func TestStreamFromHungPeerEnds(t *testing.T) {
	sec := Insecure("secret")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(sec.ControlServerOptions()...)
	healthpb.RegisterHealthServer(srv, health.NewServer())
	go srv.Serve(l)
	defer srv.Stop()

	// A proxy between them that can freeze: it keeps both connections
	// open and passes nothing on.
	pl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pl.Close()
	var mu sync.Mutex
	frozen := false
	go func() {
		for {
			c, err := pl.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", l.Addr().String())
			if err != nil {
				c.Close()
				return
			}
			pipe := func(dst, src net.Conn) {
				buf := make([]byte, 32<<10)
				for {
					n, err := src.Read(buf)
					if err != nil {
						return
					}
					mu.Lock()
					f := frozen
					mu.Unlock()
					if !f {
						dst.Write(buf[:n])
					}
				}
			}
			go pipe(s, c)
			go pipe(c, s)
		}
	}()

	conn, err := grpc.NewClient(pl.Addr().String(), sec.ControlDialOptions(nil)...)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stream, err := healthpb.NewHealthClient(conn).Watch(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	frozen = true
	mu.Unlock()
	begin := time.Now()
	_, err = stream.Recv()
	took := time.Since(begin)
	if err == nil || err == io.EOF || ctx.Err() != nil {
		t.Fatalf("the stream from a hung server ended with %v after %v, want a transport error within %v", err, took, ClientKeepaliveTime+KeepaliveTimeout+time.Second)
	}
	if limit := ClientKeepaliveTime + KeepaliveTimeout + 2*time.Second; took > limit {
		t.Fatalf("the stream from a hung server ended after %v, want within %v", took, limit)
	}
	t.Logf("the stream from a hung server ended after %v: %v", took.Round(time.Millisecond), err)
}
