package certs

import (
	"bytes"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"software.sslmate.com/src/go-pkcs12"
)

// storeKind names a store's settings for messages.
type storeKind struct {
	path, password string // the ini keys
}

var (
	keystoreKind   = storeKind{"java-keystore-path", "java-keystore-password"}
	truststoreKind = storeKind{"java-truststore-path", "java-truststore-password"}
)

// store is a keystore or truststore read into memory, whatever its format.
type store struct {
	keys    []keyEntry // private key entries, in file order
	trusted []*x509.Certificate
}

type keyEntry struct {
	alias string
	key   crypto.PrivateKey
	chain []*x509.Certificate // leaf first
}

// certs returns every certificate of the store: the trusted entries and
// the chains of the key entries.
func (s *store) certs() []*x509.Certificate {
	out := append([]*x509.Certificate(nil), s.trusted...)
	for _, k := range s.keys {
		out = append(out, k.chain...)
	}
	return out
}

// LoadKeystores reads this member's key and chain from the first private
// key entry of the Java keystore at keystorePath, and the CA certificates
// from the truststore at truststorePath: its trusted certificate entries
// (and the chains of any key entries). Without a truststore the member
// trusts the certificates of the keystore: its chain and trusted entries.
// JKS and PKCS#12 are told apart by content. A private key entry's
// password must be the store's password, as in Tungsten.
func LoadKeystores(keystorePath, keystorePassword, truststorePath, truststorePassword string) (*Material, error) {
	ks, err := readStore(keystoreKind, keystorePath, keystorePassword)
	if err != nil {
		return nil, err
	}
	var roots []*x509.Certificate
	if truststorePath == "" {
		roots = ks.certs()
	} else {
		ts, err := readStore(truststoreKind, truststorePath, truststorePassword)
		if err != nil {
			return nil, err
		}
		if roots = ts.certs(); len(roots) == 0 {
			return nil, sentencef(ErrNoTrusted, "%s %s holds no trusted certificate entry; import the CA with keytool -importcert -alias ca -file ca.pem -keystore %s", truststoreKind.path, truststorePath, truststorePath)
		}
	}
	return material(ks, keystorePath, roots)
}

// material builds the Material from the keystore's first private key entry.
func material(ks *store, path string, roots []*x509.Certificate) (*Material, error) {
	if len(ks.keys) == 0 {
		return nil, sentencef(ErrNoKey, "%s %s holds no private key entry (only %d trusted certificate(s)); give the keystore with this member's key", keystoreKind.path, path, len(ks.trusted))
	}
	k := ks.keys[0]
	if !keyMatches(k.key, k.chain[0]) {
		return nil, sentencef(ErrNoKey, "the private key entry %q of %s does not match its certificate %q", k.alias, path, k.chain[0].Subject.CommonName)
	}
	if _, ok := k.key.(crypto.Signer); !ok {
		return nil, sentencef(ErrNoKey, "the private key entry %q of %s holds a %T, which cannot sign a TLS handshake", k.alias, path, k.key)
	}
	cert := tls.Certificate{PrivateKey: k.key, Leaf: k.chain[0]}
	for _, c := range k.chain {
		cert.Certificate = append(cert.Certificate, c.Raw)
	}
	pool := x509.NewCertPool()
	for _, c := range roots {
		pool.AddCert(c)
	}
	return &Material{Cert: cert, Roots: pool}, nil
}

// keyMatches says whether key is the private key of cert.
func keyMatches(key crypto.PrivateKey, cert *x509.Certificate) bool {
	k, ok := key.(interface{ Public() crypto.PublicKey })
	if !ok {
		return false
	}
	pub, ok := k.Public().(interface{ Equal(crypto.PublicKey) bool })
	return ok && pub.Equal(cert.PublicKey)
}

// readStore reads and decodes the store at path; every error is a sentence
// naming the setting and the file, never the password.
func readStore(kind storeKind, path, password string) (*store, error) {
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("%s %s does not exist", kind.path, path)
	case err != nil:
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("%s %s cannot be read: %w", kind.path, path, err)
	case password == "":
		return nil, fmt.Errorf("%s is not set; %s needs the password of %s", kind.password, kind.path, path)
	}
	return decodeStore(kind, path, data, password)
}

