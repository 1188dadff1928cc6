package apply

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"

	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

// Verifying rows before a block changes them. The fast path's UPDATE and
// DELETE find their row by key alone, as without detection; before the
// SQL of a block (or of a part sent ahead) is sent, one locking read per
// table (SELECT … FOR UPDATE, by key) fetches every row the block changes
// first, and each is compared here with the before-image of its first
// change. The rows stay locked to the block's commit, so nothing changes
// them in between; later changes of a row in the block need no check (the
// source made each from the one before). Comparing in the statements
// instead (every column tested in each WHERE, a guard after each) cost the
// server's parser and optimizer a quarter more CPU per sysbench
// transaction, measured; this costs a round trip per block and a few
// microseconds per row.
//
// The comparison is of the text the server sends (its character set is
// binary, so strings come as stored) with the text of the image's values,
// and it is conservative: equal texts are equal values, so a changed row
// is never taken for unchanged; a value written another way (a DECIMAL,
// say, if the source's text and the server's ever differed) is taken for a
// conflict, and conflict mode, which compares in the server
// (conflictmode.go), then finds none and applies it. Columns whose text
// is not exact (FLOAT, DOUBLE) are not verified this way: their tables'
// rows are matched in the WHERE (match.go), and so are the rows of tables
// with foreign keys (a cascade earlier in the block may change a row the
// block then changes, after the locking read).

// errRowDiffers: a row a block changes first is not as the change's
// before-image says (or is gone): the block met a conflict.
var errRowDiffers = errors.New("apply: a row differs from the change's before-image")

// check is a row a block changes first: its table, the column mapping of
// the change and its before-image; at is the end of the statement in the
// block's SQL.
type check struct {
	at     int
	t      *table
	m      *mapping
	before []*thlpb.Value
}

// known are the rows a block changed or verified already, by table and
// key: their later changes are not checked.
type known map[string]struct{}

// keyOf returns the identity of img's row of t in k's terms.
func keyOf(b []byte, t *table, pos map[int]int, img []*thlpb.Value) []byte {
	b = append(b, t.schema...)
	b = append(b, 0)
	b = append(b, t.name...)
	for _, c := range t.key {
		b = append(b, 0)
		b = appendText(b, img[pos[c]])
	}
	return b
}

// holdsKey reports whether img carries t's key.
func holdsKey(t *table, pos map[int]int, img []*thlpb.Value) bool {
	for _, c := range t.key {
		if pos[c] >= len(img) {
			return false
		}
	}
	return true
}

// verifiable reports whether rows of t changed with mapping target are
// verified by a locking read: every column it compares has an exact text.
func verifiable(t *table, target []int) bool {
	if t.foreign {
		return false
	}
	for _, j := range target {
		if j >= 0 && (t.columns[j].dataType == "float" || t.columns[j].dataType == "double") {
			return false
		}
	}
	return true
}

// first records img's row, changed with the mapping of the change being
// written, for the locking read, unless the block knows it already.
func (b *builder) first(t *table, pos map[int]int, img []*thlpb.Value) {
	b.scratch = keyOf(b.scratch[:0], t, pos, img)
	if _, ok := b.known[string(b.scratch)]; ok {
		return
	}
	b.known[string(b.scratch)] = struct{}{}
	b.marks.checks = append(b.marks.checks, check{at: len(b.buf), t: t, m: t.mapped, before: img})
}

// knows records img's row as changed by the block (no row: an INSERT's
// before-image, a DELETE's after-image).
func (b *builder) knows(t *table, pos map[int]int, img []*thlpb.Value) {
	if b.known == nil || !t.keyed(pos) || !holdsKey(t, pos, img) {
		return
	}
	b.scratch = keyOf(b.scratch[:0], t, pos, img)
	if _, ok := b.known[string(b.scratch)]; !ok { // a lookup copies no key
		b.known[string(b.scratch)] = struct{}{}
	}
}

