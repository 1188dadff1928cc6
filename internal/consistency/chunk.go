package consistency

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
)

// Chunk is one key range of one table: what a marker asks every host to
// checksum.
type Chunk struct {
	No            uint32
	Schema, Table string
	// Key names the key columns the range is on ("" for a table without
	// a usable key: one chunk holds it whole).
	Key []string
	// Lo and Hi are the bounds for people: the key's values after which
	// the chunk starts (exclusive) and where it ends (inclusive); "" for
	// an open end.
	Lo, Hi string
	// Query is the checksum query (count, checksum) every host runs.
	Query string
	// IntKey: one integer key column, LoInt < key <= HiInt (where HasLo,
	// HasHi): Touches can then tell whether a row change falls in it.
	IntKey       bool
	HasLo, HasHi bool
	LoInt, HiInt int64
	// RowsQuery lists each row's key and hash (a chunk checked row by
	// row: Rows); TextKey says the key's columns are integers or strings,
	// whose values the THL holds as the server renders them, so a row
	// change's key can be matched with a listed row's (TouchedKeys).
	RowsQuery string
	TextKey   bool
	Rows      bool
}

// Range says the chunk's key range for people: "id 1..1000", "(a,b)
// (1,'x')..(4,'z')", or "whole table".
func (c *Chunk) Range() string {
	if len(c.Key) == 0 || c.Lo == "" && c.Hi == "" {
		return "whole table"
	}
	key := c.Key[0]
	if len(c.Key) > 1 {
		key = "(" + strings.Join(c.Key, ",") + ")"
	}
	lo, hi := "(start)", "(end)"
	if c.Lo != "" {
		lo = ">" + c.Lo
	}
	if c.Hi != "" {
		hi = c.Hi
	}
	return key + " " + lo + ".." + hi
}

// Table is a table to check and how its rows are read.
type Table struct {
	Schema, Name string
	Columns      []string
	Key          []string // primary key, or a unique key of NOT NULL columns; nil for none
	IntKey       bool     // one integer key column
	TextKey      bool     // every key column an integer or a string
}

// skipSchemas are never checked: the server's own, and the replicators'.
func skipSchema(s string) bool {
	switch strings.ToLower(s) {
	case "mysql", "information_schema", "performance_schema", "sys":
		return true
	}
	return strings.HasPrefix(s, "tungsten_")
}

