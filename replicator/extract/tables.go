package extract

import (
	"bytes"
	"context"
	"database/sql"
	"slices"
	"strings"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

// loopKind says what loop prevention makes of writes to a table.
type loopKind uint8

const (
	loopNone         loopKind = iota
	loopTracking              // a tracking schema's table: the transaction was applied by a replicator
	loopOwnHeartbeat          // this service's heartbeat table: a local heartbeat
	loopOwnMarker             // this service's consistency table: a check's marker (internal/consistency)
)

// tableInfo is what the extractor derives once from a table map event:
// column descriptors shared by every RowChange of the table, and the
// conversion of each column.
type tableInfo struct {
	schema, table string
	columns       []*thlpb.Column
	kinds         []kind
	arg           []int // per column: BINARY(n)'s n, TIME(n)'s n
	loop          loopKind
	nameCol       int    // the heartbeat table's name column, or -1
	compressed    []bool // per column: COMPRESSED (nil for none)

	tm *replication.TableMapEvent // the map this info was built from (identity fast path)
}

// same reports whether tm describes the table exactly as ti was built.
func (ti *tableInfo) same(tm *replication.TableMapEvent) bool {
	old := ti.tm
	if string(tm.Schema) != ti.schema || string(tm.Table) != ti.table ||
		!bytes.Equal(tm.ColumnType, old.ColumnType) || !slices.Equal(tm.ColumnMeta, old.ColumnMeta) ||
		!bytes.Equal(tm.SignednessBitmap, old.SignednessBitmap) || !slices.Equal(tm.PrimaryKey, old.PrimaryKey) ||
		len(tm.ColumnName) != len(old.ColumnName) {
		return false
	}
	for i := range tm.ColumnName {
		if !bytes.Equal(tm.ColumnName[i], old.ColumnName[i]) {
			return false
		}
	}
	return true
}

// colDef is a column as information_schema describes it.
type colDef struct {
	name     string
	unsigned bool
	key      bool
	binary   bool // BINARY(n)
}

// binaryCollation is the id of the binary pseudo-collation.
const binaryCollation = 63

// tables caches tableInfo by table id, and information_schema column
// lists for servers that do not log column names
// (binlog_row_metadata=MINIMAL or NO_LOG).
type tables struct {
	db      *sql.DB
	flavor  string
	service string
	prefix  string
	byID    map[uint64]*tableInfo
	schema  map[string][]colDef // "schema.table" → columns; cleared on DDL
	// compressed holds the COMPRESSED columns of the table ids whose last
	// table map had any (see compression).
	compressed map[uint64][]bool
}

// noteCompressed records which columns of a table map are COMPRESSED
// (flags, nil for none); other events are ignored.
func (c *tables) noteCompressed(ev *replication.BinlogEvent, flags []bool) {
	tm, ok := ev.Event.(*replication.TableMapEvent)
	if !ok || flags == nil && c.compressed[tm.TableID] == nil {
		return
	}
	if ti := c.byID[tm.TableID]; ti != nil && !slices.Equal(ti.compressed, flags) {
		delete(c.byID, tm.TableID)
	}
	if flags == nil {
		delete(c.compressed, tm.TableID)
		return
	}
	if c.compressed == nil || len(c.compressed) > maxCachedTables {
		c.compressed = map[uint64][]bool{}
	}
	c.compressed[tm.TableID] = flags
}

func newTables(db *sql.DB, flavor, service, prefix string) *tables {
	return &tables{db: db, flavor: flavor, service: service, prefix: prefix, byID: map[uint64]*tableInfo{}, schema: map[string][]colDef{}}
}

// invalidate forgets what a DDL may have changed: the information_schema
// columns, and the infos built from them (a table id can outlive an
// ALTER that renames a column without changing its type).
func (c *tables) invalidate() {
	if len(c.schema) > 0 {
		clear(c.schema)
		clear(c.byID)
	}
}

// get returns the info for the table map tm.
func (c *tables) get(ctx context.Context, tm *replication.TableMapEvent) (*tableInfo, error) {
	if ti := c.byID[tm.TableID]; ti != nil {
		if ti.tm == tm {
			return ti, nil
		}
		if ti.same(tm) {
			ti.tm = tm
			return ti, nil
		}
	}
	ti, err := c.build(ctx, tm)
	if err != nil {
		return nil, err
	}
	c.byID[tm.TableID] = ti
	return ti, nil
}

func (c *tables) build(ctx context.Context, tm *replication.TableMapEvent) (*tableInfo, error) {
	n := int(tm.ColumnCount)
	ti := &tableInfo{
		schema:     string(tm.Schema),
		table:      string(tm.Table),
		columns:    make([]*thlpb.Column, n),
		kinds:      make([]kind, n),
		arg:        make([]int, n),
		nameCol:    -1,
		tm:         tm,
		compressed: c.compressed[tm.TableID],
	}
	cols := make([]thlpb.Column, n)
	for i := range cols {
		ti.columns[i] = &cols[i]
		cols[i].Type = uint32(realType(tm.ColumnType[i], tm.ColumnMeta[i]))
		cols[i].Meta = uint32(tm.ColumnMeta[i])
	}

	// Names, signedness and keys from the table map (binlog_row_metadata=FULL;
	// MINIMAL has signedness only), else from information_schema.
	haveNames := len(tm.ColumnName) == n
	// The server logs signedness only for numeric columns: a table without
	// any has no bitmap, and needs none.
	needSign := slices.ContainsFunc(ti.columns, func(c *thlpb.Column) bool { return isNumeric(byte(c.Type)) })
	haveSign := len(tm.SignednessBitmap) > 0 || !needSign
	coll := tm.CollationMap() // nil unless the binlog has charsets
	needColl := false
	for i := range cols {
		if byte(cols[i].Type) == mysql.MYSQL_TYPE_STRING {
			needColl = coll == nil
		}
	}
	if haveNames {
		for i, name := range tm.ColumnName {
			cols[i].Name = string(name)
		}
		for _, k := range tm.PrimaryKey {
			if int(k) < n {
				cols[k].Key = true
			}
		}
	}
	if haveSign {
		// One bit per numeric column, most significant bit first. MariaDB
		// counts YEAR as numeric (Field_year is a Field_tiny), MySQL does
		// not; go-mysql's UnsignedMap follows MySQL and misreads MariaDB.
		bit := 0
		for i := range cols {
			typ := byte(cols[i].Type)
			year := typ == mysql.MYSQL_TYPE_YEAR
			if !isNumeric(typ) && !(year && c.flavor == FlavorMariaDB) {
				continue
			}
			if !year && bit/8 < len(tm.SignednessBitmap) && tm.SignednessBitmap[bit/8]&(0x80>>(bit%8)) != 0 {
				cols[i].Unsigned = true
			}
			bit++
		}
	}
	var defs []colDef
	if !haveNames || !haveSign || needColl {
		var err error
		defs, err = c.columnsOf(ctx, ti.schema, ti.table)
		if err != nil {
			return nil, err
		}
		if len(defs) != n {
			return nil, errorf(ErrDecode, "%s.%s has %d columns in the binlog but %d in information_schema (the table changed since this event was written); "+
				"set binlog_row_metadata=FULL so the binlog carries column names", ti.schema, ti.table, n, len(defs))
		}
		for i, d := range defs {
			if !haveNames {
				cols[i].Name = d.name
				cols[i].Key = d.key
			}
			if !haveSign && isNumeric(tm.ColumnType[i]) {
				cols[i].Unsigned = d.unsigned
			}
		}
	}
	for i := range cols {
		k, err := columnKind(byte(cols[i].Type), cols[i].Unsigned)
		if err != nil {
			return nil, errorf(ErrDecode, "%s.%s column %s: %v", ti.schema, ti.table, cols[i].Name, err)
		}
		switch byte(cols[i].Type) {
		case mysql.MYSQL_TYPE_STRING:
			if coll != nil && coll[i] == binaryCollation || coll == nil && defs[i].binary {
				k, ti.arg[i] = kBinary, stringLength(tm.ColumnMeta[i])
			}
		case mysql.MYSQL_TYPE_TIME2:
			ti.arg[i] = int(tm.ColumnMeta[i])
		}
		ti.kinds[i] = k
	}

	ti.loop = c.loopOf(tm.Schema, tm.Table)
	if ti.loop == loopOwnHeartbeat {
		for i := range cols {
			if strings.EqualFold(cols[i].Name, "name") {
				ti.nameCol = i
			}
		}
	}
	return ti, nil
}

// loopOf says what loop prevention makes of writes to schema.table; it
// needs no column metadata, so a transaction is known to be applied by a
// replicator even when its other rows cannot be decoded.
func (c *tables) loopOf(schema, table []byte) loopKind {
	rest, ok := bytes.CutPrefix(schema, []byte(c.prefix))
	switch {
	case !ok:
		return loopNone
	case string(rest) == c.service && string(table) == "heartbeat":
		return loopOwnHeartbeat
	case string(rest) == c.service && string(table) == "consistency":
		return loopOwnMarker
	}
	return loopTracking
}

func isNumeric(typ byte) bool {
	switch typ {
	case mysql.MYSQL_TYPE_TINY, mysql.MYSQL_TYPE_SHORT, mysql.MYSQL_TYPE_INT24, mysql.MYSQL_TYPE_LONG,
		mysql.MYSQL_TYPE_LONGLONG, mysql.MYSQL_TYPE_NEWDECIMAL, mysql.MYSQL_TYPE_FLOAT, mysql.MYSQL_TYPE_DOUBLE:
		return true
	}
	return false
}

// columnsOf reads a table's columns from information_schema (cached until
// the next DDL). It describes the table as it is now, which is right only
// if the table did not change since the event being decoded was written.
func (c *tables) columnsOf(ctx context.Context, schema, table string) ([]colDef, error) {
	key := schema + "." + table
	if defs, ok := c.schema[key]; ok {
		return defs, nil
	}
	rows, err := c.db.QueryContext(ctx,
		"SELECT COLUMN_NAME, COLUMN_TYPE, COLUMN_KEY, DATA_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
		schema, table)
	if err != nil {
		return nil, errorf(ErrConnect, "the binlog lacks column metadata for %s.%s and information_schema could not be read: %v; set binlog_row_metadata=FULL", schema, table, err)
	}
	defer rows.Close()
	var defs []colDef
	for rows.Next() {
		var name, typ, key, dataType string
		if err := rows.Scan(&name, &typ, &key, &dataType); err != nil {
			return nil, errorf(ErrConnect, "read the columns of %s.%s: %v", schema, table, err)
		}
		defs = append(defs, colDef{name: name, unsigned: strings.Contains(strings.ToLower(typ), "unsigned"), key: key == "PRI", binary: strings.EqualFold(dataType, "binary")})
	}
	if err := rows.Err(); err != nil {
		return nil, errorf(ErrConnect, "read the columns of %s.%s: %v", schema, table, err)
	}
	if len(defs) == 0 {
		return nil, errorf(ErrDecode, "the binlog lacks column metadata (names, signedness or character sets) for %s.%s and the table no longer exists; set binlog_row_metadata=FULL so the binlog carries it", schema, table)
	}
	c.schema[key] = defs
	return defs, nil
}
