package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"
	"unicode/utf8"
)

// The files Generate writes into its directory.
const (
	CAFile         = "ca.pem"        // the CA certificate (ssl-ca)
	CAKeyFile      = "ca.key"        // the CA's private key, PKCS#8 PEM, 0600
	CertFile       = "tungsten.pem"  // the member certificate (ssl-cert)
	KeyFile        = "tungsten.key"  // its private key, PKCS#8 PEM, 0600 (ssl-key)
	KeystoreFile   = "keystore.jks"  // JKS: private key entry KeystoreAlias, chain member → CA, 0600
	TruststoreFile = "truststore.ts" // JKS: trusted certificate entry TruststoreAlias (the CA)

	KeystoreAlias   = "tungsten"
	TruststoreAlias = "ca"

	// CAName is the generated CA's common name.
	CAName = "Carbide cluster CA"
	// ValidityYears is how long the generated certificates are valid.
	ValidityYears = 10

	// MinPassword is the shortest password Generate takes (keytool's minimum).
	MinPassword = 6
)

// Files returns the names Generate writes, in the order it writes them.
func Files() []string {
	return []string{CAFile, CAKeyFile, CertFile, KeyFile, KeystoreFile, TruststoreFile}
}

// Host is a member the generated certificate names: Name as a DNS name,
// Address as an IP address (or a DNS name when it is not an IP).
type Host struct{ Name, Address string }

// GenerateOptions are Generate's options.
type GenerateOptions struct {
	// Force replaces files that exist. Without it Generate writes nothing
	// when any of Files() exists in the directory (an *ExistsError).
	Force bool
}

// Generate writes a cluster CA and one member certificate shared by every
// host into dir, as the Tungsten guide does (one keystore copied to every
// host): an ECDSA P-256 CA (CN "Carbide cluster CA"), a member certificate
// signed by it that names every host's name and address plus localhost,
// 127.0.0.1 and ::1, both valid for ten years with random serials, as PEM
// files (CAFile, CAKeyFile, CertFile, KeyFile), as a JKS keystore
// (KeystoreFile, alias KeystoreAlias, chain member → CA) and as a JKS
// truststore (TruststoreFile, alias TruststoreAlias), both protected by
// password. dir is created 0700 when missing; key files and the keystore
// are 0600. Each file is written to a temporary name and renamed.
func Generate(dir string, hosts []Host, password string, opts GenerateOptions) error {
	if len(hosts) == 0 {
		return errors.New("no hosts to name in the certificate; give at least one")
	}
	if utf8.RuneCountInString(password) < MinPassword {
		return fmt.Errorf("the keystore password is shorter than %d characters, which keytool refuses; choose a longer one", MinPassword)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	if !opts.Force {
		var have []string
		for _, name := range Files() {
			if _, err := os.Lstat(filepath.Join(dir, name)); !errors.Is(err, fs.ErrNotExist) {
				have = append(have, name)
			}
		}
		if len(have) > 0 {
			return &ExistsError{Dir: dir, Files: have}
		}
	}
	files, err := generate(hosts, password, time.Now())
	if err != nil {
		return err
	}
	for _, f := range files {
		if err := writeFile(filepath.Join(dir, f.name), f.data, f.perm); err != nil {
			return err
		}
	}
	return nil
}

type outFile struct {
	name string
	data []byte
	perm fs.FileMode
}

// generate makes the keys, certificates and stores in memory.
func generate(hosts []Host, password string, now time.Time) ([]outFile, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	notBefore := now.Add(-time.Hour) // some clock skew between hosts
	caTmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: CAName},
		NotBefore:             notBefore,
		NotAfter:              notBefore.AddDate(ValidityYears, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
	}
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: KeystoreAlias},
		NotBefore:             notBefore,
		NotAfter:              notBefore.AddDate(ValidityYears, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	addName := func(n string) {
		if ip := net.ParseIP(n); ip != nil {
			if !slices.ContainsFunc(tmpl.IPAddresses, ip.Equal) {
				tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			}
		} else if n != "" && !slices.Contains(tmpl.DNSNames, n) {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	for _, h := range hosts {
		if h.Name == "" {
			return nil, errors.New("a host without a name; every host needs one")
		}
		addName(h.Name)
		addName(h.Address)
	}
	for _, n := range []string{"localhost", "127.0.0.1", "::1"} {
		addName(n)
	}
	if caTmpl.SerialNumber, err = serial(); err != nil {
		return nil, err
	}
	if tmpl.SerialNumber, err = serial(); err != nil {
		return nil, err
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		return nil, fmt.Errorf("create the CA certificate: %w", err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, key.Public(), caKey)
	if err != nil {
		return nil, fmt.Errorf("create the member certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	caKeyPEM, err := keyPEM(caKey)
	if err != nil {
		return nil, err
	}
	keyPEMBytes, err := keyPEM(key)
	if err != nil {
		return nil, err
	}
	keystore, err := encodeJKS(&jksStore{keys: []jksKey{{alias: KeystoreAlias, date: now, key: key, chain: []*x509.Certificate{cert, caCert}}}}, password, rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("write the keystore: %w", err)
	}
	truststore, err := encodeJKS(&jksStore{trusted: []jksCert{{alias: TruststoreAlias, date: now, cert: caCert}}}, password, rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("write the truststore: %w", err)
	}
	return []outFile{
		{CAFile, certPEM(caDER), 0o644},
		{CAKeyFile, caKeyPEM, 0o600},
		{CertFile, certPEM(der), 0o644},
		{KeyFile, keyPEMBytes, 0o600},
		{KeystoreFile, keystore, 0o600},
		{TruststoreFile, truststore, 0o644},
	}, nil
}

// serial returns a random positive 127-bit serial number.
func serial() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	return n.Add(n, big.NewInt(1)), nil
}

func certPEM(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func keyPEM(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// writeFile replaces path with data: a temporary file in the same
// directory, synced, given perm, renamed over path.
func writeFile(path string, data []byte, perm fs.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // after the rename: nothing to remove
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Chmod(perm)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