// decodeStore tells the format by content and decodes data.
func decodeStore(kind storeKind, path string, data []byte, password string) (*store, error) {
	var magic uint32
	if len(data) >= 4 {
		magic = binary.BigEndian.Uint32(data)
	}
	switch {
	case magic == jksMagic:
		return decodeJKSStore(kind, path, data, password)
	case magic == jceksMagic:
		return nil, sentencef(ErrFormat, "%s %s is a JCEKS keystore, which Carbide does not read; convert it with keytool -importkeystore -srckeystore %s -srcstoretype JCEKS -destkeystore %s.p12 -deststoretype pkcs12 and name the new file", kind.path, path, path, path)
	case len(data) > 0 && data[0] == 0x30: // a DER SEQUENCE: PKCS#12
		return decodePKCS12Store(kind, path, data, password)
	case bytes.HasPrefix(bytes.TrimSpace(data), []byte("-----BEGIN")):
		return nil, sentencef(ErrFormat, "%s %s holds PEM text, not a Java keystore; give PEM files as ssl-cert, ssl-key and ssl-ca instead", kind.path, path)
	case len(data) == 0:
		return nil, sentencef(ErrDamaged, "%s %s is empty", kind.path, path)
	}
	return nil, sentencef(ErrFormat, "%s %s is neither a JKS nor a PKCS#12 keystore", kind.path, path)
}

// decodeJKSStore reads a JKS store; it recovers the private keys of a
// keystore only (a truststore's certificates are all that is needed).
func decodeJKSStore(kind storeKind, path string, data []byte, password string) (*store, error) {
	ks, err := openJKS(data, password)
	if err == nil && kind == keystoreKind {
		err = ks.recoverKeys(password)
	}
	var dmg *damagedError
	switch {
	case errors.Is(err, ErrPassword):
		return nil, sentencef(ErrPassword, "%s does not open %s (wrong password, or the file was changed after it was written)", kind.password, path)
	case errors.Is(err, errKeyPassword):
		return nil, sentencef(ErrPassword, "a private key entry of %s has a password other than %s; Carbide, like Tungsten, needs the key password to be the store password (keytool -keypasswd changes it)", path, kind.password)
	case errors.As(err, &dmg):
		return nil, sentencef(ErrDamaged, "%s %s is truncated or damaged: %s", kind.path, path, dmg.detail)
	case err != nil:
		return nil, sentencef(ErrNoKey, "%s %s: %v", kind.path, path, err)
	}
	s := &store{}
	for _, k := range ks.keys {
		if kind == keystoreKind {
			s.keys = append(s.keys, keyEntry{alias: k.alias, key: k.key, chain: k.chain})
		} else {
			s.trusted = append(s.trusted, k.chain...)
		}
	}
	for _, c := range ks.trusted {
		s.trusted = append(s.trusted, c.cert)
	}
	return s, nil
}

// decodePKCS12Store reads a PKCS#12 store: a keystore with one private key
// (DecodeChain), or one of trusted certificates only (DecodeTrustStore).
func decodePKCS12Store(kind storeKind, path string, data []byte, password string) (*store, error) {
	key, leaf, cas, chainErr := pkcs12.DecodeChain(data, password)
	if chainErr == nil {
		chain := append([]*x509.Certificate{leaf}, cas...)
		// The leaf is the certificate of the key, wherever it is.
		for i, c := range chain {
			if keyMatches(key, c) {
				chain[0], chain[i] = chain[i], chain[0]
				break
			}
		}
		return &store{keys: []keyEntry{{alias: "(pkcs12)", key: key, chain: chain}}}, nil
	}
	trusted, trustErr := pkcs12.DecodeTrustStore(data, password)
	if trustErr == nil {
		return &store{trusted: trusted}, nil
	}
	var notImpl pkcs12.NotImplementedError
	switch {
	case errors.Is(chainErr, pkcs12.ErrIncorrectPassword) || errors.Is(trustErr, pkcs12.ErrIncorrectPassword),
		errors.Is(chainErr, pkcs12.ErrDecryption):
		return nil, sentencef(ErrPassword, "%s does not open %s (wrong password, or the file was changed after it was written)", kind.password, path)
	case chainErr.Error() == "pkcs12: expected exactly one key bag":
		return nil, sentencef(ErrNoKey, "%s %s holds several private keys, and Carbide reads a PKCS#12 keystore with one; copy this member's into a new keystore with keytool -importkeystore -srcalias ALIAS", kind.path, path)
	case errors.As(chainErr, &notImpl):
		return nil, sentencef(ErrFormat, "%s %s uses a PKCS#12 feature Carbide does not read (%v)", kind.path, path, chainErr)
	}
	return nil, sentencef(ErrDamaged, "%s %s is not a PKCS#12 keystore Carbide reads, with one private key or only trusted certificates (%v)", kind.path, path, chainErr)
}