// Tables lists the base tables to check: all of the database's (system
// and tracking schemas left out), or those of schema, or schema.table.
func Tables(ctx context.Context, db *sql.Conn, schema, table string) ([]Table, error) {
	q := "SELECT table_schema, table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE'"
	var args []any
	if schema != "" {
		q += " AND table_schema = ?"
		args = append(args, schema)
	}
	if table != "" {
		q += " AND table_name = ?"
		args = append(args, table)
	}
	rows, err := db.QueryContext(ctx, q+" ORDER BY table_schema, table_name", args...)
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	var ts []Table
	for rows.Next() {
		var t Table
		if err := rows.Scan(&t.Schema, &t.Name); err != nil {
			rows.Close()
			return nil, err
		}
		if !skipSchema(t.Schema) {
			ts = append(ts, t)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	switch {
	case len(ts) == 0 && table != "":
		return nil, fmt.Errorf("no table %s.%s here", schema, table)
	case len(ts) == 0 && schema != "":
		return nil, fmt.Errorf("no table in schema %s here (or no schema %s)", schema, schema)
	}
	for i := range ts {
		if err := describe(ctx, db, &ts[i]); err != nil {
			return nil, err
		}
	}
	return ts, nil
}

// describe reads t's columns and the key chunks are cut on: the primary
// key, else the first unique key whose columns are all NOT NULL.
func describe(ctx context.Context, db *sql.Conn, t *Table) error {
	rows, err := db.QueryContext(ctx, "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position", t.Schema, t.Name)
	if err != nil {
		return fmt.Errorf("columns of %s.%s: %w", t.Schema, t.Name, err)
	}
	types := map[string]string{}
	for rows.Next() {
		var name, typ string
		if err := rows.Scan(&name, &typ); err != nil {
			rows.Close()
			return err
		}
		t.Columns = append(t.Columns, name)
		types[name] = strings.ToLower(typ)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	rows, err = db.QueryContext(ctx, `SELECT s.index_name, s.column_name, c.is_nullable
FROM information_schema.statistics s JOIN information_schema.columns c
  ON c.table_schema = s.table_schema AND c.table_name = s.table_name AND c.column_name = s.column_name
WHERE s.table_schema = ? AND s.table_name = ? AND s.non_unique = 0
ORDER BY s.index_name <> 'PRIMARY', s.index_name, s.seq_in_index`, t.Schema, t.Name)
	if err != nil {
		return fmt.Errorf("keys of %s.%s: %w", t.Schema, t.Name, err)
	}
	var key []string
	bad := map[string]bool{}
	var order []string
	cols := map[string][]string{}
	for rows.Next() {
		var idx, col, nullable string
		if err := rows.Scan(&idx, &col, &nullable); err != nil {
			rows.Close()
			return err
		}
		if _, ok := cols[idx]; !ok {
			order = append(order, idx)
		}
		cols[idx] = append(cols[idx], col)
		if nullable == "YES" {
			bad[idx] = true
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, idx := range order {
		if !bad[idx] {
			key = cols[idx]
			break
		}
	}
	t.Key = key
	t.TextKey = len(key) > 0
	for _, k := range key {
		switch types[k] {
		case "tinyint", "smallint", "mediumint", "int", "bigint", "char", "varchar", "binary", "varbinary":
		default:
			t.TextKey = false
		}
	}
	if len(key) == 1 {
		switch types[key[0]] {
		case "tinyint", "smallint", "mediumint", "int", "bigint":
			t.IntKey = true
		}
	}
	return nil
}

// QuoteIdent quotes a MySQL identifier.
func QuoteIdent(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

// quoteValue renders a key value read from the database as a literal the
// server compares with the column's own type and collation: a number as
// it is for an integer key, any other value as a quoted string.
func quoteValue(v string, intKey bool) string {
	if intKey {
		if _, err := strconv.ParseInt(v, 10, 64); err == nil {
			return v
		}
		if _, err := strconv.ParseUint(v, 10, 64); err == nil {
			return v
		}
	}
	var b strings.Builder
	b.WriteByte('\'')
	for i := 0; i < len(v); i++ {
		switch c := v[i]; c {
		case '\'':
			b.WriteString("''")
		case '\\':
			b.WriteString("\\\\")
		case 0:
			b.WriteString("\\0")
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('\'')
	return b.String()
}

// after renders "key > vals" for a composite key in the form the range
// optimiser reads: k1 > a OR (k1 = a AND k2 > b) ...; op is ">" or "<=".
func compare(key, vals []string, op string, intKey bool) string {
	strict := map[string]string{">": ">", "<=": "<"}[op]
	var or []string
	for i := range key {
		var and []string
		for j := 0; j < i; j++ {
			and = append(and, QuoteIdent(key[j])+" = "+quoteValue(vals[j], intKey))
		}
		o := strict
		if i == len(key)-1 {
			o = op
		}
		and = append(and, QuoteIdent(key[i])+" "+o+" "+quoteValue(vals[i], intKey))
		or = append(or, strings.Join(and, " AND "))
	}
	if len(or) == 1 {
		return or[0]
	}
	return "(" + strings.Join(or, ") OR (") + ")"
}

// where is the chunk's condition: after lo (exclusive), up to hi
// (inclusive); nil bounds are open.
func where(t *Table, lo, hi []string) string {
	var conds []string
	if lo != nil {
		conds = append(conds, "("+compare(t.Key, lo, ">", t.IntKey)+")")
	}
	if hi != nil {
		conds = append(conds, "("+compare(t.Key, hi, "<=", t.IntKey)+")")
	}
	if len(conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(conds, " AND ")
}

// rowBytes is a row's columns' bytes, with a mask of which are NULL (so
// NULL and ” differ); columns are cast to their bytes, so hosts need no
// common character set.
func rowBytes(t *Table) string {
	parts := make([]string, 0, len(t.Columns)+1)
	nulls := make([]string, 0, len(t.Columns))
	for _, c := range t.Columns {
		parts = append(parts, "CAST("+QuoteIdent(c)+" AS BINARY)")
		nulls = append(nulls, "ISNULL("+QuoteIdent(c)+")")
	}
	parts = append(parts, "CONCAT("+strings.Join(nulls, ", ")+")")
	return "CONCAT_WS('#', " + strings.Join(parts, ", ") + ")"
}

// rowHash is a row's 64-bit hash: its CRC32 and its CRC32C side by side
// (two checksums of different polynomials; MariaDB 10.8 and later). It
// costs the server less than half an MD5 (docs/benchmarks.md, "Cluster
// check").
func rowHash(t *Table) string {
	r := rowBytes(t)
	return "(CRC32(" + r + ") << 32 | CRC32C(" + r + "))"
}

// ChecksumQuery is the query a chunk's hosts run: the row count and the
// XOR of the rows' hashes, in hexadecimal.
func ChecksumQuery(t *Table, whereSQL string) string {
	return "SELECT COUNT(*), LOWER(HEX(BIT_XOR(" + rowHash(t) + "))) FROM " + // BIT_XOR of no row is 0
		QuoteIdent(t.Schema) + "." + QuoteIdent(t.Name) + whereSQL
}

// rowsPrefix starts a rows query: Compute lists the rows.
const rowsPrefix = "/* rows */ "

// RowsQuery lists a chunk's rows: each one's key (its columns' bytes,
// joined by 0x1f) and hash.
func RowsQuery(t *Table, whereSQL string) string {
	keys := make([]string, len(t.Key))
	for i, k := range t.Key {
		keys[i] = "CAST(" + QuoteIdent(k) + " AS BINARY)"
	}
	return rowsPrefix + "SELECT CONCAT_WS(0x1f, " + strings.Join(keys, ", ") + "), LOWER(HEX(" + rowHash(t) + ")) FROM " +
		QuoteIdent(t.Schema) + "." + QuoteIdent(t.Name) + whereSQL
}

// Chunker cuts a table into chunks of about Rows rows each, in key order.
type Chunker struct {
	t    *Table
	lo   []string
	done bool
	no   uint32
}

// NewChunker starts at the table's first key; the first chunk is numbered
// first.
func NewChunker(t *Table, first uint32) *Chunker { return &Chunker{t: t, no: first} }

// Next returns the next chunk of about rows rows; ok is false past the
// table's end.
func (c *Chunker) Next(ctx context.Context, db *sql.Conn, rows int) (ch Chunk, ok bool, err error) {
	if c.done {
		return Chunk{}, false, nil
	}
	t := c.t
	ch = Chunk{No: c.no, Schema: t.Schema, Table: t.Name, Key: t.Key, IntKey: t.IntKey, TextKey: t.TextKey}
	c.no++
	if len(t.Key) == 0 {
		c.done = true
		ch.Query = ChecksumQuery(t, "")
		return ch, true, nil // no key: no rows query
	}
	keys := make([]string, len(t.Key))
	for i, k := range t.Key {
		keys[i] = QuoteIdent(k)
	}
	q := "SELECT " + strings.Join(keys, ", ") + " FROM " + QuoteIdent(t.Schema) + "." + QuoteIdent(t.Name) + where(t, c.lo, nil) +
		" ORDER BY " + strings.Join(keys, ", ") + " LIMIT 1 OFFSET " + strconv.Itoa(max(rows, 1)-1)
	hi := make([]sql.NullString, len(t.Key))
	dst := make([]any, len(hi))
	for i := range hi {
		dst[i] = &hi[i]
	}
	switch err := db.QueryRowContext(ctx, q).Scan(dst...); {
	case err == sql.ErrNoRows:
		c.done = true
		ch.Query, ch.RowsQuery = ChecksumQuery(t, where(t, c.lo, nil)), RowsQuery(t, where(t, c.lo, nil))
		ch.setBounds(c.lo, nil)
		return ch, true, nil
	case err != nil:
		return Chunk{}, false, fmt.Errorf("next chunk of %s.%s: %w", t.Schema, t.Name, err)
	}
	vals := make([]string, len(hi))
	for i, v := range hi {
		vals[i] = v.String
	}
	ch.Query, ch.RowsQuery = ChecksumQuery(t, where(t, c.lo, vals)), RowsQuery(t, where(t, c.lo, vals))
	ch.setBounds(c.lo, vals)
	c.lo = vals
	return ch, true, nil
}

// setBounds records the chunk's bounds for people, and as integers for one
// integer key (one that does not fit an int64 is then a key like any
// other: Touches cannot place its rows).
func (ch *Chunk) setBounds(lo, hi []string) {
	text := func(vals []string) string {
		if len(vals) > 1 {
			return "(" + strings.Join(vals, ",") + ")"
		}
		return strings.Join(vals, ",")
	}
	ch.Lo, ch.Hi = text(lo), text(hi)
	if !ch.IntKey {
		return
	}
	var err error
	if lo != nil {
		ch.HasLo = true
		if ch.LoInt, err = strconv.ParseInt(lo[0], 10, 64); err != nil {
			ch.IntKey = false
		}
	}
	if hi != nil {
		ch.HasHi = true
		if ch.HiInt, err = strconv.ParseInt(hi[0], 10, 64); err != nil {
			ch.IntKey = false
		}
	}
}
