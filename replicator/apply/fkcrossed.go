package apply

import (
	"context"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

// A child pointed at a parent the other site deleted and inserted again
// concurrently. West inserts a child of parent 1 (or an UPDATE sets a
// row's reference to 1) while east deletes parent 1 and inserts it
// again. Where west's change comes first, east's DELETE takes the child
// (CASCADE; RESTRICT and NO ACTION: the children first, childrenFirst) or
// sets its reference NULL; where it comes second the parent is back, and
// nothing refuses it.
//
// Where east wins, its DELETE is applied wherever west's child came
// first, whatever west did to the parent, so the child's change asks the
// other site whether it deleted that parent concurrently (after what the
// change's source had applied of it) and made it again since
// (ReinsertedKey; a parent not made again is missing, and parentGone
// resolves it) and, if so, leaves the row as the DELETE would: gone (a
// reference that cascades or restricts), or with the reference NULL (SET
// NULL). The block path asks it with the block's other questions
// (noteRows); a block with such a row goes to conflict mode, which asks it
// of the row again (crossRefs) and resolves it where the change writes
// its after-image. Converge only, like the rest of the foreign-key
// rules' questions. A reference the change leaves as it was is the
// before-image's, which readRow (SET NULL) and cascaded (the row gone)
// resolve.
//
// Where the child's site wins, its change is not asked about (nothing is,
// appliesAnyway): east's DELETE is applied where the child came first
// only if west did not change the parent concurrently, and no question
// this host can put tells (it would need what east's DELETE had applied
// of west). So that case stays as it was: docs/replicator.md, "Limits".

// appendParentQueries adds to qs, for the rows of rc (a row change of ev,
// from origin) that set a reference (setParent), whether the other site
// deleted that parent after what ev's source had applied of it and made
// it again.
func (a *Applier) appendParentQueries(ctx context.Context, qs map[string][]DeletedQuery, ev *thlpb.Event, origin string, rc *thlpb.RowChange) map[string][]DeletedQuery {
	if rc.GetAction() == thlpb.RowChange_DELETE || a.rule.policy != PolicyConverge || !a.asks(ev, origin) {
		return qs
	}
	t, err := a.meta.get(ctx, a.conn, rc.GetSchema(), rc.GetTable())
	if err != nil || !t.foreign || t.native() {
		return qs // a table that cannot be read fails the block itself
	}
	m, err := t.mapColumns(rc.GetColumns(), false)
	if err != nil {
		return qs
	}
	fks, err := a.foreignKeys(ctx, t, false)
	if err != nil {
		return qs
	}
	for _, row := range rc.GetRows() {
		for _, f := range fks {
			if key, ok, _ := a.setParent(ctx, t, m, f, rc.GetAction(), row); ok {
				qs = appendAsked(qs, ev, origin, DeletedQuery{Schema: f.refSchema, Table: f.refTable, Key: ReinsertedKey(key), Insert: true})
			}
		}
	}
	return qs
}

// setParent returns the key (parentKey) of the parent row that row, a
// change action of t's rows, sets its reference through f to: an
// INSERT's, or an UPDATE's where its after-image's reference differs from
// its before-image's. ok is false where it sets none.
func (a *Applier) setParent(ctx context.Context, t *table, m *mapping, f foreignKey, action thlpb.RowChange_Action, row *thlpb.Row) (string, bool, error) {
	before, after := row.GetBefore(), row.GetAfter()
	if action == thlpb.RowChange_UPDATE {
		same := true
		for _, col := range f.cols {
			c, ok := t.byName[strings.ToLower(col)]
			i, ok2 := m.pos[c]
			if !ok || !ok2 || i >= len(before) || i >= len(after) || !sameValue(before[i], after[i]) {
				same = false
				break
			}
		}
		if same {
			return "", false, nil
		}
	}
	return a.parentKey(ctx, t, m, f, after)
}

// crossRefs looks, before conflict mode applies an INSERT or UPDATE, for
// the references it sets to parents the other site deleted concurrently
// and made again (setParent, ReinsertedKey): one that cascades, restricts or has no
// action takes the row (refsGone, carried out by refsGo); those that set
// NULL are NULL in w.row's after-image from here on.
func (w *rowWork) crossRefs(ctx context.Context) error {
	if w.action == thlpb.RowChange_DELETE || !w.t.foreign || w.a.rule.policy != PolicyConverge || !w.a.asks(w.ev, w.c.Origin) {
		return nil
	}
	fks, err := w.a.foreignKeys(ctx, w.t, false)
	if err != nil {
		return fmt.Errorf("read the foreign keys of %s.%s: %w", w.t.schema, w.t.name, err)
	}
	var nulls []string
	for _, f := range fks {
		key, ok, err := w.a.setParent(ctx, w.t, w.m, f, w.action, w.row)
		if err != nil || !ok {
			if err != nil {
				return err
			}
			continue
		}
		crossed, err := w.askParent(ctx, f, ReinsertedKey(key))
		if err != nil {
			return err
		}
		switch {
		case !crossed:
		case f.rule == "SET NULL":
			nulls = append(nulls, f.cols...)
		default:
			w.refsGone = true
		}
	}
	if len(nulls) > 0 && !w.refsGone {
		w.row = &thlpb.Row{Before: w.row.GetBefore(), After: w.withNulls(w.row.GetAfter(), nulls)}
		w.refsNulled = true
	}
	return nil
}

// refsGo finishes, where conflict mode writes the row's after-image, a
// change crossRefs found setting a reference to a parent deleted
// concurrently: with a reference that takes the row, the row keyImg's key
// names goes (found: it is here) and done is true; one set NULL is
// written as it is. Recorded as "parent gone" (decided: the row's own
// conflict was, and is recorded so unless the row goes).
func (w *rowWork) refsGo(ctx context.Context, keyImg []*thlpb.Value, found, decided bool) (done bool, err error) {
	if !w.refsGone && !w.refsNulled {
		return false, nil
	}
	if !decided {
		w.c.Kind = KindParent
		if _, err := w.decide(); err != nil {
			return false, err
		}
		w.c.Decision = DecisionApplied
	}
	if !w.refsGone {
		return false, nil
	}
	w.c.Kind, w.c.Decision = KindParent, DecisionKept
	if !found {
		return true, nil
	}
	return true, w.exec(ctx, func(b *builder) error { return b.delete(w.t, w.m.target, w.m.pos, keyImg) })
}

// parentCrossed says whether the other site deleted, concurrently (after
// what the change's source had applied of it), the parent row img refers
// to through f (the index holds deleted rows' keys apart: DeletedKey).
// Asked for either site's changes; false where f's columns are not the
// parent's whole primary key, or one is NULL.
func (w *rowWork) parentCrossed(ctx context.Context, f foreignKey, img []*thlpb.Value) (bool, error) {
	if !w.a.checksChanges() || len(w.ev.GetAfter()) == 0 {
		return false, nil
	}
	key, ok, err := w.a.parentKey(ctx, w.t, w.m, f, img)
	if err != nil || !ok {
		return false, err
	}
	return w.askParent(ctx, f, DeletedKey(key))
}

// askParent asks the other site about the parent row through f whose key
// (parentKey) is asked as key (DeletedKey, ReinsertedKey), after what the
// change's source had applied of it.
func (w *rowWork) askParent(ctx context.Context, f foreignKey, key string) (bool, error) {
	qs := appendAsked(nil, w.ev, originSite(w.ev, w.a.cfg.Service), DeletedQuery{Schema: f.refSchema, Table: f.refTable, Key: key, Insert: true})
	if len(qs) == 0 {
		return false, nil
	}
	return w.a.concurrentChanges(ctx, w.a.conn, qs)
}

// parentKey renders the key (RowKey) of the parent row img, an image of
// t's rows mapped by m, refers to through f, from img's values of f's
// columns in the parent's column order; ok is false unless they are the
// parent's whole primary key, none NULL.
func (a *Applier) parentKey(ctx context.Context, t *table, m *mapping, f foreignKey, img []*thlpb.Value) (string, bool, error) {
	pt, err := a.meta.get(ctx, a.conn, f.refSchema, f.refTable)
	if err != nil {
		return "", false, fmt.Errorf("read the table %s.%s: %w", f.refSchema, f.refTable, err)
	}
	if len(pt.key) != len(f.refCols) {
		return "", false, nil
	}
	var b []byte
	for _, pc := range slices.Sorted(slices.Values(pt.key)) {
		j := slices.IndexFunc(f.refCols, func(name string) bool { return strings.EqualFold(name, pt.columns[pc].name) })
		if j < 0 {
			return "", false, nil
		}
		c, ok := t.byName[strings.ToLower(f.cols[j])]
		i, ok2 := m.pos[c]
		if !ok || !ok2 || i >= len(img) || img[i].GetValue() == nil || img[i].GetNull() {
			return "", false, nil
		}
		if b, ok = appendKeyValue(b, img[i]); !ok {
			return "", false, nil
		}
	}
	return hex.EncodeToString(b), true, nil
}
