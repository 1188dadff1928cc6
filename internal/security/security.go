package security

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/carbidedb/carbide/internal/certs"
	"github.com/carbidedb/carbide/internal/config"
)

// Cluster is what one install needs to secure its connections.
type Cluster struct {
	key   []byte // HMAC key of the handshakes
	token string // sent with every RPC
	mat   *certs.Material
	// controlStrict: the control ports take TLS only and control clients
	// never fall back to plaintext (control-tls-only=true).
	controlStrict bool
}

// New builds the security of an install from its settings, loading the
// certificates when thl-ssl is on.
func New(st config.Settings) (*Cluster, error) {
	c := Insecure(st.ReplicationPassword)
	if !st.THLSSL {
		return c, nil
	}
	m, err := certs.Load(st)
	if err != nil {
		return nil, err
	}
	c.mat = m
	c.controlStrict = st.ControlTLSOnly
	return c, nil
}

// Insecure is security without TLS for the given secret.
func Insecure(secret string) *Cluster {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte("carbide cluster secret v1"))
	key := mac.Sum(nil)
	mac = hmac.New(sha256.New, key)
	mac.Write([]byte("control token"))
	return &Cluster{key: key, token: hex.EncodeToString(mac.Sum(nil))}
}

// WithMaterial is c with TLS from m (tests).
func (c *Cluster) WithMaterial(m *certs.Material) *Cluster {
	n := *c
	n.mat = m
	return &n
}

// SSL reports whether connections use TLS.
func (c *Cluster) SSL() bool { return c != nil && c.mat != nil }

// ServerTLS is the TLS configuration of a server: a client must present
// a certificate signed by the cluster's CA.
func (c *Cluster) ServerTLS() *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{c.mat.Cert},
		ClientAuth:   tls.RequireAnyClientCert,
		NextProtos:   []string{"h2"},
		VerifyConnection: func(cs tls.ConnectionState) error {
			if err := c.verify(cs.PeerCertificates); err != nil {
				return fmt.Errorf("client certificate: %w", err)
			}
			return nil
		},
	}
}

// RESTTLS is the TLS configuration of the agents' REST APIs: the
// cluster's certificate, no client certificate asked (basic auth is the
// API's), nil with SSL off.
func (c *Cluster) RESTTLS() *tls.Config {
	if !c.SSL() {
		return nil
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{c.mat.Cert}, NextProtos: []string{"h2", "http/1.1"}}
}

// ClientTLS is the TLS configuration of a client. Members share one
// certificate (as the guide's keystore procedure makes them), so the
// server is checked against the cluster's CA, not its host name.
func (c *Cluster) ClientTLS() *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS12,
		Certificates:       []tls.Certificate{c.mat.Cert},
		NextProtos:         []string{"h2"},
		InsecureSkipVerify: true, // replaced by VerifyConnection
		VerifyConnection: func(cs tls.ConnectionState) error {
			if err := c.verify(cs.PeerCertificates); err != nil {
				return fmt.Errorf("server certificate: %w", err)
			}
			return nil
		},
	}
}

// verify checks that chain[0] is signed by the cluster's CA.
func (c *Cluster) verify(chain []*x509.Certificate) error {
	if len(chain) == 0 {
		return errors.New("none presented; this cluster takes members with a certificate signed by its CA only")
	}
	inter := x509.NewCertPool()
	for _, ct := range chain[1:] {
		inter.AddCert(ct)
	}
	_, err := chain[0].Verify(x509.VerifyOptions{Roots: c.mat.Roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	if err != nil {
		return fmt.Errorf("%q is not signed by this cluster's CA", chain[0].Subject.CommonName)
	}
	return nil
}
