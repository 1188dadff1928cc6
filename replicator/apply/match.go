package apply

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"math"
	"strconv"
	"strings"

	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

// Matching a row image against the target row in SQL. Conflict mode reads
// these tests as flags (conflictmode.go); the fast path puts them in the
// WHERE of the UPDATEs and DELETEs of rows it does not verify beforehand
// (verify.go: tables with FLOAT or DOUBLE columns, or foreign keys) and of
// tables without a key. Each test is NULL-safe and exact for the value the
// column holds:
//
//   - FLOAT: the image's float32 written as the exact double it is, which
//     is what the server compares the column as (0.1 written as 0.1 would
//     be the double 0.1, never equal to the float32 0.1);
//   - DOUBLE: a double literal (with an exponent: 0.1 alone would be a
//     DECIMAL literal, converted on the way);
//   - strings: the column's bytes against the value's (CAST AS BINARY: a
//     change of letter case or of trailing spaces is a change, and no
//     collation is looked up by name for each test). Keyless tables keep
//     the column's collation: their WHERE finds the row, perhaps by an
//     index that a binary comparison would not use;
//   - strings of md5Exact bytes or more (md5Any for a keyless table's
//     WHERE): MD5(column) against the value's MD5. The server's parser
//     pays for every byte of a string literal (it copies it, converted,
//     into the compound statement's text and into the item's name): the
//     32 characters of an MD5 cost it less than a longer value;
//   - the rest (integers, ENUM index, SET and BIT patterns, DECIMAL,
//     temporal text): the literal the applier writes.

// md5Exact and md5Any are the sizes from which a string value is matched
// by its MD5: in the exact tests, and in a keyless table's WHERE (whose
// tests may use an index on the column for a value not too large).
const (
	md5Exact = 40
	md5Any   = 1024
)

// errnoConflict is the MYSQL_ERRNO the guard signals (guardCompound
// spells it out: a SIGNAL takes a literal).
const errnoConflict = 45001

// Guards follow the UPDATEs and DELETEs whose row is matched in the WHERE
// (marks.guards): each stops the script unless the statement matched
// exactly one row (CLIENT_FOUND_ROWS: matched rows, not changed ones).
// MariaDB: an IF inside a block's compound statement (guardCompound), a
// nested compound statement in a multi-statement script (guardStatement);
// servers without compound statements: a SELECT … INTO that fails with
// "Result consisted of more than one row" (1172). A guard costs the server
// about 7 µs (a parsed IF and SIGNAL), measured: verified rows need none
// (their locks keep them).
const (
	guardCompound  = "IF ROW_COUNT()<>1 THEN SIGNAL SQLSTATE '45000' SET MYSQL_ERRNO=45001,MESSAGE_TEXT='carbide: row conflict';END IF;"
	guardStatement = "BEGIN NOT ATOMIC " + guardCompound + "END;"
	guardSelect    = "SELECT 1 FROM (SELECT 1 UNION ALL SELECT 2)g WHERE ROW_COUNT()<>1 INTO @carbide_guard;"
)

// conflictErrnos are the errors that say a block met a conflict: the
// guards', a duplicate key (an INSERT of an existing key, or an UPDATE
// taking a unique value another row holds), a row a BINLOG statement
// did not find, a row whose parent row is gone (1452: another site
// deleted it; fkconflict.go), and a parent row's DELETE refused for rows
// that refer to it (1451: another site added them).
var conflictErrnos = map[uint16]bool{errnoConflict: true, 1172: true, 1062: true, 1586: true, 1032: true, 1452: true, 1451: true}

// isConflictSignal reports whether err is a block stopped by a conflict.
func isConflictSignal(err error) bool {
	if errors.Is(err, errRowDiffers) {
		return true
	}
	for n := range conflictErrnos {
		if isErrNo(err, n) {
			return true
		}
	}
	return false
}

