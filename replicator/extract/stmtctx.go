package extract

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"

	"github.com/go-mysql-org/go-mysql/replication"
)

// A statement the source logged as a statement (DML of a session with
// binlog_format=STATEMENT or MIXED) may depend on values its session had:
// the auto-increment value it generated (INSERT_ID), LAST_INSERT_ID(),
// RAND()'s seeds, user variables. The server logs each in an event just
// before the statement; they travel in the statement's Session under the
// keys below, and the applier sets them before it runs the statement, as
// mysqlbinlog does. A value that cannot be carried exactly stops the
// extractor at that statement.
const (
	SessionInsertID     = "#insert_id"
	SessionLastInsertID = "#last_insert_id"
	SessionRandSeed1    = "#rand_seed1"
	SessionRandSeed2    = "#rand_seed2"
	// SessionUserVarPrefix + name: the value as an SQL literal.
	SessionUserVarPrefix = "@"
	// SessionErrorCode: the error the statement raised on the source,
	// which the server logged it with; the applier expects the same.
	SessionErrorCode = "#error_code"
)

// intVar notes an INTVAR event for the next statement.
func (r *run) intVar(e *replication.IntVarEvent) {
	switch e.Type {
	case replication.INSERT_ID:
		r.noteContext(SessionInsertID, strconv.FormatUint(e.Value, 10))
	case replication.LAST_INSERT_ID:
		r.noteContext(SessionLastInsertID, strconv.FormatUint(e.Value, 10))
	}
}

// statementContext decodes a RAND or USER_VAR event (go-mysql leaves them
// undecoded) for the next statement.
func (r *run) statementContext(h *replication.EventHeader, data []byte) error {
	switch h.EventType {
	case replication.RAND_EVENT:
		if len(data) < 16 {
			return errorf(ErrDecode, "RAND event at %s:%d is %d bytes, want 16", r.file, r.lastPos, len(data))
		}
		r.noteContext(SessionRandSeed1, strconv.FormatUint(binary.LittleEndian.Uint64(data), 10))
		r.noteContext(SessionRandSeed2, strconv.FormatUint(binary.LittleEndian.Uint64(data[8:]), 10))
	case replication.USER_VAR_EVENT:
		name, literal, err := r.userVar(data)
		if err != nil {
			return err
		}
		r.noteContext(SessionUserVarPrefix+name, literal)
	}
	return nil
}

func (r *run) noteContext(k, v string) {
	if r.stmtCtx == nil {
		r.stmtCtx = map[string]string{}
	}
	r.stmtCtx[k] = v
}

// User variable value types (Item_result).
const (
	userVarString  = 0
	userVarReal    = 1
	userVarInt     = 2
	userVarDecimal = 4
)

// userVar decodes a USER_VAR event into the variable's name and its value
// as an SQL literal.
func (r *run) userVar(data []byte) (string, string, error) {
	bad := func(what string) (string, string, error) {
		return "", "", errorf(ErrDecode, "USER_VAR event at %s:%d: %s", r.file, r.lastPos, what)
	}
	if len(data) < 5 {
		return bad("too short")
	}
	n := int(binary.LittleEndian.Uint32(data))
	if len(data) < 4+n+1 {
		return bad("name cut short")
	}
	name := string(data[4 : 4+n])
	p := data[4+n:]
	if p[0] != 0 {
		return name, "NULL", nil
	}
	if len(p) < 1+1+4+4 {
		return bad("value header cut short")
	}
	typ, charset, size := p[1], binary.LittleEndian.Uint32(p[2:]), int(binary.LittleEndian.Uint32(p[6:]))
	p = p[10:]
	if len(p) < size {
		return bad("value cut short")
	}
	v := p[:size]
	unsigned := len(p) > size && p[size]&0x01 != 0
	switch typ {
	case userVarString:
		return name, fmt.Sprintf("_%s X'%X' COLLATE `%s`", r.coll.charsetName(uint64(charset)), v, r.coll.collationName(uint64(charset))), nil
	case userVarReal:
		if size != 8 {
			return bad("a REAL value of " + strconv.Itoa(size) + " bytes")
		}
		return name, strconv.FormatFloat(math.Float64frombits(binary.LittleEndian.Uint64(v)), 'g', -1, 64), nil
	case userVarInt:
		if size != 8 {
			return bad("an INT value of " + strconv.Itoa(size) + " bytes")
		}
		u := binary.LittleEndian.Uint64(v)
		if unsigned {
			return name, strconv.FormatUint(u, 10), nil
		}
		return name, strconv.FormatInt(int64(u), 10), nil
	case userVarDecimal:
		if size < 2 {
			return bad("a DECIMAL value cut short")
		}
		d, ok := binaryDecimal(v[2:], int(v[0]), int(v[1]))
		if !ok {
			return bad(fmt.Sprintf("a DECIMAL(%d,%d) value of %d bytes", v[0], v[1], size-2))
		}
		return name, d, nil
	}
	return bad("value type " + strconv.Itoa(int(typ)) + " unknown")
}

// digitBytes is how many bytes hold n (0..9) decimal digits in MySQL's
// binary DECIMAL format.
var digitBytes = [10]int{0, 1, 1, 2, 2, 3, 3, 4, 4, 4}

// binaryDecimal decodes MySQL's binary DECIMAL(precision, scale): groups
// of 9 digits in 4 big-endian bytes, shorter groups at both ends, the sign
// in the first bit (set: positive; a negative value is stored inverted).
func binaryDecimal(b []byte, precision, scale int) (string, bool) {
	if precision <= 0 || scale < 0 || scale > precision {
		return "", false
	}
	intg := precision - scale
	size := intg/9*4 + digitBytes[intg%9] + scale/9*4 + digitBytes[scale%9]
	if len(b) < size || size == 0 {
		return "", false
	}
	d := append([]byte(nil), b[:size]...)
	negative := d[0]&0x80 == 0
	d[0] ^= 0x80
	if negative {
		for i := range d {
			d[i] ^= 0xFF
		}
	}
	group := func(n int) uint64 {
		var v uint64
		for _, c := range d[:n] {
			v = v<<8 | uint64(c)
		}
		d = d[n:]
		return v
	}
	var out []byte
	if negative {
		out = append(out, '-')
	}
	var digits []byte
	if n := intg % 9; n > 0 {
		digits = fmt.Appendf(digits, "%0*d", n, group(digitBytes[n]))
	}
	for range intg / 9 {
		digits = fmt.Appendf(digits, "%09d", group(4))
	}
	i := 0
	for i < len(digits)-1 && digits[i] == '0' {
		i++
	}
	if len(digits) == 0 {
		digits = []byte{'0'}
	}
	out = append(out, digits[i:]...)
	if scale > 0 {
		out = append(out, '.')
		for range scale / 9 {
			out = fmt.Appendf(out, "%09d", group(4))
		}
		if n := scale % 9; n > 0 {
			out = fmt.Appendf(out, "%0*d", n, group(digitBytes[n]))
		}
	}
	return string(out), true
}
