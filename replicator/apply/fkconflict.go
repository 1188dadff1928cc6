package apply

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

// Foreign keys under crossing writes. One site deletes a parent row while
// the other adds a child of it (an INSERT, or an UPDATE pointing a row at
// it); each stream is applied after what its source had applied, so the
// parent was there at the child's source. Rows a parent's DELETE takes
// with it (ON DELETE CASCADE) or changes (SET NULL) are not in the binlog:
// no rule sees them, so every order must end as the parent's DELETE would
// have left the child, whichever site wins:
//
//   - the child comes second and finds its parent gone (1452): where its
//     foreign key cascades, restricts or has no action, the row goes (an
//     INSERT is not applied, an UPDATE's row is deleted), as the DELETE
//     would have taken it or, restricting, takes it below; where it sets
//     NULL, the row is applied with that key's columns NULL;
//   - the child came first and the parent's DELETE is refused for it
//     (1451: RESTRICT or NO ACTION): the rows that refer to the parent go
//     first, then the parent.
//
// Each is recorded (kind parent gone, or child rows), decision applied
// where the row is written with NULLs or the children deleted. stop stops.

// KindChildren is a parent row's DELETE refused for rows that refer to it
// (another site added them concurrently): they are deleted first.
const KindChildren = "child rows"

// applyFK carries out conflict mode's row change (apply), resolving what
// a foreign key refuses (parentGone, childrenFirst). A client of this
// database may add the parent, or a child, between the refusal and the
// look: the change is then tried again, three times at most.
func (w *rowWork) applyFK(ctx context.Context) error {
	for try := 1; ; try++ {
		err := w.apply(ctx)
		switch {
		case isErrNo(err, 1452):
			err = w.parentGone(ctx, err)
		case isErrNo(err, 1451):
			err = w.childrenFirst(ctx, err)
		}
		var again *fkAgain
		if !errors.As(err, &again) {
			return err
		}
		if try == 3 {
			return again.err
		}
		w.c = Conflict{Seqno: w.c.Seqno, Fragno: w.c.Fragno, Change: w.c.Change, Row: w.c.Row, Origin: w.c.Origin,
			Schema: w.c.Schema, Table: w.c.Table, Action: w.c.Action, Policy: w.c.Policy, SourceCommit: w.c.SourceCommit}
		w.recorded, w.stmt = false, ""
	}
}

// fkAgain: what refused the change is gone (a parent is back, a child
// gone); err is the server's refusal.
type fkAgain struct{ err error }

func (e *fkAgain) Error() string { return e.err.Error() }

// foreignKey is one foreign key: table's columns refer to refTable's.
type foreignKey struct {
	name                string
	schema, table       string
	cols                []string
	refSchema, refTable string
	refCols             []string
	rule                string // its ON DELETE rule
}

// foreignKeys returns the foreign keys of t (children: those of other
// tables that refer to t), read once per load of t (metaCache).
func (a *Applier) foreignKeys(ctx context.Context, t *table, children bool) ([]foreignKey, error) {
	cached := &t.keysOf
	if children {
		cached = &t.keysTo
	}
	if *cached != nil {
		return **cached, nil
	}
	fks, err := a.readForeignKeys(ctx, t, children)
	if err == nil {
		*cached = &fks
	}
	return fks, err
}

