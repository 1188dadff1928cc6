package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/carbidedb/carbide/internal/config"
)

// The fixtures were made by testdata/gen.sh with Java 17's keytool.
const fixturePassword = "secret"

func fixture(name string) string { return filepath.Join("testdata", name) }

func keystoreSettings(ks, ts string) config.Settings {
	st := config.DefaultSettings()
	st.THLSSL = true
	st.KeystorePath, st.KeystorePassword = ks, fixturePassword
	if ts != "" {
		st.TruststorePath, st.TruststorePassword = ts, fixturePassword
	}
	return st
}

// checkMaterial checks that the key is the leaf's and that Roots verify
// the leaf through the chain.
func checkMaterial(t *testing.T, m *Material) {
	t.Helper()
	leaf := m.Cert.Leaf
	if leaf == nil {
		t.Fatal("Material.Cert.Leaf is nil")
	}
	if !keyMatches(m.Cert.PrivateKey, leaf) {
		t.Fatal("the private key does not match the certificate")
	}
	inter := x509.NewCertPool()
	for _, der := range m.Cert.Certificate[1:] {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: m.Roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		t.Fatalf("Roots do not verify the certificate: %v", err)
	}
}

func TestLoadKeystores(t *testing.T) {
	for _, tc := range []struct {
		name, ks, ts string
		chain        int
	}{
		{"jks+jks", "keystore.jks", "truststore.jks", 2},
		{"p12+p12", "keystore.p12", "truststore.p12", 2},
		{"jks+p12", "keystore.jks", "truststore.p12", 2},
		{"p12+jks", "keystore.p12", "truststore.jks", 2},
		{"jks without truststore", "keystore.jks", "", 2},
		{"p12 without truststore", "keystore.p12", "", 2},
		{"self-signed jks", "selfsigned.jks", "", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := ""
			if tc.ts != "" {
				ts = fixture(tc.ts)
			}
			m, err := Load(keystoreSettings(fixture(tc.ks), ts))
			if err != nil {
				t.Fatal(err)
			}
			if len(m.Cert.Certificate) != tc.chain {
				t.Fatalf("chain of %d certificates, want %d", len(m.Cert.Certificate), tc.chain)
			}
			checkMaterial(t, m)
		})
	}
}

func TestTruststoreKeysStayLocked(t *testing.T) {
	// keypass.jks's key has its own password: as a truststore its
	// certificate counts, and its key is not opened.
	m, err := Load(keystoreSettings(fixture("selfsigned.jks"), fixture("keypass.jks")))
	if err != nil {
		t.Fatal(err)
	}
	if m.Roots == nil || m.Roots.Equal(x509.NewCertPool()) {
		t.Fatal("no roots from a truststore holding a private key entry")
	}
}

func TestLoadKeystoreTrustsOnlyItsCA(t *testing.T) {
	m, err := Load(keystoreSettings(fixture("keystore.jks"), fixture("truststore.jks")))
	if err != nil {
		t.Fatal(err)
	}
	other, err := Load(keystoreSettings(fixture("selfsigned.jks"), ""))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Cert.Leaf.Verify(x509.VerifyOptions{Roots: m.Roots}); err == nil {
		t.Fatal("the fixture CA's pool verifies a self-signed certificate")
	}
}

func TestLoadKeystoreTakesTheFirstKey(t *testing.T) {
	data, err := os.ReadFile(fixture("two.jks"))
	if err != nil {
		t.Fatal(err)
	}
	ks, err := decodeJKS(data, fixturePassword)
	if err != nil {
		t.Fatal(err)
	}
	if len(ks.keys) != 2 {
		t.Fatalf("%d key entries, want 2", len(ks.keys))
	}
	m, err := Load(keystoreSettings(fixture("two.jks"), ""))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := m.Cert.Leaf.Subject.CommonName, ks.keys[0].alias; got != want {
		t.Fatalf("Load took %q, want the first entry %q", got, want)
	}
	checkMaterial(t, m)
}

func TestJKSParsesKeytoolFile(t *testing.T) {
	data, err := os.ReadFile(fixture("keystore.jks"))
	if err != nil {
		t.Fatal(err)
	}
	ks, err := decodeJKS(data, fixturePassword)
	if err != nil {
		t.Fatal(err)
	}
	if len(ks.keys) != 1 || ks.keys[0].alias != "member" || len(ks.keys[0].chain) != 2 {
		t.Fatalf("keys %+v, want one entry member with a chain of 2", ks.keys)
	}
	if _, ok := ks.keys[0].key.(*rsa.PrivateKey); !ok {
		t.Fatalf("key is a %T, want RSA", ks.keys[0].key)
	}
	if got := ks.keys[0].chain[1].Subject.CommonName; got != "Fixture CA" {
		t.Fatalf("chain[1] is %q, want the fixture CA", got)
	}
	ts, err := os.ReadFile(fixture("truststore.jks"))
	if err != nil {
		t.Fatal(err)
	}
	tks, err := decodeJKS(ts, fixturePassword)
	if err != nil {
		t.Fatal(err)
	}
	if len(tks.keys) != 0 || len(tks.trusted) != 1 || tks.trusted[0].alias != "ca" {
		t.Fatalf("truststore: %d keys, trusted %+v; want one trusted entry ca", len(tks.keys), tks.trusted)
	}
}

