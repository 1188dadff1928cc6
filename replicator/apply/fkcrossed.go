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
// So a change that sets a reference asks the other site whether it
// deleted that parent concurrently (after what the change's source had
// applied of it) and made it again since (ReinsertedKey; a parent not
// made again is missing, and parentGone resolves it) and, if so, leaves
// the row as the DELETE would: gone (a reference that cascades or
// restricts), or with the reference NULL (SET NULL). Whichever site wins,
// with one exception: east's DELETE is applied where west's child came
// first unless west changed the parent concurrently and wins (the DELETE
// then meets a conflict it loses). So where west wins, the applier asks
// east's THL what east's first such DELETE had applied of west (Config.
// Positions) and west's own stream whether west changed the parent after
// that, before the child's change (originChanged): if so, the child
// stays.
//
// The block path asks the first question with the block's other
// questions (noteRows); a block with such a row goes to conflict mode,
// which asks them of the row (crossRefs) and resolves it where the change
// writes its after-image (refsGo). Converge only, like the rest of the
// foreign-key rules' questions. A reference the change leaves as it was
// is the before-image's, which readRow (SET NULL) and cascaded (the row
// gone) resolve.

// appendParentQueries adds to qs, for the rows of rc (a row change of ev,
// from origin) that set a reference (setParent), whether the other site
// deleted that parent after what ev's source had applied of it and made
// it again.
func (a *Applier) appendParentQueries(ctx context.Context, qs map[string][]DeletedQuery, ev *thlpb.Event, origin string, rc *thlpb.RowChange) map[string][]DeletedQuery {
	if rc.GetAction() == thlpb.RowChange_DELETE || a.rule.policy != PolicyConverge || !a.checksChanges() || len(ev.GetAfter()) == 0 {
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
// and made again (setParent, ReinsertedKey; originChanged where the
// change's site wins): one that cascades, restricts or has no action
// takes the row (refsGone, carried out by refsGo); those that set NULL
// are NULL in w.row's after-image from here on.
func (w *rowWork) crossRefs(ctx context.Context) error {
	if w.action == thlpb.RowChange_DELETE || !w.t.foreign || w.a.rule.policy != PolicyConverge || !w.a.checksChanges() || len(w.ev.GetAfter()) == 0 {
		return nil
	}
	fks, err := w.a.foreignKeys(ctx, w.t, false)
	if err != nil {
		return fmt.Errorf("read the foreign keys of %s.%s: %w", w.t.schema, w.t.name, err)
	}
	var nulls []string
	for _, f := range fks {
		crossed, err := w.setsCrossed(ctx, f)
		switch {
		case err != nil:
			return err
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

// setsCrossed says whether the row sets its reference through f to a
// parent another site's DELETE takes it from where it came first
// (crossRefs).
func (w *rowWork) setsCrossed(ctx context.Context, f foreignKey) (bool, error) {
	key, ok, err := w.a.setParent(ctx, w.t, w.m, f, w.action, w.row)
	if err != nil || !ok {
		return false, err
	}
	crossed, err := w.askParent(ctx, f, ReinsertedKey(key))
	if err != nil || !crossed || !w.a.appliesAnyway(w.c.Origin) {
		return crossed, err
	}
	changed, err := w.originChanged(ctx, f, key)
	return !changed, err
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

// originChanged says, for a change whose site wins and sets a reference
// to the parent row key (parentKey) names through f, which another site
// deleted concurrently and made again, whether the change's site changed
// that parent concurrently with each such site's DELETE: after what its
// first such DELETE had applied of it (PositionsFunc), before the change.
// There the DELETE met a conflict it lost and was not applied, and the
// child stays; a DELETE that met none took the child where it came
// second. Where the answer cannot be had (an older replicator), yes: the
// change applies, as it did.
func (w *rowWork) originChanged(ctx context.Context, f foreignKey, key string) (bool, error) {
	origin, seqno := w.c.Origin, w.ev.GetSeqno()
	if w.a.cfg.Positions == nil || seqno == 0 {
		return true, nil
	}
	for _, dep := range w.ev.GetAfter() {
		svc := dep.GetService()
		if svc == origin {
			continue
		}
		pos, err := w.a.cfg.Positions(ctx, svc, []DeletedQuery{{After: dep.GetSeqno(), Schema: f.refSchema, Table: f.refTable, Key: key, AfterOf: origin}})
		switch {
		case ctx.Err() != nil:
			return false, ctx.Err()
		case err != nil || len(pos) != 1:
			w.a.cfg.Logger.Warn("cannot tell what another site's DELETE of a parent row had applied; the child's change is applied", "site", svc, "error", err)
			return true, nil
		case pos[0] == 0:
			continue // not that site's DELETE
		}
		changed, err := w.a.askDeleted(ctx, origin, []DeletedQuery{{After: pos[0] - 1, UpTo: seqno - 1, Schema: f.refSchema, Table: f.refTable, Key: key}})
		if err != nil {
			return false, err
		}
		if changed != nil && !changed[0] {
			return false, nil // that DELETE met no change of the parent
		}
	}
	return true, nil
}
