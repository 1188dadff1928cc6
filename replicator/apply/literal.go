package apply

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

// quoteIdent appends a backquoted identifier.
func quoteIdent(b []byte, name string) []byte {
	b = append(b, '`')
	for i := 0; i < len(name); i++ {
		if name[i] == '`' {
			b = append(b, '`')
		}
		b = append(b, name[i])
	}
	return append(b, '`')
}

// quoteString appends a single-quoted string literal with MySQL's backslash
// escapes. The applier's session runs with a sql_mode without
// NO_BACKSLASH_ESCAPES, so every byte sequence round-trips.
func quoteString(b []byte, s []byte) []byte {
	b = append(b, '\'')
	for _, c := range s {
		switch c {
		case 0:
			b = append(b, '\\', '0')
		case '\'':
			b = append(b, '\\', '\'')
		case '\\':
			b = append(b, '\\', '\\')
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case 0x1a:
			b = append(b, '\\', 'Z')
		default:
			b = append(b, c)
		}
	}
	return append(b, '\'')
}

// validDecimal reports whether s is a plain decimal literal, safe to put in
// SQL unquoted.
func validDecimal(s string) bool {
	if s == "" || len(s) > 100 {
		return false
	}
	digits := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			digits++
		case (c == '-' || c == '+') && i == 0:
		case c == '.':
		default:
			return false
		}
	}
	return digits > 0
}

// appendValue appends v as a SQL literal for column col of the target
// table: strings carry their column's character set as an introducer so
// comparisons use the column's collation (and its indexes).
func appendValue(b []byte, v *thlpb.Value, col *column) ([]byte, error) {
	switch x := v.GetValue().(type) {
	case nil, *thlpb.Value_Null:
		return append(b, "NULL"...), nil
	case *thlpb.Value_Int:
		return strconv.AppendInt(b, x.Int, 10), nil
	case *thlpb.Value_Uint:
		return strconv.AppendUint(b, x.Uint, 10), nil
	case *thlpb.Value_Double:
		return strconv.AppendFloat(b, x.Double, 'g', -1, 64), nil
	case *thlpb.Value_Float:
		return strconv.AppendFloat(b, float64(x.Float), 'g', -1, 32), nil
	case *thlpb.Value_Decimal:
		if !validDecimal(x.Decimal) {
			return b, fmt.Errorf("malformed decimal value %q", x.Decimal)
		}
		return append(b, x.Decimal...), nil
	case *thlpb.Value_Bytes:
		b = appendIntroducer(b, col)
		return quoteString(b, x.Bytes), nil
	case *thlpb.Value_Text:
		if col != nil && col.charset != "" && col.textual {
			b = appendIntroducer(b, col)
		}
		return quoteString(b, []byte(x.Text)), nil
	}
	return b, fmt.Errorf("unknown value type %T", v.GetValue())
}

func appendIntroducer(b []byte, col *column) []byte {
	if col == nil || col.charset == "" {
		return append(b, "_binary"...)
	}
	b = append(b, '_')
	return append(b, col.charset...)
}

// shortSQL trims a statement for error messages.
func shortSQL(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 400 {
		return s[:400] + "…"
	}
	return s
}
