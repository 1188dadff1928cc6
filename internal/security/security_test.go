package security

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/carbidedb/carbide/internal/certs"
)

// testCA makes a CA and one member certificate signed by it.
func testCA(t *testing.T) *certs.Material {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "member"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(caCert)
	return &certs.Material{Cert: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, Roots: roots}
}

// serve starts a health server with opts on 127.0.0.1.
func serve(t *testing.T, opts []grpc.ServerOption) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer(opts...)
	healthpb.RegisterHealthServer(s, health.NewServer())
	go s.Serve(l)
	t.Cleanup(s.Stop)
	return l.Addr().String()
}

func call(t *testing.T, addr string, opts []grpc.DialOption) error {
	t.Helper()
	conn, err := grpc.NewClient(addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_, err = healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	return err
}

func TestToken(t *testing.T) {
	srv := Insecure("secret")
	addr := serve(t, srv.ControlServerOptions())
	if err := call(t, addr, Insecure("secret").ControlDialOptions(nil)); err != nil {
		t.Fatalf("member refused: %v", err)
	}
	err := call(t, addr, Insecure("other").ControlDialOptions(nil))
	if status.Code(err) != codes.Unauthenticated || !strings.Contains(err.Error(), "secret") {
		t.Fatalf("wrong secret: %v", err)
	}
	conn, _ := grpc.NewClient(addr, grpc.WithTransportCredentials(insecureCreds()))
	defer conn.Close()
	_, err = healthpb.NewHealthClient(conn).Check(context.Background(), &healthpb.HealthCheckRequest{})
	if status.Code(err) != codes.Unauthenticated {
		t.Fatalf("no token: %v", err)
	}
}

func TestControlTLS(t *testing.T) {
	m := testCA(t)
	tlsSide := Insecure("secret").WithMaterial(m)
	plain := Insecure("secret")
	tlsAddr := serve(t, tlsSide.ControlServerOptions())
	plainAddr := serve(t, plain.ControlServerOptions())
	for _, c := range []struct {
		name   string
		addr   string
		client *Cluster
	}{{"tls to tls", tlsAddr, tlsSide}, {"plaintext to tls (rolling change)", tlsAddr, plain}, {"tls to plaintext (falls back)", plainAddr, tlsSide}} {
		if err := call(t, c.addr, c.client.ControlDialOptions(nil)); err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
	}
	// A certificate from another CA is refused.
	stranger := Insecure("secret").WithMaterial(testCA(t))
	if err := call(t, tlsAddr, stranger.ControlDialOptions(nil)); err == nil {
		t.Error("a client with another CA's certificate was let in")
	}
}

// TestControlTLSOnly: with control-tls-only a control port refuses a
// plaintext client, saying why, and a control client does not fall back
// to a plaintext server; without it both still work (TestControlTLS).
func TestControlTLSOnly(t *testing.T) {
	m := testCA(t)
	strict := Insecure("secret").WithMaterial(m)
	strict.controlStrict = true
	plain := Insecure("secret")
	strictAddr := serve(t, strict.ControlServerOptions())
	plainAddr := serve(t, plain.ControlServerOptions())
	if !strict.ControlTLSOnly() || plain.ControlTLSOnly() {
		t.Fatal("ControlTLSOnly reports the wrong side")
	}
	if err := call(t, strictAddr, strict.ControlDialOptions(nil)); err != nil {
		t.Fatalf("tls to tls: %v", err)
	}
	if err := call(t, strictAddr, Insecure("secret").WithMaterial(m).ControlDialOptions(nil)); err != nil {
		t.Errorf("a TLS client without control-tls-only: %v", err)
	}
	err := call(t, strictAddr, plain.ControlDialOptions(nil))
	if err == nil || !strings.Contains(err.Error(), "this control port takes TLS only (control-tls-only=true here)") {
		t.Errorf("plaintext client against a TLS-only control port: %v", err)
	}
	err = call(t, plainAddr, strict.ControlDialOptions(nil))
	if err == nil || !strings.Contains(err.Error(), "control-tls-only=true") {
		t.Errorf("a control-tls-only client against a plaintext control port: %v", err)
	}
}

func TestTHLStrict(t *testing.T) {
	m := testCA(t)
	tlsSide := Insecure("secret").WithMaterial(m)
	plain := Insecure("secret")
	tlsAddr := serve(t, tlsSide.THLServerOptions())
	plainAddr := serve(t, plain.THLServerOptions())
	if err := call(t, tlsAddr, tlsSide.THLDialOptions(nil)); err != nil {
		t.Fatalf("tls to tls: %v", err)
	}
	err := call(t, tlsAddr, plain.THLDialOptions(nil))
	if err == nil || !strings.Contains(err.Error(), "takes TLS only") {
		t.Errorf("plaintext client against a TLS THL port: %v", err)
	}
	err = call(t, plainAddr, tlsSide.THLDialOptions(nil))
	if err == nil || !strings.Contains(err.Error(), "does not use TLS") {
		t.Errorf("TLS client against a plaintext THL port: %v", err)
	}
	stranger := Insecure("secret").WithMaterial(testCA(t))
	if err := call(t, tlsAddr, stranger.THLDialOptions(nil)); err == nil {
		t.Error("a client with another CA's certificate was let in")
	}
}

func TestHandshake(t *testing.T) {
	member := Insecure("secret")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := make(chan error, 4)
	al := member.Listener(l, func(_ net.Addr, err error) { refused <- err })
	defer al.Close()
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := al.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	dial := func() net.Conn {
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	// A client that says nothing holds up nobody.
	silent := dial()
	defer silent.Close()
	c := dial()
	if err := member.ClientHandshake(c); err != nil {
		t.Fatalf("member: %v", err)
	}
	select {
	case <-accepted:
	case <-time.After(3 * time.Second):
		t.Fatal("member not accepted")
	}
	c = dial()
	if err := Insecure("other").ClientHandshake(c); err == nil {
		t.Fatal("a client without the secret passed its handshake")
	}
	c.Close()
	if err := <-refused; err == nil {
		t.Fatal("no refusal")
	}
	garbage := dial()
	garbage.Write([]byte("GET / HTTP/1.0\r\n\r\n"))
	if err := <-refused; !strings.Contains(err.Error(), "no handshake") {
		t.Fatalf("garbage: %v", err)
	}
	select {
	case c := <-accepted:
		t.Fatalf("a stranger was accepted: %v", c.RemoteAddr())
	default:
	}
}

func insecureCreds() credentials.TransportCredentials { return insecure.NewCredentials() }

// TestTHLRawClient: something that is not gRPC at all (nc, a port
// scanner) gets the sentence as text and the connection closes.
func TestTHLRawClient(t *testing.T) {
	addr := serve(t, Insecure("secret").WithMaterial(testCA(t)).THLServerOptions())
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	c.Write([]byte("hello\n"))
	b, err := io.ReadAll(c)
	if err != nil || !strings.Contains(string(b), "takes TLS only") {
		t.Fatalf("raw client read %q, %v", b, err)
	}
}