// match appends the test that target column j of t holds v. exact: strings
// compare in their binary collation.
func (b *builder) match(t *table, j int, v *thlpb.Value, exact bool) error {
	col := &t.columns[j]
	switch x := v.GetValue().(type) {
	case nil, *thlpb.Value_Null:
		b.buf = quoteIdent(b.buf, col.name)
		b.buf = append(b.buf, " IS NULL"...)
		return nil
	case *thlpb.Value_Float:
		b.buf = quoteIdent(b.buf, col.name)
		b.buf = append(b.buf, "<=>"...)
		b.buf = appendDouble(b.buf, float64(x.Float))
		return nil
	case *thlpb.Value_Double:
		b.buf = quoteIdent(b.buf, col.name)
		b.buf = append(b.buf, "<=>"...)
		b.buf = appendDouble(b.buf, x.Double)
		return nil
	case *thlpb.Value_Bytes:
		if len(x.Bytes) >= md5Any || exact && len(x.Bytes) >= md5Exact {
			b.buf = append(b.buf, "MD5("...)
			b.buf = quoteIdent(b.buf, col.name)
			b.buf = append(b.buf, ")<=>'"...)
			b.buf = append(b.buf, md5Hex(x.Bytes)...)
			b.buf = append(b.buf, '\'')
			return nil
		}
		if exact {
			// The session's character set is binary (SET NAMES
			// binary): the literal is the value's bytes.
			b.buf = append(b.buf, "CAST("...)
			b.buf = quoteIdent(b.buf, col.name)
			b.buf = append(b.buf, " AS BINARY)<=>"...)
			b.buf = quoteString(b.buf, x.Bytes)
			return nil
		}
		b.buf = quoteIdent(b.buf, col.name)
		b.buf = append(b.buf, "<=>"...)
		return b.value(t, j, v)
	}
	b.buf = quoteIdent(b.buf, col.name)
	b.buf = append(b.buf, "<=>"...)
	return b.value(t, j, v)
}

// md5Hex is the MD5 of s in hex, as the server's MD5() writes it.
func md5Hex(s []byte) string {
	sum := md5.Sum(s)
	return hex.EncodeToString(sum[:])
}

// sameValue reports whether two values of an image are the same.
func sameValue(a, b *thlpb.Value) bool {
	switch x := a.GetValue().(type) {
	case nil, *thlpb.Value_Null:
		switch b.GetValue().(type) {
		case nil, *thlpb.Value_Null:
			return true
		}
		return false
	case *thlpb.Value_Int:
		y, ok := b.GetValue().(*thlpb.Value_Int)
		return ok && x.Int == y.Int
	case *thlpb.Value_Uint:
		y, ok := b.GetValue().(*thlpb.Value_Uint)
		return ok && x.Uint == y.Uint
	case *thlpb.Value_Float:
		y, ok := b.GetValue().(*thlpb.Value_Float)
		return ok && math.Float32bits(x.Float) == math.Float32bits(y.Float)
	case *thlpb.Value_Double:
		y, ok := b.GetValue().(*thlpb.Value_Double)
		return ok && math.Float64bits(x.Double) == math.Float64bits(y.Double)
	case *thlpb.Value_Decimal:
		y, ok := b.GetValue().(*thlpb.Value_Decimal)
		return ok && x.Decimal == y.Decimal
	case *thlpb.Value_Bytes:
		y, ok := b.GetValue().(*thlpb.Value_Bytes)
		return ok && bytes.Equal(x.Bytes, y.Bytes)
	case *thlpb.Value_Text:
		y, ok := b.GetValue().(*thlpb.Value_Text)
		return ok && x.Text == y.Text
	}
	return false
}

// appendDouble appends f as a double literal: the shortest text that reads
// back as f, with an exponent so the server reads a double and not a
// DECIMAL.
func appendDouble(b []byte, f float64) []byte {
	start := len(b)
	b = strconv.AppendFloat(b, f, 'g', -1, 64)
	if !strings.ContainsAny(string(b[start:]), "eE") {
		b = append(b, "e0"...)
	}
	return b
}

// keyed reports whether rows of t are found by key with m: t has a key
// and the images carry all of it.
func (t *table) keyed(pos map[int]int) bool {
	if t.key == nil {
		return false
	}
	for _, k := range t.key {
		if _, ok := pos[k]; !ok {
			return false
		}
	}
	return true
}

// isKey reports whether target column j is part of t's key.
func (t *table) isKey(j int) bool {
	for _, k := range t.key {
		if k == j {
			return true
		}
	}
	return false
}
