package extract

import (
	"fmt"
	"strings"
	"unsafe"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

// kind is how one column's decoded go-mysql value becomes a thlpb.Value:
//
//	TINYINT…BIGINT signed, YEAR, ENUM (index)  → int
//	TINYINT…BIGINT UNSIGNED                    → uint (go-mysql decodes them
//	                                              signed; the width masks them back)
//	BIT, SET (bitmask)                         → uint
//	DECIMAL                                    → decimal (exact string)
//	FLOAT → float, DOUBLE → double
//	DATE, TIME, DATETIME, TIMESTAMP (UTC)      → text ("2024-01-02 03:04:05.123456",
//	                                              as many fraction digits as the column has)
//	JSON (MySQL binary JSON, decoded)          → text
//	CHAR, VARCHAR, TEXT, BINARY, VARBINARY,
//	BLOB, JSON (MariaDB: LONGTEXT), GEOMETRY   → bytes, as stored, no charset conversion
//	                                              (the binlog strips BINARY(n)'s trailing
//	                                              0x00 padding; it is put back)
//	NULL                                       → null
type kind uint8

const (
	kInt kind = iota
	kUint8
	kUint16
	kUint24
	kUint32
	kUint64
	kBits // BIT, SET: an int64 bit pattern
	kDecimal
	kFloat
	kDouble
	kText
	kTime // TIME(n): text with exactly n fraction digits (arg = n)
	kBytes
	kBinary // BINARY(n): bytes padded back to n with 0x00 (arg = n)
)

// realType is the column's type with ENUM and SET told apart from CHAR
// (the table map calls all three MYSQL_TYPE_STRING and puts the real type
// in the metadata's high byte).
func realType(typ byte, meta uint16) byte {
	if typ == mysql.MYSQL_TYPE_STRING && meta >= 256 {
		b0 := byte(meta >> 8)
		if b0&0x30 != 0x30 { // long CHAR: length bits folded into the type byte
			return b0 | 0x30
		}
		return b0
	}
	return typ
}

// stringLength is the declared length in bytes of a CHAR/BINARY column
// (MYSQL_TYPE_STRING) from its table map metadata.
func stringLength(meta uint16) int {
	if meta >= 256 {
		b0, b1 := meta>>8, meta&0xff
		if b0&0x30 != 0x30 {
			return int(b1 | ((b0&0x30)^0x30)<<4)
		}
		return int(b1)
	}
	return int(meta)
}

// columnKind returns the conversion for a column of binlog type typ (real
// type) and signedness.
func columnKind(typ byte, unsigned bool) (kind, error) {
	switch typ {
	case mysql.MYSQL_TYPE_TINY:
		if unsigned {
			return kUint8, nil
		}
		return kInt, nil
	case mysql.MYSQL_TYPE_SHORT:
		if unsigned {
			return kUint16, nil
		}
		return kInt, nil
	case mysql.MYSQL_TYPE_INT24:
		if unsigned {
			return kUint24, nil
		}
		return kInt, nil
	case mysql.MYSQL_TYPE_LONG:
		if unsigned {
			return kUint32, nil
		}
		return kInt, nil
	case mysql.MYSQL_TYPE_LONGLONG:
		if unsigned {
			return kUint64, nil
		}
		return kInt, nil
	case mysql.MYSQL_TYPE_YEAR, mysql.MYSQL_TYPE_ENUM:
		return kInt, nil
	case mysql.MYSQL_TYPE_BIT, mysql.MYSQL_TYPE_SET:
		return kBits, nil
	case mysql.MYSQL_TYPE_NEWDECIMAL:
		return kDecimal, nil
	case mysql.MYSQL_TYPE_FLOAT:
		return kFloat, nil
	case mysql.MYSQL_TYPE_DOUBLE:
		return kDouble, nil
	case mysql.MYSQL_TYPE_TIME2:
		return kTime, nil
	case mysql.MYSQL_TYPE_DATE, mysql.MYSQL_TYPE_NEWDATE, mysql.MYSQL_TYPE_TIME,
		mysql.MYSQL_TYPE_DATETIME, mysql.MYSQL_TYPE_DATETIME2,
		mysql.MYSQL_TYPE_TIMESTAMP, mysql.MYSQL_TYPE_TIMESTAMP2,
		mysql.MYSQL_TYPE_JSON:
		return kText, nil
	case mysql.MYSQL_TYPE_STRING, mysql.MYSQL_TYPE_VAR_STRING, mysql.MYSQL_TYPE_VARCHAR,
		mysql.MYSQL_TYPE_BLOB, mysql.MYSQL_TYPE_TINY_BLOB, mysql.MYSQL_TYPE_MEDIUM_BLOB, mysql.MYSQL_TYPE_LONG_BLOB,
		mysql.MYSQL_TYPE_GEOMETRY, mysql.MYSQL_TYPE_VECTOR:
		return kBytes, nil
	}
	return 0, fmt.Errorf("binlog column type %d is not supported", typ)
}

// slabSize is how many values one arena chunk holds.
const slabSize = 256

// slab hands out pointers into chunks of T, so a row of n values costs a
// few allocations per chunk rather than two per value. A full chunk is
// never written again: values handed out stay valid for as long as anyone
// holds them.
type slab[T any] struct{ buf []T }

func (s *slab[T]) next() *T {
	if len(s.buf) == cap(s.buf) {
		s.buf = make([]T, 0, slabSize)
	}
	s.buf = s.buf[:len(s.buf)+1]
	return &s.buf[len(s.buf)-1]
}

// arena allocates the values of row images. It belongs to one Run.
type arena struct {
	vals    slab[thlpb.Value]
	rows    slab[thlpb.Row]
	nulls   slab[thlpb.Value_Null]
	ints    slab[thlpb.Value_Int]
	uints   slab[thlpb.Value_Uint]
	floats  slab[thlpb.Value_Float]
	doubles slab[thlpb.Value_Double]
	decs    slab[thlpb.Value_Decimal]
	bytes   slab[thlpb.Value_Bytes]
	texts   slab[thlpb.Value_Text]
	ptrs    []*thlpb.Value
	// shared counts the bytes of the values in the current chunks: a
	// value handed out keeps its whole chunk alive, and with it every
	// value of the chunk (a blob of 64 MB kept by the rows after it).
	shared int
}

// sharedArena bounds the bytes of values sharing chunks.
const sharedArena = 256 << 10

// fresh makes the next values come from new chunks, when the current ones
// hold more than sharedArena bytes, or unless next, the size of what
// comes, is small.
func (a *arena) fresh(next int) {
	if a.shared+next > sharedArena {
		*a = arena{}
	}
}

// image returns an n-value slice for one row image.
func (a *arena) image(n int) []*thlpb.Value {
	if cap(a.ptrs)-len(a.ptrs) < n {
		a.ptrs = make([]*thlpb.Value, 0, max(n, 4*slabSize))
	}
	l := len(a.ptrs)
	a.ptrs = a.ptrs[:l+n]
	return a.ptrs[l : l+n : l+n]
}

// convert converts one row image (go-mysql's decoded values) of table t,
// returning the values and their size in bytes for fragmenting.
func (a *arena) convert(t *tableInfo, row []any) ([]*thlpb.Value, int, error) {
	out := a.image(len(t.kinds))
	size := 0
	for i, k := range t.kinds {
		v := a.vals.next()
		out[i] = v
		x := row[i]
		if t.compressed != nil && t.compressed[i] && x != nil {
			var err error
			if x, err = decompressed(x); err != nil {
				return nil, 0, errorf(ErrDecode, "%s.%s column %d (%s): %v", t.schema, t.table, i+1, t.columns[i].Name, err)
			}
		}
		n, ok := a.set(v, k, t.arg[i], x)
		if !ok {
			return nil, 0, errorf(ErrDecode, "%s.%s column %d (%s, type %d): unexpected value %T", t.schema, t.table, i+1, t.columns[i].Name, t.columns[i].Type, row[i])
		}
		size += n
	}
	a.shared += size
	return out, size, nil
}

// set fills v from x as kind k (with its argument), returning the value's
// size.
func (a *arena) set(v *thlpb.Value, k kind, arg int, x any) (int, bool) {
	if x == nil {
		w := a.nulls.next()
		w.Null = true
		v.Value = w
		return 1, true
	}
	switch k {
	case kInt:
		var i int64
		switch n := x.(type) {
		case int8:
			i = int64(n)
		case int16:
			i = int64(n)
		case int32:
			i = int64(n)
		case int64:
			i = n
		case int:
			i = int64(n)
		default:
			return 0, false
		}
		w := a.ints.next()
		w.Int = i
		v.Value = w
		return 8, true
	case kUint8, kUint16, kUint24, kUint32, kUint64, kBits:
		var u uint64
		switch n := x.(type) {
		case int8:
			u = uint64(uint8(n))
		case int16:
			u = uint64(uint16(n))
		case int32:
			if k == kUint24 {
				u = uint64(uint32(n) & 0xffffff)
			} else {
				u = uint64(uint32(n))
			}
		case int64:
			u = uint64(n)
		default:
			return 0, false
		}
		w := a.uints.next()
		w.Uint = u
		v.Value = w
		return 8, true
	case kDecimal:
		s, ok := x.(string)
		if !ok {
			return 0, false
		}
		w := a.decs.next()
		w.Decimal = s
		v.Value = w
		return len(s), true
	case kFloat:
		f, ok := x.(float32)
		if !ok {
			return 0, false
		}
		w := a.floats.next()
		w.Float = f
		v.Value = w
		return 4, true
	case kDouble:
		f, ok := x.(float64)
		if !ok {
			return 0, false
		}
		w := a.doubles.next()
		w.Double = f
		v.Value = w
		return 8, true
	case kTime:
		s, ok := x.(string)
		if !ok {
			return 0, false
		}
		// go-mysql leaves out a zero fraction ("838:59:59" for TIME(6)).
		if arg > 0 && strings.IndexByte(s, '.') < 0 {
			s += "." + strings.Repeat("0", arg)
		}
		w := a.texts.next()
		w.Text = s
		v.Value = w
		return len(s), true
	case kText:
		var s string
		switch t := x.(type) {
		case string:
			s = t
		case []byte: // an empty MySQL JSON document
			s = string(t)
		default: // *replication.JsonDiff: partial JSON updates
			return 0, false
		}
		w := a.texts.next()
		w.Text = s
		v.Value = w
		return len(s), true
	case kBytes, kBinary:
		var b []byte
		switch t := x.(type) {
		case string:
			b = stringBytes(t)
		case []byte:
			b = t
		default:
			return 0, false
		}
		if k == kBinary && len(b) < arg {
			p := make([]byte, arg)
			copy(p, b)
			b = p
		}
		w := a.bytes.next()
		w.Bytes = b
		v.Value = w
		return len(b), true
	}
	return 0, false
}

// stringBytes returns the bytes of s without copying. go-mysql decodes
// CHAR/VARCHAR values as strings that alias the event's own buffer (read
// into a fresh slice per event), so the bytes are never written again;
// neither does anything downstream write into a Value's bytes.
func stringBytes(s string) []byte {
	if s == "" {
		return []byte{}
	}
	return unsafe.Slice(unsafe.StringData(s), len(s))
}

// rowsAction maps a rows event to its THL action.
func rowsAction(e *replication.RowsEvent) thlpb.RowChange_Action {
	switch e.Type() {
	case replication.EnumRowsEventTypeInsert:
		return thlpb.RowChange_INSERT
	case replication.EnumRowsEventTypeUpdate:
		return thlpb.RowChange_UPDATE
	case replication.EnumRowsEventTypeDelete:
		return thlpb.RowChange_DELETE
	}
	return thlpb.RowChange_ACTION_UNSPECIFIED
}
