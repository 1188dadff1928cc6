package apply

import (
	"context"
	"encoding/hex"
	"errors"
	"slices"
	"strings"

	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

// Unique keys other than the primary key cross too. East inserts row A
// with email x while west inserts row B with x. Under converge east's row
// takes x: where B came first, A's INSERT deletes it (as REPLACE would);
// where A came first, B's INSERT is kept out. Both end with A alone, but
// only while nothing else touches x or B. If east then deletes A, a host
// that met A's INSERT and DELETE before B's INSERT finds x free and would
// insert B, while the others deleted it; if west moves B off x, the hosts
// where B was kept out or deleted would find no row to move, while west's
// own kept B at its new value. Two rules bring every order to one state,
// with no memory of the rows a value displaced:
//
//   - a losing change that takes a unique value (an INSERT; an UPDATE
//     that moves a row onto one) which the other site's rows took
//     concurrently (after what the change's source had applied of it; an
//     INSERT or an UPDATE leaving a row on it) is a unique-key conflict,
//     as if the value were still held: an INSERT is kept out, an UPDATE's
//     row goes (as where the winner displaced it). A value the other site
//     only gave up (a DELETE, a row moved off it) counts for nothing: it
//     was free at the losing change's source, so on every host;
//   - a losing UPDATE whose row is gone while the other site did not
//     change that row concurrently found it displaced or kept out by a
//     unique value, not deleted: it brings the row back from its
//     after-image (recorded, decision applied), unless that image takes
//     a value taken concurrently (above) or held here by another row.
//
// Values compare by their bytes (as primary keys do for the concurrent-
// change check): under a case-insensitive collation, 'X' and 'x' taken
// concurrently are not seen as one value.

// KindUniqueCrossed is a change taking a unique value (other than the
// primary key's) that another site's rows took after what its source had
// applied of that site.
const KindUniqueCrossed = "unique crossed"

// errUniqueCrossed stands for a duplicate-key error: the change takes a
// unique value the other site's rows took concurrently.
var errUniqueCrossed = errors.New("a unique value another site's rows took concurrently")

// UniqueKey renders the values of cols (column names) in img, a row image
// of rc, for the concurrent-change check's index, distinct from any
// RowKey; ok is false when a column is missing or NULL (NULL collides
// with nothing).
func UniqueKey(rc *thlpb.RowChange, cols []string, img []*thlpb.Value) (string, bool) {
	b := []byte("u")
	for _, name := range cols {
		b = append(b, 1)
		b = append(b, name...)
	}
	b = append(b, 1)
	var vals []byte
	for _, name := range cols {
		i := slices.IndexFunc(rc.GetColumns(), func(c *thlpb.Column) bool { return strings.EqualFold(c.GetName(), name) })
		if i < 0 || i >= len(img) || img[i].GetValue() == nil || img[i].GetNull() {
			return "", false
		}
		var ok bool
		if vals, ok = appendKeyValue(vals, img[i]); !ok {
			return "", false
		}
	}
	return string(b) + hex.EncodeToString(vals), true
}

// ChangedUniqueKeys returns the keys (UniqueKey) of the values of cols
// that rc's rows take: their after-images' (an INSERT's, an UPDATE's).
// A row that only gives a value up (a DELETE, an UPDATE moving off it)
// displaces nothing: where the value was free for the other site's
// change, it was free on every host.
func ChangedUniqueKeys(rc *thlpb.RowChange, cols []string) []string {
	if rc.GetAction() == thlpb.RowChange_DELETE {
		return nil
	}
	var out []string
	for _, row := range rc.GetRows() {
		if k, ok := UniqueKey(rc, cols, row.GetAfter()); ok {
			out = append(out, k)
		}
	}
	return out
}

// otherUniqueNames returns the column names of t's unique keys other
// than its key (table.otherUniques, computed once as the table loads).
func (t *table) otherUniqueNames() [][]string {
	var out [][]string
	for _, idx := range t.uniques {
		if slices.Equal(idx, t.key) {
			continue
		}
		names := make([]string, len(idx))
		for i, c := range idx {
			names[i] = t.columns[c].name
		}
		out = append(out, names)
	}
	return out
}

// taken is a unique value a row takes: the key's columns and their
// values (UniqueKey).
type taken struct {
	cols []string
	key  string
}

// takenValues returns the unique values of sets that a row of rc takes:
// every set of its after-image when all (an INSERT, or an UPDATE bringing
// its row back), else those an UPDATE moves its row onto.
func takenValues(rc *thlpb.RowChange, row *thlpb.Row, sets [][]string, all bool) []taken {
	var out []taken
	if rc.GetAction() == thlpb.RowChange_DELETE {
		return nil
	}
	for _, cols := range sets {
		k, ok := UniqueKey(rc, cols, row.GetAfter())
		if !ok {
			continue
		}
		if !all && rc.GetAction() == thlpb.RowChange_UPDATE {
			if was, ok := UniqueKey(rc, cols, row.GetBefore()); ok && was == k {
				continue
			}
		}
		out = append(out, taken{cols, k})
	}
	return out
}

// appendUniqueQueries adds to qs, by site, the questions about the unique
// values of sets a row of rc takes (takenValues): for each other site
// ev's source had applied some of, whether that site's rows took them
// after that.
func appendUniqueQueries(qs map[string][]DeletedQuery, ev *thlpb.Event, origin string, rc *thlpb.RowChange, row *thlpb.Row, sets [][]string, all bool) map[string][]DeletedQuery {
	if len(sets) == 0 {
		return qs
	}
	for _, v := range takenValues(rc, row, sets, all) {
		qs = appendAsked(qs, ev, origin, DeletedQuery{Schema: rc.GetSchema(), Table: rc.GetTable(), Key: v.key, Unique: v.cols})
	}
	return qs
}

// uniqueSets returns the unique keys other than its key of the table rc
// changes, when its rows take unique values (an INSERT or an UPDATE);
// none when the table cannot be read (its change fails on its own).
func (a *Applier) uniqueSets(ctx context.Context, rc *thlpb.RowChange) [][]string {
	if rc.GetAction() == thlpb.RowChange_DELETE {
		return nil
	}
	t, err := a.meta.get(ctx, a.conn, rc.GetSchema(), rc.GetTable())
	if err != nil {
		return nil
	}
	return t.otherUniques
}

// uniqueCrossed says whether conflict mode's row takes a unique value
// (takenValues; all: every one of its after-image) that the other site's
// rows took concurrently.
func (w *rowWork) uniqueCrossed(ctx context.Context, all bool) (bool, error) {
	origin := originSite(w.ev, w.a.cfg.Service)
	if !w.a.asks(w.ev, origin) {
		return false, nil
	}
	qs := appendUniqueQueries(nil, w.ev, origin, w.rc, w.row, w.t.otherUniques, all)
	if len(qs) == 0 {
		return false, nil
	}
	return w.a.concurrentChanges(ctx, w.a.conn, qs)
}

// update applies conflict mode's UPDATE to its row, which holds the
// before-image and no other site changed concurrently; a unique value it
// takes that another row holds, or the other site's rows took
// concurrently, is a unique-key conflict.
func (w *rowWork) update(ctx context.Context) error {
	before := w.row.GetBefore()
	moved, err := w.uniqueCrossed(ctx, false)
	if err != nil {
		return err
	}
	if moved {
		return w.unique(ctx, before, errUniqueCrossed)
	}
	return w.unique(ctx, before, w.exec(ctx, func(b *builder) error { return b.update(w.t, w.m.target, w.m.pos, w.updateRow()) }))
}

// missing resolves a losing UPDATE whose row is gone (kind KindMissing,
// decided to keep the target's state) under converge: unless the other
// site changed that row concurrently (deleted or moved it, which wins),
// the row was displaced or kept out by a unique value, and it comes back
// from the after-image, unless that image takes a unique value taken
// concurrently or held here by another row (a unique-key conflict the
// row loses again).
func (w *rowWork) missing(ctx context.Context) error {
	if w.action != thlpb.RowChange_UPDATE || w.a.rule.policy != PolicyConverge || !w.a.asks(w.ev, originSite(w.ev, w.a.cfg.Service)) {
		return nil
	}
	changed, err := w.a.changedConcurrently(ctx, w.ev, w.rc, w.row)
	if err != nil || changed {
		return err
	}
	crossed, err := w.uniqueCrossed(ctx, true)
	if err != nil {
		return err
	}
	if crossed {
		w.c.Kind = KindUniqueCrossed
		return nil
	}
	if done, err := w.refsGo(ctx, nil, false, true); done || err != nil {
		return err
	}
	err = w.exec(ctx, func(b *builder) error { return b.insert(w.t, w.m.target, []*thlpb.Row{{After: w.row.GetAfter()}}) })
	if isErrNo(err, 1062) || isErrNo(err, 1586) {
		w.c.Kind = KindUnique
		return nil
	}
	if err == nil {
		w.c.Decision = DecisionApplied
	}
	return err
}

// deleteColliding deletes the rows that hold one of the after-image's
// unique values, except the row keep's key names.
func (w *rowWork) deleteColliding(ctx context.Context, keep []*thlpb.Value) error {
	t, pos, after := w.t, w.m.pos, w.row.GetAfter()
	for _, idx := range t.uniques {
		err := w.exec(ctx, func(b *builder) error {
			b.buf = append(b.buf, "DELETE FROM "...)
			b.tableName(t)
			b.buf = append(b.buf, " WHERE "...)
			for n, c := range idx {
				i, ok := pos[c]
				if !ok || after[i].GetValue() == nil || after[i].GetNull() {
					b.buf = b.buf[:0] // NULL collides with nothing
					return nil
				}
				if n > 0 {
					b.buf = append(b.buf, " AND "...)
				}
				b.buf = quoteIdent(b.buf, t.columns[c].name)
				b.buf = append(b.buf, '=')
				if err := b.value(t, c, after[i]); err != nil {
					return err
				}
			}
			if keep != nil {
				b.buf = append(b.buf, " AND NOT ("...)
				if err := b.keyWhere(t, pos, keep); err != nil {
					return err
				}
				b.buf = append(b.buf, ')')
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}
