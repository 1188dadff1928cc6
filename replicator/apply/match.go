package apply

import (
	"crypto/md5"
	"encoding/hex"
	"strconv"
	"strings"

	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

// Matching a row image against the target row. The fast path's keyed
// UPDATE and DELETE find the row by key and also require every other
// column the image carries to hold the image's value; conflict mode reads
// the same tests back as flags (conflictmode.go), so the two never
// disagree on what matches. Each test is NULL-safe and exact for the value
// the column holds:
//
//   - FLOAT: the image's float32 written as the exact double it is, which
//     is what the server compares the column as (0.1 written as 0.1 would
//     be the double 0.1, never equal to the float32 0.1);
//   - DOUBLE: a double literal (with an exponent: 0.1 alone would be a
//     DECIMAL literal, converted on the way);
//   - strings of a textual column: compared in the character set's binary
//     collation, so a change of letter case is a change (keyless tables
//     keep the column's collation: their WHERE finds the row, perhaps by
//     an index that a binary collation would not use);
//   - values over md5Min bytes: MD5(column) against the value's MD5 (the
//     statement does not carry a large value twice);
//   - the rest (integers, ENUM index, SET and BIT patterns, DECIMAL,
//     temporal text): the literal the applier writes.

// md5Min is the size from which a string value is matched by its MD5.
const md5Min = 1024

// errnoConflict is the MYSQL_ERRNO the guard signals (guardCompound
// spells it out: a SIGNAL takes a literal).
const errnoConflict = 45001

// Guards after a keyed UPDATE or DELETE: they stop the script when it
// did not touch exactly one row (CLIENT_FOUND_ROWS: matched rows, not
// changed ones). The compound form is a nested BEGIN NOT ATOMIC block, so
// the same text works inside a block's compound statement and as a
// statement of its own in a multi-statement script (MariaDB). Servers
// without compound statements get a SELECT … INTO that fails with "Result
// consisted of more than one row" (1172) when the count is not 1.
const (
	guardCompound = "BEGIN NOT ATOMIC IF ROW_COUNT()<>1 THEN SIGNAL SQLSTATE '45000' SET MYSQL_ERRNO=45001,MESSAGE_TEXT='carbide: row conflict';END IF;END;"
	guardSelect   = "SELECT 1 FROM (SELECT 1 UNION ALL SELECT 2)g WHERE ROW_COUNT()<>1 INTO @carbide_guard;"
)

// conflictErrnos are the errors that say a block met a conflict: the
// guards', a duplicate key (an INSERT of an existing key, or an UPDATE
// taking a unique value another row holds), and a row a BINLOG statement
// did not find.
var conflictErrnos = map[uint16]bool{errnoConflict: true, 1172: true, 1062: true, 1586: true, 1032: true}

// isConflictSignal reports whether err is a block stopped by a conflict.
func isConflictSignal(err error) bool {
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
		if len(x.Bytes) >= md5Min {
			b.buf = append(b.buf, "MD5("...)
			b.buf = quoteIdent(b.buf, col.name)
			b.buf = append(b.buf, ")<=>'"...)
			b.buf = append(b.buf, md5Hex(x.Bytes)...)
			b.buf = append(b.buf, '\'')
			return nil
		}
		b.buf = quoteIdent(b.buf, col.name)
		b.buf = append(b.buf, "<=>"...)
		if err := b.value(t, j, v); err != nil {
			return err
		}
		if exact && col.textual && col.charset != "" {
			b.buf = append(b.buf, " COLLATE "...)
			b.buf = append(b.buf, col.charset...)
			b.buf = append(b.buf, "_bin"...)
		}
		return nil
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
