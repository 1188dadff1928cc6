package certs

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/carbidedb/carbide/internal/config"
)

var testHosts = []Host{{"east1", "10.0.0.1"}, {"east2", "db2.example.com"}, {"west1", "west1"}}

func generated(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "certs")
	if err := Generate(dir, testHosts, fixturePassword, GenerateOptions{}); err != nil {
		t.Fatal(err)
	}
	return dir
}

func pemSettings(dir string) config.Settings {
	st := config.DefaultSettings()
	st.SSLCert, st.SSLKey, st.SSLCA = filepath.Join(dir, CertFile), filepath.Join(dir, KeyFile), filepath.Join(dir, CAFile)
	return st
}

func storeSettings(dir string) config.Settings {
	return keystoreSettings(filepath.Join(dir, KeystoreFile), filepath.Join(dir, TruststoreFile))
}

func TestGenerate(t *testing.T) {
	dir := generated(t)
	if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("dir: %v, %v; want mode 0700", st.Mode(), err)
	}
	for _, name := range Files() {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		secret := strings.HasSuffix(name, ".key") || name == KeystoreFile
		if secret && st.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", name, st.Mode().Perm())
		}
	}
	pemM, err := Load(pemSettings(dir))
	if err != nil {
		t.Fatal(err)
	}
	jksM, err := Load(storeSettings(dir))
	if err != nil {
		t.Fatal(err)
	}
	checkMaterial(t, pemM)
	checkMaterial(t, jksM)
	if !pemM.Cert.Leaf.Equal(jksM.Cert.Leaf) {
		t.Fatal("the keystore and tungsten.pem hold different certificates")
	}
	leaf := jksM.Cert.Leaf
	for _, n := range []string{"east1", "east2", "db2.example.com", "west1", "localhost"} {
		if !slices.Contains(leaf.DNSNames, n) {
			t.Errorf("DNS names %v lack %s", leaf.DNSNames, n)
		}
	}
	for _, ip := range []string{"10.0.0.1", "127.0.0.1", "::1"} {
		if !slices.ContainsFunc(leaf.IPAddresses, net.ParseIP(ip).Equal) {
			t.Errorf("IP addresses %v lack %s", leaf.IPAddresses, ip)
		}
	}
	if got := len(leaf.DNSNames); got != 5 {
		t.Errorf("DNS names %v: want each name once", leaf.DNSNames)
	}
	ca, err := x509.ParseCertificate(jksM.Cert.Certificate[1])
	if err != nil {
		t.Fatal(err)
	}
	if ca.Subject.CommonName != CAName || !ca.IsCA {
		t.Errorf("chain[1] is %q (CA %v), want the CA %q", ca.Subject.CommonName, ca.IsCA, CAName)
	}
	if years := leaf.NotAfter.Sub(leaf.NotBefore).Hours() / 24 / 365.25; years < 9.99 || years > 10.01 {
		t.Errorf("valid for %.2f years, want 10", years)
	}
	if ca.SerialNumber.Cmp(leaf.SerialNumber) == 0 {
		t.Error("the CA and the member certificate share a serial number")
	}
	if keytool, err := exec.LookPath("keytool"); err == nil { // Java reads both stores
		for name, want := range map[string]string{KeystoreFile: "tungsten, ", TruststoreFile: "ca, "} {
			out, err := exec.Command(keytool, "-list", "-keystore", filepath.Join(dir, name), "-storepass", fixturePassword).CombinedOutput()
			if err != nil || !strings.Contains(string(out), want) {
				t.Errorf("keytool -list %s: %v\n%s", name, err, out)
			}
		}
	}
}

