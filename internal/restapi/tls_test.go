package restapi

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
	"net/http"
	"strings"
	"testing"
	"time"
)

func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "member"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestServeTLS: with TLS configured (thl-ssl=true) the API answers over
// HTTPS, with the same authentication, and a plain HTTP request is told
// to use HTTPS.
func TestServeTLS(t *testing.T) {
	s, err := New(Config{Component: "manager", Addr: "127.0.0.1:0", User: "u", Password: "p",
		TLS: &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{selfSigned(t)}}})
	if err != nil {
		t.Fatal(err)
	}
	s.Handle(http.MethodGet, "status", "StatusPayload", func(*http.Request) (any, error) { return map[string]string{"state": "ONLINE"}, nil })
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.Serve(ctx, l)
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	get := func(url, user string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		if user != "" {
			req.SetBasicAuth(user, "p")
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	base := l.Addr().String() + "/api/v2/manager/status"
	if code, body := get("https://"+base, "u"); code != 200 || !strings.Contains(body, "ONLINE") {
		t.Fatalf("https: %d %s", code, body)
	}
	if code, _ := get("https://"+base, "x"); code != http.StatusUnauthorized {
		t.Fatalf("https with a wrong user: %d", code)
	}
	if code, body := get("http://"+base, "u"); code != http.StatusBadRequest || !strings.Contains(body, "HTTPS") {
		t.Fatalf("plain http against the TLS API: %d %q", code, body)
	}
}
