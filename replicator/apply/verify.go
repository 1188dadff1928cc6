package apply

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
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
// verified by a locking read: every column it compares has an exact text
// (textExact).
func verifiable(t *table, target []int) bool {
	if t.foreign {
		return false
	}
	for _, j := range target {
		if j >= 0 && !textExact(&t.columns[j]) {
			return false
		}
	}
	return true
}

// textExact reports whether the server sends column c's values as the
// text appendText makes of the image's: the types castsAsText lists, and
// geometry (its bytes both ways). FLOAT and DOUBLE are not (their text is
// not exact), nor INET6 and UUID (the image carries their storage, the
// server their text), nor any type this list does not know.
func textExact(c *column) bool {
	switch c.dataType {
	case "geometry", "point", "linestring", "polygon", "multipoint", "multilinestring", "multipolygon", "geometrycollection":
		return true
	}
	return castsAsText(c)
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
	// check; those whose columns all cast to text unchanged go as one.
	groups := groupChecks(cs)
	for _, g := range groups {
		g.byKey = make(map[string]*check, len(g.checks))
		for _, c := range g.checks {
			g.byKey[string(keyOf(nil, c.t, c.m.pos, c.before))] = c
		}
	}
	a.lockingReads.Add(1)
	bld := &builder{meta: a.meta, service: a.cfg.Service}
	var reads []verifyRead
	var union []*verifyGroup
	if a.compound.Load() { // MariaDB: parenthesized locking reads in a union
		union = unionGroups(groups)
	}
	if len(union) > 1 {
		// The tables' reads as one statement, one result (a UNION ALL,
		// each row tagged with its group): the server sends one result
		// where it sent one per table, and runs one statement.
		width := 0
		for _, g := range union {
			width = max(width, g.width())
		}
		bld.buf = bld.buf[:0]
		for i, g := range union {
			if i > 0 {
				bld.buf = append(bld.buf, " UNION ALL "...)
			}
			if err := bld.lockingRead(g, i, width); err != nil {
				return err
			}
		}
		reads = append(reads, verifyRead{sql: string(bld.buf), groups: union, width: width})
		a.unionReads.Add(1)
	}
	for _, g := range groups {
		if len(union) > 1 && slices.Contains(union, g) {
			continue
		}
		bld.buf = bld.buf[:0]
		if err := bld.lockingRead(g, -1, 0); err != nil {
			return err
		}
		reads = append(reads, verifyRead{sql: string(bld.buf), groups: []*verifyGroup{g}})
	}
	// One round trip: a compound statement beginning the transaction
	// (MariaDB), or, within one already begun, a lone SELECT (a compound
	// statement's answer ends with an OK of its own, one more read).
	compound := a.compound.Load() && (begin || len(reads) > 1)
	var q []byte
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
	if compound {
		for _, r := range reads {
			q = append(append(q, r.sql...), ';')
		}
		queries = []string{string(append(q, "END"...))}
	} else {
		for _, r := range reads {
			queries = append(queries, r.sql)
		}
	}
	found := 0
	ri := 0
	for _, query := range queries {
		rows, err := conn.QueryContext(ctx, query)
		if err != nil {
			return err
		}
		for more := true; more; more = rows.NextResultSet() {
			if ri >= len(reads) {
				break
			}
			n, err := reads[ri].compare(rows)
			if err != nil {
				rows.Close()
				return err
			}
			found += n
			ri++
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

// lockingRead appends the SELECT … FOR UPDATE of the rows of g: the
// key, then every other column the changes write, ENUM, SET and BIT as
// numbers (as the images carry them), long strings as their MD5 when
// long. As part tag (≥ 0) of a UNION ALL it is in parentheses, its first
// column is tag, every column is cast to a binary string (the union's
// column types then change no value's text) and NULLs pad it to width
// columns after the tag.
func (b *builder) lockingRead(g *verifyGroup, tag, width int) error {
	tagged := tag >= 0
	if tagged {
		b.buf = append(b.buf, "(SELECT "...)
		b.buf = strconv.AppendInt(b.buf, int64(tag), 10)
		b.buf = append(b.buf, ',')
	} else {
		b.buf = append(b.buf, "SELECT "...)
	}
	n := 0
	col := func(c *column) {
		if n > 0 {
			b.buf = append(b.buf, ',')
		}
		n++
		if tagged {
			b.buf = append(b.buf, "CAST("...)
		}
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
		if tagged {
			b.buf = append(b.buf, " AS BINARY)"...)
		}
	}
	g.each(col)
	for ; n < width; n++ {
		b.buf = append(b.buf, ",NULL"...)
	}
	b.buf = append(b.buf, " FROM "...)
	b.tableName(g.t)
	b.buf = append(b.buf, " WHERE "...)
	if err := b.keysWhere(g.t, g.m, g.checks); err != nil {
		return err
	}
	b.buf = append(b.buf, " FOR UPDATE"...)
	if tagged {
		b.buf = append(b.buf, ')')
	}
	return nil
}

// verifyGroup is the checks of one read: one table and mapping; byKey
// has them by row identity (keyOf) for a locking read's comparison.
type verifyGroup struct {
	t      *table
	m      *mapping
	checks []*check
	byKey  map[string]*check
}

// width is the number of columns of g's locking read.
func (g *verifyGroup) width() int {
	n := 0
	g.each(func(*column) { n++ })
	return n
}

// verifyRead is one locking read and the groups it reads: one, or
// several as a UNION ALL of width columns after its tag.
type verifyRead struct {
	sql    string
	groups []*verifyGroup
	width  int
}

// unionGroups returns the groups whose reads may go in one UNION ALL:
// those whose every column reads the same cast to a binary string.
func unionGroups(groups []*verifyGroup) []*verifyGroup {
	var u []*verifyGroup
	for _, g := range groups {
		if castable(g) {
			u = append(u, g)
		}
	}
	return u
}

// castsAsText reports whether column c, read as a locking read reads it,
// has the same text cast to a binary string: not so the types whose
// binary form is their storage (INET6, UUID, geometry) or any other
// this list does not know.
func castsAsText(c *column) bool {
	switch c.dataType {
	case "tinyint", "smallint", "mediumint", "int", "bigint", "decimal",
		"char", "varchar", "binary", "varbinary", "tinytext", "text", "mediumtext", "longtext",
		"tinyblob", "blob", "mediumblob", "longblob", "json",
		"date", "datetime", "timestamp", "time", "year", "enum", "set", "bit":
		return true
	}
	return false
}

// compare reads the rows of r and compares each with its check; it
// returns how many it found.
func (r *verifyRead) compare(rows *sql.Rows) (int, error) {
	n := r.width
	if len(r.groups) == 1 {
		n = r.groups[0].width()
	} else {
		n++ // the tag
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
		g, row := r.groups[0], vals
		if len(r.groups) > 1 {
			tag, err := strconv.Atoi(string(vals[0]))
			if err != nil || tag < 0 || tag >= len(r.groups) {
				return found, fmt.Errorf("apply: a locking read returned a row of no table it reads (tag %q)", vals[0])
			}
			g = r.groups[tag]
			row = vals[1 : 1+g.width()]
		}
		if err := g.compare(row, &key, &scratch); err != nil {
			return found, err
		}
		found++
	}
	return found, rows.Err()
}

// compare compares row, a row of g's locking read, with its check.
// key and scratch are buffers it may keep.
func (g *verifyGroup) compare(row []sql.RawBytes, key, scratch *[]byte) error {
	t := g.t
	*key = append(append(append((*key)[:0], t.schema...), 0), t.name...)
	for i := range t.key {
		*key = append(append(*key, 0), row[i]...)
	}
	c, ok := g.byKey[string(*key)]
	if !ok {
		// Its key reads otherwise than the image writes it (a
		// collation that ignores case, say): conflict mode decides.
		return fmt.Errorf("%w: %s.%s returned a row by another key", errRowDiffers, t.schema, t.name)
	}
	delete(g.byKey, string(*key))
	col := len(t.key)
	for i, j := range g.m.target {
		if j < 0 || t.isKey(j) {
			continue
		}
		if !sameText(&t.columns[j], row[col], c.before[i], scratch) {
			return fmt.Errorf("%w: %s.%s %s, column %s", errRowDiffers, t.schema, t.name, keyText(t, g.m.pos, c.before), t.columns[j].name)
		}
		col++
	}
	return nil
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