func TestGenerateRefusesToOverwrite(t *testing.T) {
	dir := generated(t)
	before, err := os.ReadFile(filepath.Join(dir, KeystoreFile))
	if err != nil {
		t.Fatal(err)
	}
	err = Generate(dir, testHosts, fixturePassword, GenerateOptions{})
	var ee *ExistsError
	if !errors.As(err, &ee) || !errors.Is(err, ErrExists) || len(ee.Files) != len(Files()) {
		t.Fatalf("second Generate: %v, want an ExistsError naming every file", err)
	}
	if !strings.Contains(err.Error(), dir+" already holds ca.pem, ca.key") {
		t.Errorf("error %q does not name the directory and the files", err)
	}
	after, _ := os.ReadFile(filepath.Join(dir, KeystoreFile))
	if !bytes.Equal(before, after) {
		t.Fatal("a refused Generate changed keystore.jks")
	}
	// One existing file is enough to refuse.
	other := filepath.Join(t.TempDir(), "other")
	if err := os.MkdirAll(other, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(other, TruststoreFile), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Generate(other, testHosts, fixturePassword, GenerateOptions{}); !errors.Is(err, ErrExists) {
		t.Fatalf("Generate over truststore.ts: %v, want ErrExists", err)
	}
	if _, err := os.Stat(filepath.Join(other, CAFile)); err == nil {
		t.Fatal("a refused Generate wrote ca.pem")
	}
	if err := Generate(dir, testHosts, fixturePassword, GenerateOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	after, _ = os.ReadFile(filepath.Join(dir, KeystoreFile))
	if bytes.Equal(before, after) {
		t.Fatal("a forced Generate left keystore.jks as it was")
	}
	if _, err := Load(storeSettings(dir)); err != nil {
		t.Fatal(err)
	}
}

func TestGenerateRefusesBadInput(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	for _, tc := range []struct {
		hosts    []Host
		password string
		want     string
	}{
		{nil, fixturePassword, "no hosts"},
		{testHosts, "pw123", "shorter than 6 characters"},
		{[]Host{{"", "10.0.0.1"}}, fixturePassword, "without a name"},
	} {
		err := Generate(dir, tc.hosts, tc.password, GenerateOptions{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Generate(%v, %q): %v, want %q", tc.hosts, tc.password, err, tc.want)
		}
		if strings.Contains(err.Error(), tc.password) {
			t.Errorf("error %q holds the password", err)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) > 0 {
		t.Fatalf("refused Generate calls wrote %d files", len(entries))
	}
}

// handshake runs a mutual TLS handshake over 127.0.0.1: the server
// presents server.Cert and requires a client certificate that
// server.Roots verify; the client presents client.Cert and verifies the
// server against clientRoots. It returns each side's error.
func handshake(t *testing.T, server, client *Material, clientRoots *Material) (serverErr, clientErr error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		s := tls.Server(c, &tls.Config{
			Certificates: []tls.Certificate{server.Cert},
			ClientCAs:    server.Roots,
			ClientAuth:   tls.RequireAndVerifyClientCert,
			MinVersion:   tls.VersionTLS12,
		})
		err = s.Handshake()
		if err == nil {
			_, err = s.Write([]byte("ok"))
		}
		done <- err
	}()
	dialer := &net.Dialer{Timeout: 10 * time.Second}
	conn, err := tls.DialWithDialer(dialer, "tcp", ln.Addr().String(), &tls.Config{
		Certificates: []tls.Certificate{client.Cert},
		RootCAs:      clientRoots.Roots,
		MinVersion:   tls.VersionTLS12,
	})
	if err == nil {
		// In TLS 1.3 the server checks the client's certificate after the
		// client's handshake is done: its verdict arrives with the data.
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		buf := make([]byte, 2)
		_, err = io.ReadFull(conn, buf)
		if err == nil && string(buf) != "ok" {
			err = errors.New("the server sent " + string(buf))
		}
		conn.Close()
	}
	return <-done, err
}

func TestGeneratedMaterialMutualTLS(t *testing.T) {
	dir := generated(t)
	server, err := Load(storeSettings(dir)) // keystore.jks, truststore.ts
	if err != nil {
		t.Fatal(err)
	}
	client, err := Load(pemSettings(dir)) // tungsten.pem, tungsten.key, ca.pem
	if err != nil {
		t.Fatal(err)
	}
	if serr, cerr := handshake(t, server, client, client); serr != nil || cerr != nil {
		t.Fatalf("members of one cluster: server %v, client %v; want a handshake", serr, cerr)
	}

	// A member of another cluster (another Generate) trusts our CA, but we
	// do not trust its certificate.
	foreign, err := Load(storeSettings(generated(t)))
	if err != nil {
		t.Fatal(err)
	}
	serr, cerr := handshake(t, server, foreign, client)
	if serr == nil || cerr == nil {
		t.Fatalf("a certificate of another CA: server %v, client %v; want both refused", serr, cerr)
	}
	if !strings.Contains(serr.Error(), "certificate") {
		t.Errorf("the server refused with %q, want a certificate error", serr)
	}
	// And the foreign member does not trust us either.
	if serr, cerr := handshake(t, server, foreign, foreign); serr == nil || cerr == nil {
		t.Fatalf("a client of another CA: server %v, client %v; want both refused", serr, cerr)
	}
}
