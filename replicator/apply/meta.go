package apply

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// column is one column of a target table.
type column struct {
	name      string
	charset   string // "" for binary and non-string columns
	textual   bool   // char, varchar, text, enum, set, json
	dataType  string // information_schema's DATA_TYPE, lower case
	generated bool   // virtual or stored generated: never written
	onUpdate  bool   // ON UPDATE CURRENT_TIMESTAMP: an UPDATE sets it
}

// table is what the applier needs to know of a target table.
type table struct {
	schema, name string
	columns      []column
	byName       map[string]int
	// key is the primary key (or, lacking one, the first unique key with
	// only NOT NULL columns); nil when the table has neither.
	key []int
	// uniques are the columns of every unique index, for dependency
	// tracking between parallel blocks.
	uniques [][]int
	// otherUniques are the column names of the unique keys other than
	// key, whose values cross between sites (uniquecross.go).
	otherUniques [][]string
	// triggers: the table has triggers on this database. Its rows are
	// applied from the source's binlog events, which fire none (the rows
	// the source's triggers wrote are in the transaction).
	triggers bool
	// foreign: the table has foreign keys or is referenced by one. A
	// cascade changes rows no row image names, so its blocks run alone.
	foreign bool
	// keysOf and keysTo cache its foreign keys and those that refer to
	// it (foreignKeys), read when a conflict needs them.
	keysOf, keysTo *[]foreignKey
	// sequence: a SEQUENCE's table. Its row changes with NEXT VALUE in
	// any table that takes its values, which no row image names: its
	// blocks run alone under parallel apply.
	sequence bool
	// versioned: a system-versioned table, whose row_start and row_end
	// (hidden, generated) only the server's replication can write as the
	// source had them: its rows are applied from the source's events.
	versioned bool
	loaded    time.Time
	// mapped is the column mapping of the last row change (most changes
	// of a table name the same columns).
	mapped *mapping
}

// mapping maps the columns of a row change to the table's: target[i] is
// the table column of event column i (-1: not written), pos the inverse.
type mapping struct {
	native bool
	names  []string
	target []int
	pos    map[int]int
}

// native reports whether rows of t are applied from their source events
// (BINLOG), as the server's replication applies them.
func (t *table) native() bool { return t.triggers || t.versioned }

func (t *table) col(name string) (*column, int, bool) {
	i, ok := t.byName[strings.ToLower(name)]
	if !ok {
		return nil, -1, false
	}
	return &t.columns[i], i, true
}

// metaCache loads table definitions from information_schema, once per
// table until the next DDL clears it or metaMaxAge passes: another
// replicator (another site's service) may change a table, add a trigger
// to it, without this one seeing the DDL.
type metaCache struct {
	tables map[tableKey]*table
	now    func() time.Time
}

type tableKey struct{ schema, name string }

// metaMaxAge bounds how long a table definition is used without reading
// it again.
const metaMaxAge = time.Second

func newMetaCache() *metaCache { return &metaCache{tables: map[tableKey]*table{}, now: time.Now} }

func (m *metaCache) clear() { clear(m.tables) }

func (m *metaCache) forget(schema, name string) { delete(m.tables, tableKey{schema, name}) }

// errNoTable: the target table does not exist.
var errNoTable = errors.New("no such table")

func (m *metaCache) get(ctx context.Context, q queryer, schema, name string) (*table, error) {
	k := tableKey{schema, name}
	now := m.now()
	if t, ok := m.tables[k]; ok && now.Sub(t.loaded) < metaMaxAge {
		return t, nil
	}
	t, err := loadTable(ctx, q, schema, name)
	if err != nil {
		return nil, err
	}
	t.loaded = now
	m.tables[k] = t
	return t, nil
}

type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func loadTable(ctx context.Context, q queryer, schema, name string) (*table, error) {
	rows, err := q.QueryContext(ctx, `SELECT COLUMN_NAME, DATA_TYPE, IFNULL(CHARACTER_SET_NAME, ''), EXTRA, IS_NULLABLE
		FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`, schema, name)
	if err != nil {
		return nil, fmt.Errorf("read columns of %s.%s: %w", schema, name, err)
	}
	t := &table{schema: schema, name: name, byName: map[string]int{}}
	notNull := map[int]bool{}
	for rows.Next() {
		var c column
		var dataType, extra, nullable string
		if err := rows.Scan(&c.name, &dataType, &c.charset, &extra, &nullable); err != nil {
			rows.Close()
			return nil, err
		}
		dataType = strings.ToLower(dataType)
		c.dataType = dataType
		c.generated = strings.Contains(strings.ToUpper(extra), "GENERATED")
		c.onUpdate = strings.Contains(strings.ToUpper(extra), "ON UPDATE")
		switch dataType {
		case "char", "varchar", "tinytext", "text", "mediumtext", "longtext", "enum", "set", "json":
			c.textual = true
		}
		if c.charset == "binary" {
			c.charset = ""
		}
		notNull[len(t.columns)] = nullable == "NO"
		t.byName[strings.ToLower(c.name)] = len(t.columns)
		t.columns = append(t.columns, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(t.columns) == 0 {
		return nil, fmt.Errorf("table %s.%s does not exist on this database: %w", schema, name, errNoTable)
	}
	rows, err = q.QueryContext(ctx, `SELECT INDEX_NAME, COLUMN_NAME FROM information_schema.STATISTICS
		WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND NON_UNIQUE = 0 ORDER BY INDEX_NAME = 'PRIMARY' DESC, INDEX_NAME, SEQ_IN_INDEX`, schema, name)
	if err != nil {
		return nil, fmt.Errorf("read keys of %s.%s: %w", schema, name, err)
	}
	var order []string
	idx := map[string][]int{}
	for rows.Next() {
		var index, col string
		if err := rows.Scan(&index, &col); err != nil {
			rows.Close()
			return nil, err
		}
		i, ok := t.byName[strings.ToLower(col)]
		if !ok {
			continue
		}
		if _, seen := idx[index]; !seen {
			order = append(order, index)
		}
		idx[index] = append(idx[index], i)
	}
	rows.Close()
	for _, index := range order {
		cols := idx[index]
		t.uniques = append(t.uniques, cols)
		if t.key != nil {
			continue
		}
		usable := true
		for _, c := range cols {
			usable = usable && notNull[c]
		}
		if index == "PRIMARY" || usable {
			t.key = cols
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	t.otherUniques = t.otherUniqueNames()
	err = q.QueryRowContext(ctx, `SELECT
		EXISTS (SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND TABLE_TYPE = 'SYSTEM VERSIONED'),
		EXISTS (SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND TABLE_TYPE = 'SEQUENCE'),
		EXISTS (SELECT 1 FROM information_schema.TRIGGERS WHERE EVENT_OBJECT_SCHEMA = ? AND EVENT_OBJECT_TABLE = ?),
		EXISTS (SELECT 1 FROM information_schema.REFERENTIAL_CONSTRAINTS
			WHERE CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ? OR UNIQUE_CONSTRAINT_SCHEMA = ? AND REFERENCED_TABLE_NAME = ?)`,
		schema, name, schema, name, schema, name, schema, name, schema, name).Scan(&t.versioned, &t.sequence, &t.triggers, &t.foreign)
	if err != nil {
		return nil, fmt.Errorf("read triggers and foreign keys of %s.%s: %w", schema, name, err)
	}
	return t, nil
}
