package certs

import (
	"bytes"
	"crypto"
	"crypto/sha1"
	"crypto/subtle"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf16"
)

// The JKS format (sun.security.provider.JavaKeyStore), all integers big
// endian:
//
//	magic u32 0xFEEDFEED, version u32 (1 or 2), entry count u32
//	entry: tag u32, alias UTF, creation date u64 (ms since 1970), then
//	  tag 1 (private key): u32 length + EncryptedPrivateKeyInfo (Sun's
//	    KeyProtector), u32 chain length, per certificate: [v2: UTF type] u32
//	    length + DER
//	  tag 2 (trusted certificate): [v2: UTF type] u32 length + DER
//	SHA-1(password as UTF-16BE + "Mighty Aphrodite" + everything above)
//
// UTF is Java's DataOutput.writeUTF: a u16 byte count and modified UTF-8.
const (
	jksMagic      = 0xFEEDFEED
	jceksMagic    = 0xCECECECE
	jksTagKey     = 1
	jksTagCert    = 2
	jksTagSecret  = 3 // JCEKS only
	jksWhitener   = "Mighty Aphrodite"
	jksDigestSize = sha1.Size
	jksCertType   = "X.509"
)

// keyProtectorOID is Sun's proprietary key protection algorithm
// (sun.security.provider.KeyProtector).
var keyProtectorOID = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 42, 2, 17, 1, 1}

// errKeyPassword: a private key entry's password is not the store's.
var errKeyPassword = errors.New("the key password differs from the store password")

// jksStore is the content of a JKS file.
type jksStore struct {
	keys    []jksKey
	trusted []jksCert
}

// jksKey is a private key entry: the key (after recoverKeys; protected
// holds the EncryptedPrivateKeyInfo as read) and its chain, leaf first.
type jksKey struct {
	alias     string
	date      time.Time
	protected []byte
	key       crypto.PrivateKey
	chain     []*x509.Certificate
}

// jksCert is a trusted certificate entry.
type jksCert struct {
	alias string
	date  time.Time
	cert  *x509.Certificate
}

// damagedError is a structural problem of a JKS file; its text says where.
type damagedError struct{ detail string }

func (e *damagedError) Error() string { return e.detail }

func damaged(format string, args ...any) error {
	return &damagedError{detail: fmt.Sprintf(format, args...)}
}

// decodeJKS parses a JKS file, checks its integrity digest with password
// and recovers its private keys with the same password (Tungsten's rule:
// the key password is the store password). Errors: a *damagedError,
// ErrPassword, or recoverKeys' errors.
func decodeJKS(data []byte, password string) (*jksStore, error) {
	ks, err := openJKS(data, password)
	if err != nil {
		return nil, err
	}
	if err := ks.recoverKeys(password); err != nil {
		return nil, err
	}
	return ks, nil
}

// openJKS parses a JKS file and checks its integrity digest, leaving the
// private keys protected (a truststore needs only the certificates).
func openJKS(data []byte, password string) (*jksStore, error) {
	ks, end, err := parseJKS(data)
	if err != nil {
		return nil, err
	}
	if !verifyJKS(data[:end], data[end:], password) {
		return nil, ErrPassword
	}
	return ks, nil
}

// recoverKeys unprotects every private key entry with password. Errors:
// errKeyPassword or a *damagedError wrapped with the alias, or a key Go
// cannot parse.
func (ks *jksStore) recoverKeys(password string) error {
	for i := range ks.keys {
		k := &ks.keys[i]
		der, err := recoverKey(k.protected, password)
		if err != nil {
			return fmt.Errorf("entry %q: %w", k.alias, err)
		}
		if k.key, err = x509.ParsePKCS8PrivateKey(der); err != nil {
			return fmt.Errorf("entry %q holds a private key Carbide cannot use (%v)", k.alias, err)
		}
	}
	return nil
}