// appendText appends v as the server sends it in text: integers and
// decimals as digits, strings as their bytes (the session's character set
// is binary), temporal values as the extractor wrote them.
func appendText(b []byte, v *thlpb.Value) []byte {
	switch x := v.GetValue().(type) {
	case *thlpb.Value_Int:
		return strconv.AppendInt(b, x.Int, 10)
	case *thlpb.Value_Uint:
		return strconv.AppendUint(b, x.Uint, 10)
	case *thlpb.Value_Decimal:
		return append(b, x.Decimal...)
	case *thlpb.Value_Bytes:
		return append(b, x.Bytes...)
	case *thlpb.Value_Text:
		return append(b, x.Text...)
	case *thlpb.Value_Float:
		return strconv.AppendFloat(b, float64(x.Float), 'g', -1, 32)
	case *thlpb.Value_Double:
		return strconv.AppendFloat(b, x.Double, 'g', -1, 64)
	}
	return b
}

// verifyMD5 is the length from which a string column's value comes as its
// MD5 in a locking read (a large value is not sent back whole).
const verifyMD5 = 1024

// longText reports whether column c may hold values long enough to come as
// their MD5.
func longText(c *column) bool {
	switch c.dataType {
	case "varchar", "varbinary", "tinytext", "text", "mediumtext", "longtext", "tinyblob", "blob", "mediumblob", "longblob", "json":
		return true
	}
	return false
}

// verify runs the locking reads of cs on conn (after BEGIN when begin is
// set) and compares the rows: errRowDiffers when one is not as its check
// says.
func (a *Applier) verify(ctx context.Context, conn *sql.Conn, cs []check, begin bool) error {
	// One SELECT per table and mapping, in the order of their first
	// check.
	var groups []*verifyGroup
	for i := range cs {
		c := &cs[i]
		var g *verifyGroup
		for _, have := range groups {
			if have.t == c.t && have.m == c.m {
				g = have
			}
		}
		if g == nil {
			g = &verifyGroup{t: c.t, m: c.m, checks: map[string]*check{}}
			groups = append(groups, g)
		}
		g.checks[string(keyOf(nil, c.t, c.m.pos, c.before))] = c
	}
	bld := &builder{meta: a.meta, service: a.cfg.Service}
	q := bld.buf
	// One round trip: a compound statement beginning the transaction
	// (MariaDB), or, within one already begun, a lone SELECT (a compound
	// statement's answer ends with an OK of its own, one more read).
	compound := a.compound.Load() && (begin || len(groups) > 1)
	if compound {
		q = append(q, compoundOpen...)
		if begin {
			q = append(q, compoundBegin...)
		}
	} else if begin {
		if _, err := conn.ExecContext(ctx, "BEGIN"); err != nil {
			return err
		}
	}
	var queries []string
	for _, g := range groups {
		bld.buf = bld.buf[:0]
		if err := bld.lockingRead(g.t, g.m, g.checks); err != nil {
			return err
		}
		if compound {
			q = append(append(q, bld.buf...), ';')
		} else {
			queries = append(queries, string(bld.buf))
		}
	}
	if compound {
		queries = []string{string(append(q, "END"...))}
	}
	found := 0
	gi := 0
	for _, query := range queries {
		rows, err := conn.QueryContext(ctx, query)
		if err != nil {
			return err
		}
		for more := true; more; more = rows.NextResultSet() {
			if gi >= len(groups) {
				break
			}
			n, err := groups[gi].compare(rows)
			if err != nil {
				rows.Close()
				return err
			}
			found += n
			gi++
		}
		if err := rows.Close(); err != nil {
			return err
		}
	}
	if found != len(cs) {
		return fmt.Errorf("%w: %d of the %d rows it changes first are gone", errRowDiffers, len(cs)-found, len(cs))
	}
	return nil
}

