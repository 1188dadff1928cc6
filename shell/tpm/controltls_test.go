package tpm

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
)

// selfSigned is a TLS server certificate for 127.0.0.1.
func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "control"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestProbeTLS: a port that answers TLS, a gRPC port on the old settings
// (plaintext) and a closed port are told apart.
func TestProbeTLS(t *testing.T) {
	tl, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{selfSigned(t)}})
	if err != nil {
		t.Fatal(err)
	}
	defer tl.Close()
	go func() {
		for {
			c, err := tl.Accept()
			if err != nil {
				return
			}
			go func() { c.(*tls.Conn).Handshake(); c.Close() }()
		}
	}()
	pl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	plain := grpc.NewServer()
	go plain.Serve(pl)
	defer plain.Stop()
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	closedAddr := closed.Addr().String()
	closed.Close()

	cfg := &tls.Config{InsecureSkipVerify: true}
	for addr, want := range map[string]string{tl.Addr().String(): answersTLS, pl.Addr().String(): answersPlain, closedAddr: answersNone} {
		if got := probeTLS(context.Background(), addr, cfg); got != want {
			t.Errorf("%s answers %q, want %q", addr, got, want)
		}
	}
}

// TestControlTLSAdvice: the step's sentence says whether control-tls-only
// may be set, and names the hosts that hold it back.
func TestControlTLSAdvice(t *testing.T) {
	ports := []controlPort{{"east1", "replicator", "127.0.1.1:10000"}, {"east1", "manager", "127.0.1.1:9997"}, {"east2", "replicator", "127.0.1.2:10000"}}
	all := []string{answersTLS, answersTLS, answersTLS}
	mixed := []string{answersTLS, answersTLS, answersPlain}
	for _, tc := range []struct {
		answers []string
		tlsOnly bool
		want    string
	}{
		{all, false, "all 3 of the ini's hosts answer TLS; to refuse plaintext control clients, set control-tls-only=true"},
		{all, true, "all 3 answer TLS, and control-tls-only=true: restart each host's manager"},
		{mixed, false, "2 of 3 answer TLS; not yet: east2 (replicator 127.0.1.2:10000: plaintext); set control-tls-only=true once"},
		{mixed, true, "control-tls-only=true here cannot reach the others: east2 (replicator 127.0.1.2:10000: plaintext)"},
	} {
		if got := controlTLSAdvice(ports, tc.answers, tc.tlsOnly); !strings.Contains(got, tc.want) {
			t.Errorf("%v %v: %q, want it to hold %q", tc.answers, tc.tlsOnly, got, tc.want)
		}
	}
}

// TestValidateControlTLSOnlyNeedsSSL: control-tls-only=true without
// thl-ssl=true is one sentence and exit 1.
func TestValidateControlTLSOnlyNeedsSSL(t *testing.T) {
	f := newFixture(t)
	f.editINI("[defaults]\n", "[defaults]\ncontrol-tls-only=true\n")
	r := f.run("validate", "--ini", f.ini)
	if r.code != ExitProblems || !strings.Contains(r.err, "control-tls-only=true (cluster install of east1) needs thl-ssl=true") {
		t.Fatalf("validate with control-tls-only and no SSL: want exit 1 and the reason:\n%s", r)
	}
}