// parseJKS reads the structure of a JKS file without any password; end is
// where the integrity digest starts (it is the file's last 20 bytes).
func parseJKS(data []byte) (ks *jksStore, end int, err error) {
	r := &reader{b: data}
	magic, version, count := r.u32(), r.u32(), r.u32()
	if r.err != nil {
		return nil, 0, damaged("%d bytes is too short for a keystore header", len(data))
	}
	switch {
	case magic == jceksMagic:
		return nil, 0, ErrFormat
	case magic != jksMagic:
		return nil, 0, damaged("no JKS magic number")
	case version != 1 && version != 2:
		return nil, 0, damaged("JKS version %d; only versions 1 and 2 exist", version)
	}
	ks = &jksStore{}
	for i := uint32(0); i < count; i++ {
		where := fmt.Sprintf("entry %d of %d", i+1, count)
		tag := r.u32()
		alias := r.utf()
		date := time.UnixMilli(int64(r.u64()))
		if r.err != nil {
			return nil, 0, damaged("%s ends early", where)
		}
		where = fmt.Sprintf("entry %d of %d (%q)", i+1, count, alias)
		switch tag {
		case jksTagKey:
			k := jksKey{alias: alias, date: date, protected: r.block()}
			n := r.u32()
			for j := uint32(0); j < n && r.err == nil; j++ {
				c, err := r.cert(version)
				if err != nil {
					return nil, 0, damaged("%s: certificate %d: %v", where, j+1, err)
				}
				k.chain = append(k.chain, c)
			}
			if r.err != nil {
				return nil, 0, damaged("%s ends early", where)
			}
			if len(k.chain) == 0 {
				return nil, 0, damaged("%s: a private key entry without a certificate", where)
			}
			ks.keys = append(ks.keys, k)
		case jksTagCert:
			c, err := r.cert(version)
			if err != nil {
				return nil, 0, damaged("%s: %v", where, err)
			}
			ks.trusted = append(ks.trusted, jksCert{alias: alias, date: date, cert: c})
		case jksTagSecret:
			return nil, 0, damaged("%s: a secret key entry, which only JCEKS keystores hold", where)
		default:
			return nil, 0, damaged("%s: unknown entry type %d", where, tag)
		}
	}
	switch rest := len(data) - r.off; {
	case rest < jksDigestSize:
		return nil, 0, damaged("the integrity digest at its end is missing")
	case rest > jksDigestSize:
		return nil, 0, damaged("%d bytes follow the integrity digest", rest-jksDigestSize)
	}
	return ks, r.off, nil
}

// verifyJKS checks the integrity digest over body.
func verifyJKS(body, digest []byte, password string) bool {
	return subtle.ConstantTimeCompare(jksDigest(body, password), digest) == 1
}

func jksDigest(body []byte, password string) []byte {
	h := sha1.New()
	h.Write(passwordBytes(password))
	h.Write([]byte(jksWhitener))
	h.Write(body)
	return h.Sum(nil)
}

// passwordBytes is a Java char[] as bytes: UTF-16 code units, big endian.
func passwordBytes(password string) []byte {
	units := utf16.Encode([]rune(password))
	b := make([]byte, 2*len(units))
	for i, u := range units {
		binary.BigEndian.PutUint16(b[2*i:], u)
	}
	return b
}

// encryptedPrivateKeyInfo is PKCS#8's EncryptedPrivateKeyInfo.
type encryptedPrivateKeyInfo struct {
	Algorithm pkix.AlgorithmIdentifier
	Data      []byte
}