// readForeignKeys reads the foreign keys foreignKeys returns.
func (a *Applier) readForeignKeys(ctx context.Context, t *table, children bool) ([]foreignKey, error) {
	where := "k.TABLE_SCHEMA = ? AND k.TABLE_NAME = ? AND k.REFERENCED_TABLE_NAME IS NOT NULL"
	if children {
		where = "k.REFERENCED_TABLE_SCHEMA = ? AND k.REFERENCED_TABLE_NAME = ?"
	}
	rows, err := a.conn.QueryContext(ctx, `SELECT k.CONSTRAINT_NAME, k.TABLE_SCHEMA, k.TABLE_NAME, k.COLUMN_NAME,
		k.REFERENCED_TABLE_SCHEMA, k.REFERENCED_TABLE_NAME, k.REFERENCED_COLUMN_NAME, r.DELETE_RULE
		FROM information_schema.KEY_COLUMN_USAGE k JOIN information_schema.REFERENTIAL_CONSTRAINTS r
		ON r.CONSTRAINT_SCHEMA = k.CONSTRAINT_SCHEMA AND r.TABLE_NAME = k.TABLE_NAME AND r.CONSTRAINT_NAME = k.CONSTRAINT_NAME
		WHERE `+where+` ORDER BY k.TABLE_SCHEMA, k.TABLE_NAME, k.CONSTRAINT_NAME, k.ORDINAL_POSITION`, t.schema, t.name)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []foreignKey
	for rows.Next() {
		var f foreignKey
		var col, ref string
		if err := rows.Scan(&f.name, &f.schema, &f.table, &col, &f.refSchema, &f.refTable, &ref, &f.rule); err != nil {
			return nil, err
		}
		if n := len(out); n > 0 && out[n-1].name == f.name && out[n-1].schema == f.schema && out[n-1].table == f.table {
			out[n-1].cols, out[n-1].refCols = append(out[n-1].cols, col), append(out[n-1].refCols, ref)
			continue
		}
		f.cols, f.refCols = []string{col}, []string{ref}
		out = append(out, f)
	}
	return out, rows.Err()
}

// parentGone resolves a change whose row refers to a parent row this
// database does not hold (err, the server's 1452).
func (w *rowWork) parentGone(ctx context.Context, err error) error {
	if w.action == thlpb.RowChange_DELETE {
		return err
	}
	fks, qerr := w.a.foreignKeys(ctx, w.t, false)
	if qerr != nil {
		return fmt.Errorf("%w (reading the table's foreign keys: %v)", err, qerr)
	}
	after := w.row.GetAfter()
	var nulls []string // the columns of the keys whose parent is gone and that set NULL
	goes := false
	for _, f := range fks {
		there, qerr := w.parentThere(ctx, f, after)
		if qerr != nil {
			return fmt.Errorf("%w (looking for its parent row in %s.%s: %v)", err, f.refSchema, f.refTable, qerr)
		}
		switch {
		case there:
		case f.rule == "SET NULL":
			nulls = append(nulls, f.cols...)
		default:
			goes = true
		}
	}
	if !goes && len(nulls) == 0 {
		return &fkAgain{err} // every parent is there now
	}
	w.c.Kind = KindParent
	if _, err := w.decide(); err != nil {
		return err
	}
	w.c.Decision = DecisionKept
	if goes {
		// The row goes: an UPDATE's, and where an INSERT was to take the
		// place of another site's row at its key (it won), that row.
		img := w.row.GetBefore()
		if w.action == thlpb.RowChange_INSERT {
			if !w.t.keyed(w.m.pos) {
				return nil
			}
			img = after
		}
		return w.exec(ctx, func(b *builder) error { return b.delete(w.t, w.m.target, w.m.pos, img) })
	}
	img := w.withNulls(after, nulls)
	w.c.Decision = DecisionApplied
	if w.action == thlpb.RowChange_UPDATE {
		res, err := w.execResult(ctx, func(b *builder) error {
			return b.update(w.t, w.m.target, w.m.pos, &thlpb.Row{Before: w.row.GetBefore(), After: img})
		})
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n > 0 {
			return nil
		}
	}
	return w.exec(ctx, func(b *builder) error { return b.upsert(w.t, w.m.target, img) })
}

// parentThere says whether the parent row img's values of f's columns
// refer to is here (a NULL refers to none: there).
func (w *rowWork) parentThere(ctx context.Context, f foreignKey, img []*thlpb.Value) (bool, error) {
	b := &builder{meta: w.a.meta, service: w.a.cfg.Service}
	b.buf = append(b.buf, "SELECT EXISTS (SELECT 1 FROM "...)
	null, err := w.appendRefWhere(b, f.refSchema, f.refTable, f.cols, f.refCols, img)
	if err != nil || null {
		return null, err
	}
	b.buf = append(b.buf, " LOCK IN SHARE MODE)"...)
	var there bool
	err = w.a.conn.QueryRowContext(ctx, string(b.buf)).Scan(&there)
	return there, err
}

