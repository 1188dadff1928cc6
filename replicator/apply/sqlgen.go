package apply

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

// maxStatement bounds one multi-row INSERT; bigger row sets are split.
const maxStatement = 1 << 20

// builder renders the SQL of transactions into one buffer.
type builder struct {
	meta    *metaCache
	service string
	buf     []byte
	// deps, when set, collects the rows the SQL touches, for parallel
	// apply's conflict check.
	deps *deps
	// marks are the offsets in buf after each BINLOG statement (the SQL
	// is sent cut there) and the statements whose rows are counted.
	marks marks
	// run holds the source events of the row changes that go into the
	// next BINLOG statement (binlogRows, flushBinlog).
	run []byte
	// binlogAll: every row change that carries its source events is
	// applied from them (the transaction touches a table with triggers,
	// or Config.BinlogRows).
	binlogAll bool
	// detect: conflicts are detected: the rows UPDATEs and DELETEs
	// change first are verified (verify.go), or matched in the WHERE and
	// guarded (match.go). known are the rows the block changed already
	// (their later changes need no check); scratch is keyOf's buffer.
	detect  bool
	known   known
	scratch []byte
}

// deps are the rows a block touches: one key per row and unique index
// (table, index, values). A table without a usable key makes the block a
// barrier: it conflicts with everything.
type deps struct {
	keys    map[string]struct{}
	barrier bool
	scratch []byte
}

func newDeps() *deps { return &deps{keys: map[string]struct{}{}} }

func (d *deps) reset() {
	clear(d.keys)
	d.barrier = false
}

// conflicts reports whether d and o touch a common row.
func (d *deps) conflicts(o *deps) bool {
	if d.barrier || o.barrier {
		return true
	}
	small, big := d.keys, o.keys
	if len(small) > len(big) {
		small, big = big, small
	}
	for k := range small {
		if _, ok := big[k]; ok {
			return true
		}
	}
	return false
}

// note records the keys of one row image.
func (d *deps) note(t *table, pos map[int]int, values []*thlpb.Value) {
	if t.key == nil {
		d.barrier = true
		return
	}
	for n, idx := range t.uniques {
		b := append(d.scratch[:0], t.schema...)
		b = append(b, 0)
		b = append(b, t.name...)
		b = append(b, 0, byte(n), 0)
		complete := true
		for _, c := range idx {
			i, ok := pos[c]
			if !ok || i >= len(values) {
				complete = false
				break
			}
			b, _ = appendValue(b, values[i], nil)
			b = append(b, 0)
		}
		d.scratch = b
		if !complete {
			if n == 0 {
				d.barrier = true
			}
			continue
		}
		d.keys[string(b)] = struct{}{}
	}
}

// schemaWait bounds how long a row change waits for its table to gain the
// columns it names: in active/active, a DDL from another site may reach
// this database by another replicator a moment after a row that needs it.
const schemaWait = 3 * time.Second