// lockingRead appends the SELECT … FOR UPDATE of the rows of checks: the
// key, then every other column the changes write, ENUM, SET and BIT as
// numbers (as the images carry them), long strings as their MD5 when
// long.
func (b *builder) lockingRead(t *table, m *mapping, checks map[string]*check) error {
	b.buf = append(b.buf, "SELECT "...)
	for n, k := range t.key {
		if n > 0 {
			b.buf = append(b.buf, ',')
		}
		b.buf = quoteIdent(b.buf, t.columns[k].name)
	}
	for _, j := range m.target {
		if j < 0 || t.isKey(j) {
			continue
		}
		b.buf = append(b.buf, ',')
		c := &t.columns[j]
		switch {
		case readsAsNumber(c):
			b.buf = quoteIdent(b.buf, c.name)
			b.buf = append(b.buf, "+0"...)
		case longText(c):
			b.buf = append(b.buf, "IF(LENGTH("...)
			b.buf = quoteIdent(b.buf, c.name)
			b.buf = fmt.Appendf(b.buf, ")>=%d,MD5(", verifyMD5)
			b.buf = quoteIdent(b.buf, c.name)
			b.buf = append(b.buf, "),CAST("...)
			b.buf = quoteIdent(b.buf, c.name)
			b.buf = append(b.buf, " AS BINARY))"...)
		default:
			b.buf = quoteIdent(b.buf, c.name)
		}
	}
	b.buf = append(b.buf, " FROM "...)
	b.tableName(t)
	b.buf = append(b.buf, " WHERE "...)
	n := 0
	for _, c := range checks {
		if n > 0 {
			b.buf = append(b.buf, " OR "...)
		}
		n++
		b.buf = append(b.buf, '(')
		if err := b.keyWhere(t, m.pos, c.before); err != nil {
			return err
		}
		b.buf = append(b.buf, ')')
	}
	b.buf = append(b.buf, " FOR UPDATE"...)
	return nil
}

// verifyGroup is the checks of one locking read: one table and mapping,
// by row identity (keyOf).
type verifyGroup struct {
	t      *table
	m      *mapping
	checks map[string]*check
}

// compare reads the rows of g's locking read and compares each with its
// check; it returns how many it found.
func (g *verifyGroup) compare(rows *sql.Rows) (int, error) {
	t := g.t
	n := len(t.key)
	for _, j := range g.m.target {
		if j >= 0 && !t.isKey(j) {
			n++
		}
	}
	vals := make([]sql.RawBytes, n)
	dest := make([]any, n)
	for i := range vals {
		dest[i] = &vals[i]
	}
	found := 0
	var key, scratch []byte
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return found, err
		}
		key = append(append(append(key[:0], t.schema...), 0), t.name...)
		for i := range t.key {
			key = append(append(key, 0), vals[i]...)
		}
		c, ok := g.checks[string(key)]
		if !ok {
			// Its key reads otherwise than the image writes it (a
			// collation that ignores case, say): conflict mode decides.
			return found, fmt.Errorf("%w: %s.%s returned a row by another key", errRowDiffers, t.schema, t.name)
		}
		delete(g.checks, string(key))
		col := len(t.key)
		for i, j := range g.m.target {
			if j < 0 || t.isKey(j) {
				continue
			}
			if !sameText(&t.columns[j], vals[col], c.before[i], &scratch) {
				return found, fmt.Errorf("%w: %s.%s %s, column %s", errRowDiffers, t.schema, t.name, keyText(t, g.m.pos, c.before), t.columns[j].name)
			}
			col++
		}
		found++
	}
	return found, rows.Err()
}

// sameText reports whether the server's text v of column c is the image's
// value img (conservatively: see the top of this file); scratch is a
// buffer it may keep.
func sameText(c *column, v sql.RawBytes, img *thlpb.Value, scratch *[]byte) bool {
	switch x := img.GetValue().(type) {
	case nil, *thlpb.Value_Null:
		return v == nil
	case *thlpb.Value_Bytes:
		if v == nil {
			return false
		}
		if longText(c) && len(x.Bytes) >= verifyMD5 {
			return string(v) == md5Hex(x.Bytes)
		}
		return bytes.Equal(v, x.Bytes)
	}
	*scratch = appendText((*scratch)[:0], img)
	return v != nil && bytes.Equal(v, *scratch)
}