// appendRefWhere appends to b "schema.table WHERE" and, for each of own
// (columns of w's table), its counterpart in theirs equal to img's value:
// the rows of schema.table that img refers to, or that refer to it. null
// reports a NULL among those values, which refers to no row (b is then
// incomplete).
func (w *rowWork) appendRefWhere(b *builder, schema, table string, own, theirs []string, img []*thlpb.Value) (null bool, err error) {
	b.buf = quoteIdent(b.buf, schema)
	b.buf = append(b.buf, '.')
	b.buf = quoteIdent(b.buf, table)
	b.buf = append(b.buf, " WHERE "...)
	for n, col := range own {
		c, ok := w.t.byName[strings.ToLower(col)]
		i, ok2 := w.m.pos[c]
		if !ok || !ok2 || i >= len(img) {
			return false, fmt.Errorf("the row has no value for column %s", col)
		}
		if img[i].GetValue() == nil || img[i].GetNull() {
			return true, nil
		}
		if n > 0 {
			b.buf = append(b.buf, " AND "...)
		}
		b.buf = quoteIdent(b.buf, theirs[n])
		b.buf = append(b.buf, '=')
		if err := b.value(w.t, c, img[i]); err != nil {
			return false, err
		}
	}
	return false, nil
}

// childrenFirst resolves a parent row's DELETE the server refused for
// rows that refer to it (err, 1451): those of every key that restricts
// go first (a cascade below them does its work; a row that restricts in
// turn leaves err standing), then the parent.
func (w *rowWork) childrenFirst(ctx context.Context, err error) error {
	fks, qerr := w.a.foreignKeys(ctx, w.t, true)
	if qerr != nil {
		return fmt.Errorf("%w (reading the foreign keys that refer to the table: %v)", err, qerr)
	}
	before := w.row.GetBefore()
	var deletes []string
	for _, f := range fks {
		if f.rule == "CASCADE" || f.rule == "SET NULL" || f.rule == "SET DEFAULT" {
			continue
		}
		b := &builder{meta: w.a.meta, service: w.a.cfg.Service}
		b.buf = append(b.buf, "DELETE FROM "...)
		null, verr := w.appendRefWhere(b, f.schema, f.table, f.refCols, f.cols, before)
		if verr != nil {
			return err
		}
		if !null { // a NULL is referred to by no row
			deletes = append(deletes, string(b.buf))
		}
	}
	if len(deletes) == 0 {
		return err
	}
	w.c.Kind = KindChildren
	if _, derr := w.decide(); derr != nil {
		return derr
	}
	w.c.Decision = DecisionApplied
	for _, q := range deletes {
		w.stmt = q
		if _, derr := w.a.conn.ExecContext(ctx, q); derr != nil {
			if isErrNo(derr, 1451) {
				return err // a grandchild restricts: the server's error stands
			}
			return derr
		}
	}
	derr := w.exec(ctx, func(b *builder) error { return b.delete(w.t, w.m.target, w.m.pos, before) })
	if isErrNo(derr, 1451) {
		return &fkAgain{derr} // a child came meanwhile
	}
	return derr
}

// withNulls returns a copy of img with cols NULL.
func (w *rowWork) withNulls(img []*thlpb.Value, cols []string) []*thlpb.Value {
	out := slices.Clone(img)
	for _, col := range cols {
		c, ok := w.t.byName[strings.ToLower(col)]
		if i, ok2 := w.m.pos[c]; ok && ok2 && i < len(out) {
			out[i] = &thlpb.Value{Value: &thlpb.Value_Null{Null: true}}
		}
	}
	return out
}

// readRow reads the row keyImg's key names, locked, and compares it with
// keyImg (readTarget). An UPDATE's or DELETE's row that differs only in
// references a parent's DELETE set NULL (ON DELETE SET NULL: the other
// site deleted the parent concurrently, and that change of the row is in
// no binlog) holds its before-image as the source had it: the same. The
// change then goes on as on a host where it came first.
func (w *rowWork) readRow(ctx context.Context, keyImg []*thlpb.Value) (found, same bool, vals []sql.RawBytes, err error) {
	found, same, vals, err = w.readTarget(ctx, keyImg, keyImg)
	if err != nil || !found || same || !w.t.foreign || w.action == thlpb.RowChange_INSERT {
		return found, same, vals, err
	}
	fks, err := w.a.foreignKeys(ctx, w.t, false)
	if err != nil {
		return found, same, vals, fmt.Errorf("read the foreign keys of %s.%s: %w", w.t.schema, w.t.name, err)
	}
	var nulls []string
	for _, f := range fks {
		if f.rule != "SET NULL" {
			continue
		}
		there, err := w.parentThere(ctx, f, keyImg)
		if err != nil {
			return found, same, vals, fmt.Errorf("look for a parent row in %s.%s: %w", f.refSchema, f.refTable, err)
		}
		if there {
			// Deleted and inserted again by the other site meanwhile?
			deleted, err := w.parentCrossed(ctx, f, keyImg)
			if err != nil {
				return found, same, vals, err
			}
			there = !deleted
		}
		if !there {
			nulls = append(nulls, f.cols...)
		}
	}
	if len(nulls) == 0 {
		return found, same, vals, nil
	}
	w.nulled = nulls
	return w.readTarget(ctx, keyImg, w.withNulls(keyImg, nulls))
}