// recoverKey undoes Sun's KeyProtector: Data is salt (20) + the key XORed
// with a SHA-1 keystream (d0 = salt, d(i+1) = SHA-1(password + d(i))) +
// SHA-1(password + key). It returns the PKCS#8 key.
func recoverKey(protected []byte, password string) ([]byte, error) {
	var info encryptedPrivateKeyInfo
	rest, err := asn1.Unmarshal(protected, &info)
	if err != nil || len(rest) > 0 {
		return nil, damaged("the protected key is not an EncryptedPrivateKeyInfo")
	}
	if !info.Algorithm.Algorithm.Equal(keyProtectorOID) {
		return nil, damaged("the key is protected with algorithm %v, not the JKS key protector", info.Algorithm.Algorithm)
	}
	if len(info.Data) < 2*sha1.Size {
		return nil, damaged("the protected key is %d bytes long, too short", len(info.Data))
	}
	salt := info.Data[:sha1.Size]
	enc := info.Data[sha1.Size : len(info.Data)-sha1.Size]
	check := info.Data[len(info.Data)-sha1.Size:]
	pw := passwordBytes(password)
	plain := keystreamXOR(enc, salt, pw)
	h := sha1.New()
	h.Write(pw)
	h.Write(plain)
	if subtle.ConstantTimeCompare(h.Sum(nil), check) != 1 {
		return nil, errKeyPassword
	}
	return plain, nil
}

// protectKey is recoverKey's inverse with a random salt.
func protectKey(pkcs8 []byte, password string, rand io.Reader) ([]byte, error) {
	salt := make([]byte, sha1.Size)
	if _, err := io.ReadFull(rand, salt); err != nil {
		return nil, err
	}
	pw := passwordBytes(password)
	h := sha1.New()
	h.Write(pw)
	h.Write(pkcs8)
	data := append(append(salt, keystreamXOR(pkcs8, salt, pw)...), h.Sum(nil)...)
	return asn1.Marshal(encryptedPrivateKeyInfo{
		Algorithm: pkix.AlgorithmIdentifier{Algorithm: keyProtectorOID, Parameters: asn1.NullRawValue},
		Data:      data,
	})
}

func keystreamXOR(in, salt, pw []byte) []byte {
	out := make([]byte, len(in))
	d := salt
	for i := 0; i < len(in); i += sha1.Size {
		h := sha1.New()
		h.Write(pw)
		h.Write(d)
		d = h.Sum(nil)
		for j := 0; j < sha1.Size && i+j < len(in); j++ {
			out[i+j] = in[i+j] ^ d[j]
		}
	}
	return out
}

// encodeJKS writes a version 2 JKS file: the private key entries (each key
// protected with password, as keytool does when the key password is the
// store password), then the trusted certificate entries. Aliases are
// lower case, as Java's JKS keeps them.
func encodeJKS(ks *jksStore, password string, rand io.Reader) ([]byte, error) {
	var w bytes.Buffer
	u32 := func(v uint32) { _ = binary.Write(&w, binary.BigEndian, v) }
	block := func(b []byte) { u32(uint32(len(b))); w.Write(b) }
	utf := func(s string) error {
		b := encodeMUTF8(s)
		if len(b) > 0xFFFF {
			return fmt.Errorf("alias %.20q… is too long for a keystore", s)
		}
		_ = binary.Write(&w, binary.BigEndian, uint16(len(b)))
		w.Write(b)
		return nil
	}
	entry := func(tag uint32, alias string, date time.Time) error {
		u32(tag)
		if err := utf(strings.ToLower(alias)); err != nil {
			return err
		}
		return binary.Write(&w, binary.BigEndian, uint64(date.UnixMilli()))
	}
	u32(jksMagic)
	u32(2)
	u32(uint32(len(ks.keys) + len(ks.trusted)))
	for _, k := range ks.keys {
		if len(k.chain) == 0 {
			return nil, fmt.Errorf("entry %q has no certificate", k.alias)
		}
		der, err := x509.MarshalPKCS8PrivateKey(k.key)
		if err != nil {
			return nil, fmt.Errorf("entry %q: %w", k.alias, err)
		}
		protected, err := protectKey(der, password, rand)
		if err != nil {
			return nil, fmt.Errorf("entry %q: %w", k.alias, err)
		}
		if err := entry(jksTagKey, k.alias, k.date); err != nil {
			return nil, err
		}
		block(protected)
		u32(uint32(len(k.chain)))
		for _, c := range k.chain {
			_ = utf(jksCertType)
			block(c.Raw)
		}
	}
	for _, c := range ks.trusted {
		if err := entry(jksTagCert, c.alias, c.date); err != nil {
			return nil, err
		}
		_ = utf(jksCertType)
		block(c.cert.Raw)
	}
	w.Write(jksDigest(w.Bytes(), password))
	return w.Bytes(), nil
}