// rowChange appends the statements of one RowChange.
func (b *builder) rowChange(ctx context.Context, q queryer, rc *thlpb.RowChange) error {
	deadline := time.Now().Add(schemaWait)
	for {
		err := b.rowChangeOnce(ctx, q, rc)
		if !errors.Is(err, errSchemaDiffers) || time.Now().After(deadline) {
			return err
		}
		// The cached definition may predate a DDL applied since (by us or
		// by another replicator): read it again.
		b.meta.forget(rc.GetSchema(), rc.GetTable())
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// A row change this large applies from the source's events: the SQL path
// sends a statement per row of an UPDATE or DELETE (a 100,000-row UPDATE
// took 12 times native replication's time; from its events, 2) and writes
// bytes in hex (an 8 MB row is a 16 MB statement; base64 is 11 MB).
const (
	bulkRows  = 100
	bulkBytes = 1 << 20
)

// bulk reports whether rc is an UPDATE or DELETE of bulkRows rows or
// more, or carries bulkBytes of events or more.
func bulk(rc *thlpb.RowChange) bool {
	return rc.GetAction() != thlpb.RowChange_INSERT && len(rc.GetRows()) >= bulkRows || len(rc.GetBinlog()) >= bulkBytes
}

// isLongUniqueHash reports whether name is the hidden hash column of a
// long UNIQUE key (MariaDB names them DB_ROW_HASH_1, DB_ROW_HASH_2, …).
func isLongUniqueHash(name string) bool {
	n, ok := strings.CutPrefix(name, "DB_ROW_HASH_")
	return ok && n != "" && strings.Trim(n, "0123456789") == ""
}

// errSchemaDiffers: a row does not fit the target table's definition.
var errSchemaDiffers = errors.New("the table differs from the source's")

func (b *builder) rowChangeOnce(ctx context.Context, q queryer, rc *thlpb.RowChange) error {
	t, err := b.meta.get(ctx, q, rc.GetSchema(), rc.GetTable())
	if err != nil {
		if errors.Is(err, errNoTable) {
			return fmt.Errorf("%w: %v", errSchemaDiffers, err)
		}
		return err
	}
	native := t.native() || (b.binlogAll || bulk(rc)) && len(rc.GetBinlog()) > 0
	m, err := t.mapColumns(rc.GetColumns(), native)
	if err != nil {
		return err
	}
	target, pos := m.target, m.pos
	if b.deps != nil {
		if t.foreign || t.sequence {
			b.deps.barrier = true
		}
		for _, r := range rc.GetRows() {
			if rc.GetAction() != thlpb.RowChange_INSERT {
				b.deps.note(t, pos, r.GetBefore())
			}
			if rc.GetAction() != thlpb.RowChange_DELETE {
				b.deps.note(t, pos, r.GetAfter())
			}
		}
	}
	if native {
		if b.detect {
			// Rows the server applies from the source's events: it
			// finds them by key, and they count as changed (a later SQL
			// change of one must not be verified against the row as it
			// was before this block).
			for _, r := range rc.GetRows() {
				b.knows(t, pos, r.GetBefore())
				b.knows(t, pos, r.GetAfter())
			}
		}
		return b.binlogRows(t, rc)
	}
	b.flushBinlog()
	if rc.GetNoForeignKeyChecks() {
		// The session checks foreign keys (and cascades) as a source
		// session does by default; this source session did not.
		b.buf = append(b.buf, "SET SESSION foreign_key_checks=0;"...)
		defer func() { b.buf = append(b.buf, "SET SESSION foreign_key_checks=1;"...) }()
	}
	switch rc.GetAction() {
	case thlpb.RowChange_INSERT:
		return b.insert(t, target, rc.GetRows())
	case thlpb.RowChange_UPDATE:
		for _, r := range rc.GetRows() {
			if err := b.update(t, target, pos, r); err != nil {
				return err
			}
		}
	case thlpb.RowChange_DELETE:
		for _, r := range rc.GetRows() {
			if err := b.delete(t, target, pos, r.GetBefore()); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("row change on %s.%s has no action", t.schema, t.name)
	}
	return nil
}

// mapColumns maps the columns of a row change to t's (the last mapping
// again when the change names the same columns). native: the rows are
// applied from their source events.
func (t *table) mapColumns(cols []*thlpb.Column, native bool) (*mapping, error) {
	if m := t.mapped; m != nil && m.native == native && len(m.names) == len(cols) {
		same := true
		for i, c := range cols {
			if c.GetName() != m.names[i] {
				same = false
				break
			}
		}
		if same {
			return m, nil
		}
	}
	// target[i] is the target column of event column i, or -1 for a
	// generated column (never written), or, for rows applied from the
	// source's events, a column the target does not show (a system-
	// versioned table's row_start and row_end).
	m := &mapping{native: native, names: make([]string, len(cols)), target: make([]int, len(cols))}
	for i, c := range cols {
		m.names[i] = c.GetName()
		idx := i
		if c.GetName() != "" {
			_, j, ok := t.col(c.GetName())
			if !ok && (native || isLongUniqueHash(c.GetName())) {
				// Hidden columns the server computes: a long UNIQUE
				// key's DB_ROW_HASH_n, which information_schema
				// does not show and no statement may write.
				m.target[i] = -1
				continue
			}
			if !ok {
				return nil, fmt.Errorf("column %s of %s.%s is not in the target table: %w", c.GetName(), t.schema, t.name, errSchemaDiffers)
			}
			idx = j
		} else if i >= len(t.columns) {
			return nil, fmt.Errorf("a row of %s.%s has %d columns, the target table %d: %w", t.schema, t.name, len(cols), len(t.columns), errSchemaDiffers)
		}
		if t.columns[idx].generated {
			idx = -1
		}
		m.target[i] = idx
	}
	m.pos = positions(m.target)
	t.mapped = m
	return m, nil
}

func (b *builder) tableName(t *table) {
	b.buf = quoteIdent(b.buf, t.schema)
	b.buf = append(b.buf, '.')
	b.buf = quoteIdent(b.buf, t.name)
}

func (b *builder) insert(t *table, target []int, rows []*thlpb.Row) error {
	start := -1
	for _, r := range rows {
		after := r.GetAfter()
		if len(after) != len(target) {
			return fmt.Errorf("an inserted row of %s.%s has %d values for %d columns", t.schema, t.name, len(after), len(target))
		}
		if start < 0 || len(b.buf)-start > maxStatement {
			if start >= 0 {
				b.buf = append(b.buf, ';')
			}
			start = len(b.buf)
			b.buf = append(b.buf, "INSERT INTO "...)
			b.tableName(t)
			b.buf = append(b.buf, " ("...)
			b.columns(target, ",", func(_, j int) error {
				b.buf = quoteIdent(b.buf, t.columns[j].name)
				return nil
			})
			b.buf = append(b.buf, ") VALUES ("...)
		} else {
			b.buf = append(b.buf, ",("...)
		}
		if err := b.columns(target, ",", func(i, j int) error { return b.value(t, j, after[i]) }); err != nil {
			return err
		}
		b.buf = append(b.buf, ')')
	}
	if start >= 0 {
		b.buf = append(b.buf, ';')
	}
	if b.known != nil {
		pos := positions(target)
		for _, r := range rows {
			b.knows(t, pos, r.GetAfter())
		}
	}
	return nil
}

func (b *builder) update(t *table, target []int, pos map[int]int, r *thlpb.Row) error {
	before, after := r.GetBefore(), r.GetAfter()
	if len(after) != len(target) || len(before) != len(target) {
		return fmt.Errorf("an updated row of %s.%s has %d/%d values for %d columns", t.schema, t.name, len(before), len(after), len(target))
	}
	b.buf = append(b.buf, "UPDATE "...)
	b.tableName(t)
	b.buf = append(b.buf, " SET "...)
	// Detecting conflicts, the row holds the whole before-image (verified
	// or matched in the WHERE): the columns the change leaves as they are
	// need no SET (their literals cost the server's parser, and a key
	// left out spares it the two-pass UPDATE of a modified key). A column
	// the server would change itself (ON UPDATE CURRENT_TIMESTAMP) is set
	// all the same.
	verify := b.detect && t.keyed(pos) && verifiable(t, target)
	sets := 0
	if b.detect && t.keyed(pos) {
		for i, j := range target {
			if j < 0 || !(t.columns[j].onUpdate || !sameValue(before[i], after[i])) {
				continue
			}
			if sets > 0 {
				b.buf = append(b.buf, ',')
			}
			sets++
			b.buf = quoteIdent(b.buf, t.columns[j].name)
			b.buf = append(b.buf, '=')
			if err := b.value(t, j, after[i]); err != nil {
				return err
			}
		}
	}
	if sets == 0 {
		err := b.columns(target, ",", func(i, j int) error {
			b.buf = quoteIdent(b.buf, t.columns[j].name)
			b.buf = append(b.buf, '=')
			return b.value(t, j, after[i])
		})
		if err != nil {
			return err
		}
	}
	if err := b.whereOf(t, target, pos, before, verify); err != nil {
		return err
	}
	b.buf = append(b.buf, ';')
	if verify {
		b.first(t, pos, before)
		b.knows(t, pos, after)
	} else {
		b.guarded()
	}
	return nil
}

func (b *builder) delete(t *table, target []int, pos map[int]int, before []*thlpb.Value) error {
	if len(before) != len(target) {
		return fmt.Errorf("a deleted row of %s.%s has %d values for %d columns", t.schema, t.name, len(before), len(target))
	}
	verify := b.detect && t.keyed(pos) && verifiable(t, target)
	b.buf = append(b.buf, "DELETE FROM "...)
	b.tableName(t)
	if err := b.whereOf(t, target, pos, before, verify); err != nil {
		return err
	}
	b.buf = append(b.buf, ';')
	if verify {
		b.first(t, pos, before)
	} else {
		b.guarded()
	}
	return nil
}

// whereOf appends the WHERE of an UPDATE or DELETE: by key alone when the
// row is verified, else where's.
func (b *builder) whereOf(t *table, target []int, pos map[int]int, before []*thlpb.Value, verified bool) error {
	if !verified {
		return b.where(t, target, pos, before)
	}
	b.buf = append(b.buf, " WHERE "...)
	return b.keyWhere(t, pos, before)
}

// guarded marks the statement just written as one a guard must check
// (it matched exactly one row), when detecting conflicts.
func (b *builder) guarded() {
	if b.detect {
		b.marks.guards = append(b.marks.guards, len(b.buf))
	}
}

// where appends the WHERE clause finding a row by its before image: by
// key when the table has one and the image holds it (detecting conflicts,
// also every other column the image carries), else by every column
// (NULL-safe) with LIMIT 1.
func (b *builder) where(t *table, target []int, pos map[int]int, before []*thlpb.Value) error {
	b.buf = append(b.buf, " WHERE "...)
	if t.keyed(pos) {
		if err := b.keyWhere(t, pos, before); err != nil {
			return err
		}
		if !b.detect {
			return nil
		}
		// The other columns' tests go in one IF(), which the optimizer
		// does not take apart: a column with an index of its own would
		// have it weigh that index against the key for every statement
		// (a third more of the server's CPU per sysbench row, measured).
		mark := len(b.buf)
		b.buf = append(b.buf, " AND IF("...)
		n := 0
		for i, j := range target {
			if j < 0 || t.isKey(j) {
				continue
			}
			if n > 0 {
				b.buf = append(b.buf, " AND "...)
			}
			n++
			if err := b.match(t, j, before[i], true); err != nil {
				return err
			}
		}
		if n == 0 {
			b.buf = b.buf[:mark]
			return nil
		}
		b.buf = append(b.buf, ",1,0)"...)
		return nil
	}
	err := b.columns(target, " AND ", func(i, j int) error { return b.match(t, j, before[i], false) })
	if err != nil {
		return err
	}
	b.buf = append(b.buf, " LIMIT 1"...)
	return nil
}

// keyWhere appends the key columns' equalities with img's values.
func (b *builder) keyWhere(t *table, pos map[int]int, img []*thlpb.Value) error {
	for n, k := range t.key {
		if n > 0 {
			b.buf = append(b.buf, " AND "...)
		}
		b.buf = quoteIdent(b.buf, t.columns[k].name)
		b.buf = append(b.buf, '=')
		if err := b.value(t, k, img[pos[k]]); err != nil {
			return err
		}
	}
	return nil
}

// columns calls f for every column the event writes (generated ones are
// skipped), appending sep between them; i is the event's column, j the
// target table's.
func (b *builder) columns(target []int, sep string, f func(i, j int) error) error {
	first := true
	for i, j := range target {
		if j < 0 {
			continue
		}
		if !first {
			b.buf = append(b.buf, sep...)
		}
		first = false
		if err := f(i, j); err != nil {
			return err
		}
	}
	return nil
}

// value appends v as the literal for target column j of t.
func (b *builder) value(t *table, j int, v *thlpb.Value) error {
	var err error
	if b.buf, err = appendValue(b.buf, v, &t.columns[j]); err != nil {
		return fmt.Errorf("%s.%s column %s: %w", t.schema, t.name, t.columns[j].name, err)
	}
	return nil
}

// positions maps each written target column to its event column.
func positions(target []int) map[int]int {
	pos := make(map[int]int, len(target))
	for i, j := range target {
		if j >= 0 {
			pos[j] = i
		}
	}
	return pos
}