// updateRow is the row conflict mode's UPDATE writes: w.row, with the
// references readRow found set NULL by a parent's DELETE NULL in the
// after-image too where the change leaves them as they were (where it
// came first, the DELETE set them NULL after it).
func (w *rowWork) updateRow() *thlpb.Row {
	if len(w.nulled) == 0 {
		return w.row
	}
	before, after := w.row.GetBefore(), w.row.GetAfter()
	var kept []string
	for _, col := range w.nulled {
		c, ok := w.t.byName[strings.ToLower(col)]
		i, ok2 := w.m.pos[c]
		if ok && ok2 && i < len(before) && i < len(after) && sameValue(before[i], after[i]) {
			kept = append(kept, col)
		}
	}
	return &thlpb.Row{Before: before, After: w.withNulls(after, kept)}
}

// A parent row the other site deleted and inserted again concurrently:
// its DELETE took the children with it (CASCADE) or set their reference
// NULL (SET NULL) where it came first, and no binlog holds that; the
// parent is there again, so a child's change that comes later does not
// find it gone (parentGone). A child whose row is missing, or differs by
// a NULL reference, while the other site deleted its parent concurrently
// met that DELETE: a missing child stays gone (an UPDATE brought it back
// on the hosts that met the parent's INSERT before it, and not on those
// that met the DELETE alone), a nulled one is the same as its
// before-image.

// cascaded resolves an UPDATE whose row is missing where its after-image
// refers, through a foreign key that cascades, restricts or has no action
// on delete, to a parent the other site deleted concurrently: where the
// UPDATE came first, that site's DELETE of the parent took the row
// (CASCADE; the others: the children first, childrenFirst), which stays
// gone (recorded, "parent gone"), whichever site wins — unless the
// change's site wins and changed the parent concurrently itself
// (originChanged): that DELETE then lost where it came second. The
// after-image, not the before: an UPDATE that points the row away from
// the parent leaves it out of that DELETE's reach. False: not such a row.
func (w *rowWork) cascaded(ctx context.Context) (bool, error) {
	if !w.t.foreign || w.action != thlpb.RowChange_UPDATE || w.a.rule.policy != PolicyConverge {
		return false, nil
	}
	fks, err := w.a.foreignKeys(ctx, w.t, false)
	if err != nil {
		return false, fmt.Errorf("read the foreign keys of %s.%s: %w", w.t.schema, w.t.name, err)
	}
	for _, f := range fks {
		if f.rule == "SET NULL" || f.rule == "SET DEFAULT" {
			continue
		}
		key, ok, err := w.a.parentKey(ctx, w.t, w.m, f, w.row.GetAfter())
		if err != nil {
			return false, err
		}
		if !ok || !w.a.checksChanges() || len(w.ev.GetAfter()) == 0 {
			continue
		}
		crossed, err := w.askParent(ctx, f, DeletedKey(key))
		if err == nil && crossed && w.a.appliesAnyway(w.c.Origin) {
			// The change's site wins: the DELETE took the row where it
			// came second only if that site did not change the parent.
			var changed bool
			changed, err = w.originChanged(ctx, f, key)
			crossed = !changed
		}
		if err != nil {
			return false, err
		}
		if !crossed {
			continue
		}
		w.c.Kind = KindParent
		if _, err := w.decide(); err != nil {
			return false, err
		}
		w.c.Decision = DecisionKept
		return true, nil
	}
	return false, nil
}
