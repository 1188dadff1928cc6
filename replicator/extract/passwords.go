package extract

import (
	"crypto/sha1"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"strings"

	"filippo.io/edwards25519"
)

// Account statements reach the binary log as the client typed them, a
// plaintext password included (CREATE USER u IDENTIFIED BY 'pw'). Stored
// so in the THL, the password would show in `thl list`, in an apply
// error's status and in every replica's binary log. hidePasswords rewrites
// such a statement into the form that sets the same password from its
// hash, the authentication string the server stores:
//
//	IDENTIFIED BY 'pw'                      → IDENTIFIED BY PASSWORD '*<hash>'
//	VIA mysql_native_password USING PASSWORD('pw') → VIA mysql_native_password USING '*<hash>'
//	VIA ed25519 USING PASSWORD('pw')       → VIA ed25519 USING '<ed25519 key>'
//
// The server logs SET PASSWORD … = PASSWORD('pw') with the hash already.
// PASSWORD('pw') for another plugin is left as it is (docs/observability.md,
// "Passwords"). The rewrite assumes the default sql_mode: backslash escapes
// in string literals.

// hidePasswords returns q with every plaintext password it recognises
// replaced by its hash; any other statement unchanged.
func hidePasswords(q string) string {
	upper := strings.ToUpper(q)
	if !strings.Contains(upper, "IDENTIFIED") && !strings.Contains(upper, "PASSWORD") {
		return q // the common case: not an account statement
	}
	toks := sqlTokens(q)
	if !accountStatement(toks) {
		return q
	}
	var b strings.Builder
	last := 0
	replace := func(from, to int, with string) {
		b.WriteString(q[last:from])
		b.WriteString(with)
		last = to
	}
	for i := 0; i < len(toks); i++ {
		switch {
		case i+2 < len(toks) && toks[i].word("IDENTIFIED") && toks[i+1].word("BY") && toks[i+2].kind == tokString:
			s := toks[i+2]
			replace(s.start, s.end, "PASSWORD '"+nativeHash(s.value)+"'")
			i += 2
		case i >= 2 && i+3 < len(toks) && toks[i-1].word("USING") && toks[i].word("PASSWORD") && toks[i+1].punct("(") &&
			toks[i+2].kind == tokString && toks[i+3].punct(")"):
			hash := map[string]func(string) string{"MYSQL_NATIVE_PASSWORD": nativeHash, "ED25519": ed25519Hash}[strings.ToUpper(strings.Trim(toks[i-2].text, "`'\""))]
			if hash == nil {
				continue // another plugin: its hash is not known here
			}
			replace(toks[i].start, toks[i+3].end, "'"+hash(toks[i+2].value)+"'")
			i += 3
		}
	}
	if last == 0 {
		return q
	}
	b.WriteString(q[last:])
	return b.String()
}

// accountStatement tells whether the statement creates or changes an
// account: CREATE [OR REPLACE] USER, ALTER USER, GRANT, SET PASSWORD.
func accountStatement(toks []token) bool {
	w := func(i int, s string) bool { return i < len(toks) && toks[i].word(s) }
	switch {
	case w(0, "CREATE") && (w(1, "USER") || w(1, "OR") && w(2, "REPLACE") && w(3, "USER")),
		w(0, "ALTER") && w(1, "USER"), w(0, "GRANT"), w(0, "SET") && w(1, "PASSWORD"):
		return true
	}
	return false
}

// nativeHash is mysql_native_password's hash: "*" and the hex of
// SHA1(SHA1(password)); "" for the empty password, as the server stores it.
func nativeHash(pw string) string {
	if pw == "" {
		return ""
	}
	h1 := sha1.Sum([]byte(pw))
	h2 := sha1.Sum(h1[:])
	return "*" + strings.ToUpper(hex.EncodeToString(h2[:]))
}

type tokenKind int

const (
	tokWord tokenKind = iota
	tokString
	tokPunct
)

// token is a word, a quoted string (value unescaped) or a punctuation
// character of a statement, with its span in it.
type token struct {
	kind       tokenKind
	start, end int
	text       string
	value      string
}

func (t token) word(s string) bool  { return t.kind == tokWord && strings.EqualFold(t.text, s) }
func (t token) punct(s string) bool { return t.kind == tokPunct && t.text == s }

// sqlTokens splits q into tokens, leaving out spaces and comments; a
// backquoted identifier is a word.
func sqlTokens(q string) []token {
	var out []token
	for i := 0; i < len(q); {
		c := q[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '#' || c == '-' && strings.HasPrefix(q[i:], "-- "):
			for i < len(q) && q[i] != '\n' {
				i++
			}
		case c == '/' && strings.HasPrefix(q[i:], "/*"):
			end := strings.Index(q[i+2:], "*/")
			if end < 0 {
				return out
			}
			i += end + 4
		case c == '\'' || c == '"':
			start := i
			v, n := unquote(q[i:])
			i += n
			out = append(out, token{kind: tokString, start: start, end: i, text: q[start:i], value: v})
		case c == '`':
			start := i
			i++
			for i < len(q) && (q[i] != '`' || i+1 < len(q) && q[i+1] == '`') {
				if q[i] == '`' {
					i++ // a doubled backquote
				}
				i++
			}
			i++
			out = append(out, token{kind: tokWord, start: start, end: min(i, len(q)), text: q[start:min(i, len(q))]})
		case isWordByte(c):
			start := i
			for i < len(q) && isWordByte(q[i]) {
				i++
			}
			out = append(out, token{kind: tokWord, start: start, end: i, text: q[start:i]})
		default:
			out = append(out, token{kind: tokPunct, start: i, end: i + 1, text: q[i : i+1]})
			i++
		}
	}
	return out
}

func isWordByte(c byte) bool {
	return c == '_' || c == '$' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80
}

// unquote reads the string literal at the start of s (quoted with s[0]):
// its value and its length in s.
func unquote(s string) (string, int) {
	quote := s[0]
	var v strings.Builder
	for i := 1; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s):
			i++
			switch e := s[i]; e {
			case '0':
				v.WriteByte(0)
			case 'b':
				v.WriteByte('\b')
			case 'n':
				v.WriteByte('\n')
			case 'r':
				v.WriteByte('\r')
			case 't':
				v.WriteByte('\t')
			case 'Z':
				v.WriteByte(26)
			case '%', '_':
				v.WriteByte('\\')
				v.WriteByte(e)
			default:
				v.WriteByte(e)
			}
		case c == quote && i+1 < len(s) && s[i+1] == quote:
			v.WriteByte(quote)
			i++
		case c == quote:
			return v.String(), i + 1
		default:
			v.WriteByte(c)
		}
	}
	return v.String(), len(s)
}

// ed25519Hash is the ed25519 plugin's authentication string for pw: its
// public key (the clamped SHA-512 of pw times the base point), base64
// without padding; "" for the empty password.
func ed25519Hash(pw string) string {
	if pw == "" {
		return ""
	}
	h := sha512.Sum512([]byte(pw))
	s, err := edwards25519.NewScalar().SetBytesWithClamping(h[:32])
	if err != nil {
		return ""
	}
	return base64.RawStdEncoding.EncodeToString((&edwards25519.Point{}).ScalarBaseMult(s).Bytes())
}