func writeTemp(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func truncated(t *testing.T, name string, keep float64) string {
	t.Helper()
	data, err := os.ReadFile(fixture(name))
	if err != nil {
		t.Fatal(err)
	}
	return writeTemp(t, "torn-"+name, data[:int(float64(len(data))*keep)])
}

func TestLoadKeystoreErrors(t *testing.T) {
	const wrong = "Wr0ngPassw0rd"
	emptyJKS, err := encodeJKS(&jksStore{}, fixturePassword, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	emptyStore := writeTemp(t, "empty.jks", emptyJKS)
	pem := writeTemp(t, "cert.pem", []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"))
	junk := writeTemp(t, "junk.bin", []byte("\x01\x02not a keystore at all"))
	for _, tc := range []struct {
		name string
		edit func(*config.Settings)
		kind error // nil: no sentinel
		want []string
	}{
		{"missing keystore", func(s *config.Settings) { s.KeystorePath = "/nonexistent/keystore.jks" },
			nil, []string{"java-keystore-path /nonexistent/keystore.jks does not exist"}},
		{"missing truststore", func(s *config.Settings) { s.TruststorePath = "/nonexistent/truststore.ts" },
			nil, []string{"java-truststore-path /nonexistent/truststore.ts does not exist"}},
		{"no keystore password", func(s *config.Settings) { s.KeystorePassword = "" },
			nil, []string{"java-keystore-password is not set"}},
		{"wrong jks password", func(s *config.Settings) { s.KeystorePassword = wrong },
			ErrPassword, []string{"java-keystore-password does not open testdata/keystore.jks"}},
		{"wrong p12 password", func(s *config.Settings) { s.KeystorePath, s.KeystorePassword = fixture("keystore.p12"), wrong },
			ErrPassword, []string{"java-keystore-password does not open testdata/keystore.p12"}},
		{"wrong jks truststore password", func(s *config.Settings) { s.TruststorePassword = wrong },
			ErrPassword, []string{"java-truststore-password does not open testdata/truststore.jks"}},
		{"wrong p12 truststore password", func(s *config.Settings) { s.TruststorePath, s.TruststorePassword = fixture("truststore.p12"), wrong },
			ErrPassword, []string{"java-truststore-password does not open testdata/truststore.p12"}},
		{"key password differs", func(s *config.Settings) { s.KeystorePath = fixture("keypass.jks") },
			ErrPassword, []string{"testdata/keypass.jks", "key password", "keytool -keypasswd"}},
		{"jceks", func(s *config.Settings) { s.KeystorePath = fixture("store.jceks") },
			ErrFormat, []string{"JCEKS", "keytool -importkeystore", "-deststoretype pkcs12"}},
		{"jks truststore as keystore", func(s *config.Settings) { s.KeystorePath = fixture("truststore.jks") },
			ErrNoKey, []string{"testdata/truststore.jks holds no private key entry"}},
		{"p12 truststore as keystore", func(s *config.Settings) { s.KeystorePath = fixture("truststore.p12") },
			ErrNoKey, []string{"testdata/truststore.p12 holds no private key entry"}},
		{"no trusted certificate", func(s *config.Settings) { s.TruststorePath = emptyStore },
			ErrNoTrusted, []string{"empty.jks holds no trusted certificate entry"}},
		{"torn jks", func(s *config.Settings) { s.KeystorePath = truncated(t, "keystore.jks", 0.6) },
			ErrDamaged, []string{"torn-keystore.jks is truncated or damaged"}},
		{"jks without digest", func(s *config.Settings) { s.TruststorePath = truncated(t, "truststore.jks", 0.99) },
			ErrDamaged, []string{"torn-truststore.jks is truncated or damaged"}},
		{"torn p12", func(s *config.Settings) { s.KeystorePath = truncated(t, "keystore.p12", 0.6) },
			ErrDamaged, []string{"torn-keystore.p12"}},
		{"several keys in a p12", func(s *config.Settings) { s.KeystorePath = fixture("two.p12") },
			ErrNoKey, []string{"testdata/two.p12 holds several private keys", "-srcalias"}},
		{"pem", func(s *config.Settings) { s.KeystorePath = pem },
			ErrFormat, []string{"cert.pem holds PEM text", "ssl-cert"}},
		{"junk", func(s *config.Settings) { s.KeystorePath = junk },
			ErrFormat, []string{"junk.bin is neither a JKS nor a PKCS#12 keystore"}},
		{"truststore alone", func(s *config.Settings) { s.KeystorePath = "" },
			nil, []string{"java-truststore-path needs java-keystore-path"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := keystoreSettings(fixture("keystore.jks"), fixture("truststore.jks"))
			tc.edit(&st)
			m, err := Load(st)
			if err == nil {
				t.Fatalf("loaded %v, want an error", m)
			}
			msg := err.Error()
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not say %q", msg, w)
				}
			}
			if tc.kind != nil && !errors.Is(err, tc.kind) {
				t.Errorf("error %q is not %v", msg, tc.kind)
			}
			if strings.Contains(msg, wrong) || strings.Contains(msg, fixturePassword) {
				t.Errorf("error %q holds a password", msg)
			}
			if strings.Count(msg, "\n") > 0 || strings.Contains(msg, "pkcs12: pkcs12") {
				t.Errorf("error %q is not one sentence", msg)
			}
		})
	}
}

// issue makes a certificate for key, signed by parent (itself when nil).
func issue(t *testing.T, key crypto.Signer, cn string, ca bool, parent *x509.Certificate, parentKey crypto.Signer) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: ca, BasicConstraintsValid: true, DNSNames: []string{"localhost"},
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), parentKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestJKSWriterRoundTrip(t *testing.T) {
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	caCert := issue(t, rsaKey, "round-trip CA", true, nil, nil)
	leaf := issue(t, ecKey, "round-trip member", false, caCert, rsaKey)
	when := time.UnixMilli(1_700_000_000_123)
	in := &jksStore{
		keys:    []jksKey{{alias: "Tungsten", date: when, key: ecKey, chain: []*x509.Certificate{leaf, caCert}}},
		trusted: []jksCert{{alias: "ca", date: when, cert: caCert}},
	}
	data, err := encodeJKS(in, fixturePassword, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	out, err := decodeJKS(data, fixturePassword)
	if err != nil {
		t.Fatal(err)
	}
	if len(out.keys) != 1 || len(out.trusted) != 1 {
		t.Fatalf("read back %d keys and %d trusted entries, want 1 and 1", len(out.keys), len(out.trusted))
	}
	k := out.keys[0]
	if k.alias != "tungsten" || !k.date.Equal(when) || !ecKey.Equal(k.key) || len(k.chain) != 2 || !k.chain[0].Equal(leaf) || !k.chain[1].Equal(caCert) {
		t.Fatalf("key entry read back as %+v", k)
	}
	if c := out.trusted[0]; c.alias != "ca" || !c.cert.Equal(caCert) {
		t.Fatalf("trusted entry read back as %+v", c)
	}
	if _, err := decodeJKS(data, "not-"+fixturePassword); !errors.Is(err, ErrPassword) {
		t.Fatalf("wrong password: %v, want ErrPassword", err)
	}

	// Java reads it too: keytool lists both entries, and converting the
	// store to PKCS#12 recovers the private key (Java's KeyProtector).
	t.Run("keytool", func(t *testing.T) {
		keytool, err := exec.LookPath("keytool")
		if err != nil {
			t.Fatal("no keytool on this machine (Java's; make deps installs it): Java must read the keystores we write")
		}
		path := writeTemp(t, "ours.jks", data)
		list, err := exec.Command(keytool, "-list", "-keystore", path, "-storepass", fixturePassword).CombinedOutput()
		if err != nil {
			t.Fatalf("keytool -list: %v\n%s", err, list)
		}
		for _, w := range []string{"Keystore type: JKS", "tungsten, ", "PrivateKeyEntry", "ca, ", "trustedCertEntry"} {
			if !strings.Contains(string(list), w) {
				t.Errorf("keytool -list does not say %q:\n%s", w, list)
			}
		}
		p12 := filepath.Join(t.TempDir(), "converted.p12")
		conv, err := exec.Command(keytool, "-importkeystore", "-noprompt", "-srckeystore", path, "-srcstorepass", fixturePassword,
			"-srcalias", "tungsten", "-destkeystore", p12, "-deststoretype", "pkcs12", "-deststorepass", fixturePassword).CombinedOutput()
		if err != nil || strings.Contains(string(conv), "not imported") {
			t.Fatalf("keytool -importkeystore: %v\n%s", err, conv)
		}
		m, err := LoadKeystores(p12, fixturePassword, "", "")
		if err != nil {
			t.Fatal(err)
		}
		if !ecKey.Equal(m.Cert.PrivateKey) {
			t.Fatal("the key keytool recovered from our JKS is not the key we wrote")
		}
	})
}

func TestModifiedUTF8(t *testing.T) {
	for _, s := range []string{"", "tungsten", "a\x00b", "é", "東京", "emoji 😀"} {
		if got := decodeMUTF8(encodeMUTF8(s)); got != s {
			t.Errorf("%q came back as %q", s, got)
		}
	}
	if got := encodeMUTF8("\x00"); string(got) != "\xC0\x80" {
		t.Errorf("NUL encodes as % x, want c0 80", got)
	}
	if got := len(encodeMUTF8("😀")); got != 6 {
		t.Errorf("a supplementary character takes %d bytes, want 6 (two surrogates)", got)
	}
}