// reader reads big-endian fields; after the first short read every read
// returns zero values and err stays set.
type reader struct {
	b   []byte
	off int
	err error
}

func (r *reader) next(n int) []byte {
	if r.err != nil || n < 0 || n > len(r.b)-r.off {
		r.err = io.ErrUnexpectedEOF
		return nil
	}
	b := r.b[r.off : r.off+n]
	r.off += n
	return b
}

func (r *reader) u16() uint16 {
	if b := r.next(2); b != nil {
		return binary.BigEndian.Uint16(b)
	}
	return 0
}

func (r *reader) u32() uint32 {
	if b := r.next(4); b != nil {
		return binary.BigEndian.Uint32(b)
	}
	return 0
}

func (r *reader) u64() uint64 {
	if b := r.next(8); b != nil {
		return binary.BigEndian.Uint64(b)
	}
	return 0
}

// block reads a u32 length and that many bytes.
func (r *reader) block() []byte {
	n := r.u32()
	if r.err != nil || uint64(n) > uint64(len(r.b)-r.off) {
		r.err = io.ErrUnexpectedEOF
		return nil
	}
	return r.next(int(n))
}

// utf reads a Java writeUTF string; malformed bytes become U+FFFD.
func (r *reader) utf() string {
	b := r.next(int(r.u16()))
	if r.err != nil {
		return ""
	}
	return decodeMUTF8(b)
}

// cert reads a certificate: its type (version 2) and DER bytes.
func (r *reader) cert(version uint32) (*x509.Certificate, error) {
	if version == 2 {
		if t := r.utf(); r.err == nil && t != jksCertType {
			return nil, fmt.Errorf("certificate type %q; only X.509 exists", t)
		}
	}
	der := r.block()
	if r.err != nil {
		return nil, errors.New("it ends early")
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// decodeMUTF8 decodes Java's modified UTF-8: UTF-16 code units in one to
// three bytes each, 0 as C0 80.
func decodeMUTF8(b []byte) string {
	var units []uint16
	for i := 0; i < len(b); {
		c := b[i]
		switch {
		case c < 0x80:
			units = append(units, uint16(c))
			i++
		case c&0xE0 == 0xC0 && i+1 < len(b) && b[i+1]&0xC0 == 0x80:
			units = append(units, uint16(c&0x1F)<<6|uint16(b[i+1]&0x3F))
			i += 2
		case c&0xF0 == 0xE0 && i+2 < len(b) && b[i+1]&0xC0 == 0x80 && b[i+2]&0xC0 == 0x80:
			units = append(units, uint16(c&0x0F)<<12|uint16(b[i+1]&0x3F)<<6|uint16(b[i+2]&0x3F))
			i += 3
		default:
			units = append(units, 0xFFFD)
			i++
		}
	}
	return string(utf16.Decode(units))
}

// encodeMUTF8 is decodeMUTF8's inverse.
func encodeMUTF8(s string) []byte {
	var b []byte
	for _, u := range utf16.Encode([]rune(s)) {
		switch {
		case u != 0 && u < 0x80:
			b = append(b, byte(u))
		case u < 0x800:
			b = append(b, 0xC0|byte(u>>6), 0x80|byte(u&0x3F))
		default:
			b = append(b, 0xE0|byte(u>>12), 0x80|byte(u>>6&0x3F), 0x80|byte(u&0x3F))
		}
	}
	return b
}
