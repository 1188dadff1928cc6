package certs

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"github.com/carbidedb/carbide/internal/config"
)

// Material is what a member presents and what it trusts.
type Material struct {
	// Cert is this member's certificate chain and private key.
	Cert tls.Certificate
	// Roots are the certificates that sign members' certificates.
	Roots *x509.CertPool
}

// Load reads the material the settings name: PEM files when ssl-cert (or
// ssl-key) is set, else the Java keystore and truststore (see
// LoadKeystores).
func Load(st config.Settings) (*Material, error) {
	switch {
	case st.SSLCert != "" || st.SSLKey != "":
		return LoadPEM(st.SSLCert, st.SSLKey, st.SSLCA)
	case st.KeystorePath != "":
		return LoadKeystores(st.KeystorePath, st.KeystorePassword, st.TruststorePath, st.TruststorePassword)
	case st.TruststorePath != "":
		return nil, errors.New("java-truststore-path needs java-keystore-path too: the keystore holds this member's key and certificate")
	default:
		return nil, errors.New("thl-ssl=true needs certificates: ssl-cert, ssl-key and ssl-ca, or java-keystore-path and java-truststore-path")
	}
}

// LoadPEM reads a certificate chain, its key and the CA certificates from
// PEM files.
func LoadPEM(certFile, keyFile, caFile string) (*Material, error) {
	if certFile == "" || keyFile == "" || caFile == "" {
		return nil, errors.New("ssl-cert, ssl-key and ssl-ca go together: give all three")
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("ssl-cert %s with ssl-key %s: %w", certFile, keyFile, err)
	}
	b, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("ssl-ca: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("ssl-ca %s holds no PEM certificate", caFile)
	}
	return &Material{Cert: cert, Roots: roots}, nil
}
