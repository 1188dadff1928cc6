package apply

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

// Conflict mode. A block that met a conflict is rolled back and split
// down to the transaction in conflict (split.go); conflict mode applies
// that one (or every transaction of a block that cannot be split) again,
// one at a time, each in its own database
// transaction on the main connection that commits with its tracking row
// and its conflict records. Every row change is checked there: the target
// row is read by key (SELECT … FOR UPDATE, with the fast path's match
// tests as flags) and a conflict is resolved by the policy (rule in
// conflict.go). A transaction whose fragments are still arriving goes on
// in conflict mode as they come (add). Blocks without conflicts never come
// here.

// resolving is a source transaction being applied in conflict mode.
type resolving struct {
	last    *thlpb.Event // the last fragment applied
	skipped bool         // trepctl online -skip-seqno: record it only
	// ahead counts its leading statements that ran before the block (a
	// DDL commits on its own): they are not run again.
	ahead int
	// records are its conflicts, written with its tracking row; changed
	// the tables it changes rows of (deleted.go).
	records []Conflict
	changed map[[2]string]bool
}

// resolveNext applies ev, the next fragment of the transaction in conflict
// mode.
func (a *Applier) resolveNext(ctx context.Context, ev *thlpb.Event) error {
	prev := a.resolving.last
	if ev.GetSeqno() != prev.GetSeqno() || ev.GetFragno() != prev.GetFragno()+1 {
		a.rollback()
		a.resolving = nil
		return fmt.Errorf("%w: expected seqno %d fragment %d, got seqno %d fragment %d", ErrSequence, prev.GetSeqno(), prev.GetFragno()+1, ev.GetSeqno(), ev.GetFragno())
	}
	return a.resolveEvent(ctx, ev)
}

// resolveEvent applies one fragment in conflict mode, beginning the
// database transaction at the first and committing it at the last.
func (a *Applier) resolveEvent(ctx context.Context, ev *thlpb.Event) error {
	r := a.resolving
	if r.last == nil {
		if _, err := a.conn.ExecContext(ctx, "BEGIN"); err != nil {
			a.resolving = nil
			return a.sqlError(ev, "", err)
		}
	}
	r.last = ev
	if !r.skipped {
		if a.checksChanges() {
			r.changed = addChanges(r.changed, ev)
		}
		for i, c := range ev.GetChanges() {
			var err error
			if st := c.GetStatement(); st != nil {
				if r.ahead > 0 {
					r.ahead--
					continue
				}
				bld := builder{meta: a.meta, service: a.cfg.Service}
				bld.statement(st)
				if _, err = a.conn.ExecContext(ctx, string(bld.buf)); err != nil {
					err = a.sqlError(ev, st.GetSql(), err)
				}
			} else if rc := c.GetRows(); rc != nil {
				err = a.resolveRows(ctx, ev, i, rc)
			}
			if err != nil {
				a.rollback()
				a.resolving = nil
				return err
			}
		}
	}
	if !ev.GetLastFrag() {
		return nil
	}
	return a.resolveCommit(ctx, ev)
}

// resolveCommit commits the transaction in conflict mode, ending at ev,
// with its conflict records and tracking row.
func (a *Applier) resolveCommit(ctx context.Context, ev *thlpb.Event) error {
	r := a.resolving
	a.resolving = nil
	var q []byte
	for i := range r.records {
		q = appendConflictInsert(q, a.cfg.Service, &r.records[i])
	}
	now := a.cfg.Now()
	q = append(appendCommitTracking(q, a.cfg.Service, r.changed, ev, now), "COMMIT"...)
	if _, err := a.conn.ExecContext(ctx, string(q)); err != nil {
		a.rollback()
		return a.sqlError(ev, "", err)
	}
	a.committed(ev, 1, now)
	if a.queued == nil || ev.GetSeqno() > a.queued.GetSeqno() {
		// A transaction that ended in conflict mode is the last handed
		// over (a failed parallel block's is older than that).
		a.queued = ev
	}
	a.conflicts.Add(uint64(len(r.records)))
	for i := range r.records {
		a.cfg.Logger.Warn("conflict resolved", "seqno", ev.GetSeqno(), "table", r.records[i].Schema+"."+r.records[i].Table,
			"key", r.records[i].Key, "kind", r.records[i].Kind, "policy", string(r.records[i].Policy), "decision", string(r.records[i].Decision))
		if f := a.cfg.Conflicts.OnConflict; f != nil {
			f(r.records[i])
		}
	}
	if a.afterResolve != nil {
		return a.afterResolve(ev.GetSeqno())
	}
	return nil
}

// resolveRows applies one row change in conflict mode.
func (a *Applier) resolveRows(ctx context.Context, ev *thlpb.Event, change int, rc *thlpb.RowChange) error {
	t, err := a.meta.get(ctx, a.conn, rc.GetSchema(), rc.GetTable())
	if err != nil {
		return &Error{Seqno: ev.GetSeqno(), Fragno: ev.GetFragno(), EventID: ev.GetEventId(), Err: err}
	}
	if t.native() {
		return a.resolveNative(ctx, ev, t, rc)
	}
	m, err := t.mapColumns(rc.GetColumns(), false)
	if err != nil {
		return &Error{Seqno: ev.GetSeqno(), Fragno: ev.GetFragno(), EventID: ev.GetEventId(), Err: err}
	}
	if rc.GetNoForeignKeyChecks() {
		if _, err := a.conn.ExecContext(ctx, "SET SESSION foreign_key_checks=0"); err != nil {
			return a.sqlError(ev, "", err)
		}
		defer func() { _, _ = a.conn.ExecContext(context.Background(), "SET SESSION foreign_key_checks=1") }()
	}
	for n, row := range rc.GetRows() {
		if parts := movedParts(t, rc, row); parts != nil && t.keyed(m.pos) && a.rule.policy == PolicyConverge {
			// An UPDATE moving its row to another key: a DELETE and an
			// INSERT (moved.go).
			for _, p := range parts {
				if err := a.resolveRow(ctx, ev, change, n, t, m, p, p.GetRows()[0]); err != nil {
					return err
				}
			}
			continue
		}
		if err := a.resolveRow(ctx, ev, change, n, t, m, rc, row); err != nil {
			return err
		}
	}
	return nil
}

// resolveRow applies row n of change (rc's row) in conflict mode.
func (a *Applier) resolveRow(ctx context.Context, ev *thlpb.Event, change, n int, t *table, m *mapping, rc *thlpb.RowChange, row *thlpb.Row) error {
	rw := &rowWork{a: a, ev: ev, rc: rc, t: t, m: m, row: row, action: rc.GetAction()}
	rw.c = Conflict{Seqno: ev.GetSeqno(), Fragno: ev.GetFragno(), Change: change, Row: n, Origin: originSite(ev, a.cfg.Service),
		Schema: t.schema, Table: t.name, Action: rc.GetAction().String(), Policy: a.rule.policy}
	if ts := ev.GetSourceCommitTimeUs(); ts > 0 {
		rw.c.SourceCommit = time.UnixMicro(ts)
	}
	if err := rw.check(); err != nil {
		return &Error{Seqno: ev.GetSeqno(), Fragno: ev.GetFragno(), EventID: ev.GetEventId(), Err: err}
	}
	if err := rw.applyFK(ctx); err != nil {
		var ce *ConflictError
		if errors.As(err, &ce) && a.cfg.Conflicts.OnConflict != nil {
			a.cfg.Conflicts.OnConflict(ce.Conflict)
		}
		if errors.As(err, &ce) || !isSQLError(err) {
			return &Error{Seqno: ev.GetSeqno(), Fragno: ev.GetFragno(), EventID: ev.GetEventId(), Err: err}
		}
		return a.sqlError(ev, rw.stmt, err)
	}
	if rw.recorded {
		a.resolving.records = append(a.resolving.records, rw.c)
	}
	return nil
}

// resolveNative applies a row change from its source events (a table
// with triggers or system versioning here: SQL would fire the triggers
// again, or could not write the history). The server finds rows by key:
// it reports a row it does not find or a duplicate key, which no policy
// can resolve here.
func (a *Applier) resolveNative(ctx context.Context, ev *thlpb.Event, t *table, rc *thlpb.RowChange) error {
	bld := builder{meta: a.meta, service: a.cfg.Service}
	if err := bld.binlogRows(t, rc); err != nil {
		return &Error{Seqno: ev.GetSeqno(), Fragno: ev.GetFragno(), EventID: ev.GetEventId(), Err: err}
	}
	bld.flushBinlog()
	_, err := a.conn.ExecContext(ctx, string(bld.buf))
	if err == nil {
		return nil
	}
	if !isConflictSignal(err) {
		return a.sqlError(ev, "", err)
	}
	c := Conflict{Seqno: ev.GetSeqno(), Fragno: ev.GetFragno(), Origin: originSite(ev, a.cfg.Service), Schema: t.schema, Table: t.name,
		Key: "(not known)", Action: rc.GetAction().String(), Kind: KindMissing, Policy: a.rule.policy, Decision: DecisionStopped}
	if isErrNo(err, 1062) || isErrNo(err, 1586) {
		c.Kind = KindExists
	}
	ce := &ConflictError{Conflict: c, Why: fmt.Sprintf("the server said %v; rows of %s.%s are applied from the source's binlog events (it has triggers or system versioning here), "+
		"where no conflict policy but stop applies: make the rows what they should be with sql_log_bin=0 and put the service online, or skip the transaction (trepctl online -skip-seqno %d)",
		err, t.schema, t.name, ev.GetSeqno())}
	if f := a.cfg.Conflicts.OnConflict; f != nil {
		f(c)
	}
	return &Error{Seqno: ev.GetSeqno(), Fragno: ev.GetFragno(), EventID: ev.GetEventId(), Err: ce}
}

// originSite is the site whose clients made ev's changes.
func originSite(ev *thlpb.Event, service string) string {
	if o := ev.GetOriginService(); o != "" {
		return o
	}
	return service
}

// rowWork is one row of a row change in conflict mode.
type rowWork struct {
	a        *Applier
	ev       *thlpb.Event
	rc       *thlpb.RowChange
	t        *table
	m        *mapping
	row      *thlpb.Row
	action   thlpb.RowChange_Action
	c        Conflict
	recorded bool     // c is a conflict to record
	nulled   []string // references readRow found NULL, set by a parent's DELETE
	// refsGone, refsNulled: the change sets references to parents the
	// other site deleted concurrently (crossRefs).
	refsGone, refsNulled bool
	stmt                 string // the statement that failed, for errors
}

// check validates the row's images against the mapping.
func (w *rowWork) check() error {
	n := len(w.m.target)
	before, after := w.row.GetBefore(), w.row.GetAfter()
	switch {
	case w.action != thlpb.RowChange_INSERT && len(before) != n,
		w.action != thlpb.RowChange_DELETE && len(after) != n:
		return fmt.Errorf("a row of %s.%s has %d/%d values for %d columns", w.t.schema, w.t.name, len(before), len(after), n)
	}
	return nil
}

// apply carries out the row's change, resolving a conflict by the policy.
func (w *rowWork) apply(ctx context.Context) error {
	t, pos := w.t, w.m.pos
	w.c.Before, w.c.After = imageJSON(t, w.m.target, w.row.GetBefore()), imageJSON(t, w.m.target, w.row.GetAfter())
	if t.keyed(pos) {
		if err := w.crossRefs(ctx); err != nil {
			return err
		}
	}
	before, after := w.row.GetBefore(), w.row.GetAfter()
	keyImg := before
	if w.action == thlpb.RowChange_INSERT {
		keyImg, w.c.Before = after, ""
	}
	if w.action == thlpb.RowChange_DELETE {
		w.c.After = ""
	}
	w.c.Key = keyText(t, pos, keyImg)
	if !t.keyed(pos) {
		return w.keyless(ctx)
	}
	found, same, vals, err := w.readRow(ctx, keyImg)
	if err != nil {
		return err
	}
	if found {
		w.c.Target = targetJSON(t, w.m.target, vals)
	}
	switch {
	case w.action == thlpb.RowChange_INSERT && found && same:
		return nil // the row is there as the source made it: nothing to do
	case w.action == thlpb.RowChange_INSERT && found:
		w.c.Kind = KindExists
	case w.action == thlpb.RowChange_INSERT:
		// The key is free, and locked: was it deleted concurrently by
		// another site (deleted.go)?
		deleted, err := w.a.changedConcurrently(ctx, w.ev, w.rc, w.row)
		if err != nil {
			return err
		}
		w.c.Kind = KindDeleted
		if !deleted {
			// Its unique values: held concurrently by the other site's
			// rows (uniquecross.go)?
			crossed, err := w.uniqueCrossed(ctx, true)
			if err != nil {
				return err
			}
			if !crossed {
				if done, err := w.refsGo(ctx, keyImg, false, false); done || err != nil {
					return err
				}
				return w.unique(ctx, nil, w.exec(ctx, func(b *builder) error { return b.insert(t, w.m.target, []*thlpb.Row{w.row}) }))
			}
			w.c.Kind = KindUniqueCrossed
		}
	case !found:
		w.c.Kind = KindMissing
		if gone, err := w.cascaded(ctx); err != nil || gone {
			return err // taken by the other site's DELETE of its parent
		}
	case !same:
		w.c.Kind = KindChanged
	default:
		// The row holds the before-image, and is locked: did another
		// site change it concurrently all the same (deleted.go)?
		crossed, err := w.a.changedConcurrently(ctx, w.ev, w.rc, w.row)
		if err != nil {
			return err
		}
		switch {
		case crossed:
			w.c.Kind = KindConcurrent
		case w.action == thlpb.RowChange_DELETE:
			return w.exec(ctx, func(b *builder) error { return b.delete(t, w.m.target, pos, before) })
		default:
			if done, err := w.refsGo(ctx, before, true, false); done || err != nil {
				return err
			}
			return w.update(ctx)
		}
	}
	over, err := w.decide()
	if err == nil && !over && w.c.Kind == KindMissing {
		return w.missing(ctx)
	}
	if err != nil || !over {
		return err
	}
	if done, err := w.refsGo(ctx, keyImg, found, true); done || err != nil {
		return err
	}
	switch {
	case w.action == thlpb.RowChange_DELETE && found:
		return w.exec(ctx, func(b *builder) error { return b.delete(t, w.m.target, pos, before) })
	case w.action == thlpb.RowChange_DELETE:
		return nil // gone already
	case found && w.action == thlpb.RowChange_UPDATE:
		// Overwrite in place (an UPDATE by key, never a delete that would
		// cascade), taking the row's columns to the after-image.
		return w.overwriteUnique(ctx, true, w.exec(ctx, func(b *builder) error { return b.update(t, w.m.target, pos, w.row) }))
	default:
		// An INSERT over a row with other values, or an UPDATE of a row
		// this database no longer has: the after-image, by key.
		return w.overwriteUnique(ctx, false, w.exec(ctx, func(b *builder) error { return b.upsert(t, w.m.target, after) }))
	}
}

// decide applies the policy to w's conflict: overwrite or keep; a
// *ConflictError to stop.
func (w *rowWork) decide() (bool, error) {
	over, _, err := w.a.rule.overwrite(w.c.Origin)
	if err != nil {
		w.c.Decision = DecisionStopped
		w.c.DetectedAt = w.a.cfg.Now()
		why := ""
		if !errors.Is(err, errStop) {
			why = err.Error()
		}
		return false, &ConflictError{Conflict: w.c, Why: why}
	}
	w.recorded, w.c.DetectedAt = true, w.a.cfg.Now()
	w.c.Decision = DecisionKept
	if over {
		w.c.Decision = DecisionApplied
	}
	return over, nil
}

// unique resolves a duplicate key raised by a change whose own row
// matched (err, the change's outcome): the change collides with another
// row on a unique key. keep is the image whose key names the change's own
// row (nil for an INSERT).
func (w *rowWork) unique(ctx context.Context, keep []*thlpb.Value, err error) error {
	if err == nil || !(isErrNo(err, 1062) || isErrNo(err, 1586) || errors.Is(err, errUniqueCrossed)) {
		return err
	}
	w.c.Kind = KindUnique
	if errors.Is(err, errUniqueCrossed) {
		w.c.Kind = KindUniqueCrossed
	}
	over, derr := w.decide()
	if derr != nil {
		return derr
	}
	if !over {
		// Converge: a losing UPDATE's row goes. Where it came first, the
		// winning change found the row holding its unique value and
		// deleted it (as REPLACE, deleteColliding); kept here at its old
		// values, the hosts would end different.
		if w.action == thlpb.RowChange_UPDATE && keep != nil && w.a.rule.policy == PolicyConverge {
			return w.exec(ctx, func(b *builder) error { return b.delete(w.t, w.m.target, w.m.pos, keep) })
		}
		return nil
	}
	if err := w.deleteColliding(ctx, keep); err != nil {
		return err
	}
	if w.action == thlpb.RowChange_INSERT {
		return w.exec(ctx, func(b *builder) error { return b.insert(w.t, w.m.target, []*thlpb.Row{w.row}) })
	}
	return w.exec(ctx, func(b *builder) error { return b.update(w.t, w.m.target, w.m.pos, w.row) })
}

// overwriteUnique finishes an overwrite (err, its outcome): when it
// collided with other rows on a unique key, the winning change takes the
// values, as REPLACE would, and those rows go. inPlace: it was an UPDATE
// of the row by its before-image's key (done again), else an upsert of the
// after-image.
func (w *rowWork) overwriteUnique(ctx context.Context, inPlace bool, err error) error {
	if err == nil || !(isErrNo(err, 1062) || isErrNo(err, 1586)) {
		return err
	}
	if inPlace {
		if err := w.deleteColliding(ctx, w.row.GetBefore()); err != nil {
			return err
		}
		return w.exec(ctx, func(b *builder) error { return b.update(w.t, w.m.target, w.m.pos, w.row) })
	}
	if err := w.deleteColliding(ctx, w.row.GetAfter()); err != nil {
		return err
	}
	return w.exec(ctx, func(b *builder) error { return b.upsert(w.t, w.m.target, w.row.GetAfter()) })
}

// keyless applies a change to a table without a usable key: the fast
// path's statement (every column matched, LIMIT 1) must touch one row.
func (w *rowWork) keyless(ctx context.Context) error {
	t, pos := w.t, w.m.pos
	var res sql.Result
	var err error
	switch w.action {
	case thlpb.RowChange_INSERT:
		err = w.exec(ctx, func(b *builder) error { return b.insert(t, w.m.target, []*thlpb.Row{w.row}) })
		return w.unique(ctx, nil, err)
	case thlpb.RowChange_UPDATE:
		res, err = w.execResult(ctx, func(b *builder) error { return b.update(t, w.m.target, pos, w.row) })
	default:
		res, err = w.execResult(ctx, func(b *builder) error { return b.delete(t, w.m.target, pos, w.row.GetBefore()) })
	}
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return nil
	}
	w.c.Kind = KindMissing
	if w.a.rule.policy == PolicyConverge {
		// Without a key no rule can tell which row the other site's
		// change made of this one, so none converges.
		w.c.Decision, w.c.DetectedAt = DecisionStopped, w.a.cfg.Now()
		return &ConflictError{Conflict: w.c, Why: fmt.Sprintf("%s.%s has no primary key, so the converge policy cannot tell which row the change meant; "+
			"add a primary key, make the row what it should be with sql_log_bin=0 and put the service online", t.schema, t.name)}
	}
	over, err := w.decide()
	if err != nil || !over || w.action == thlpb.RowChange_DELETE {
		return err
	}
	return w.exec(ctx, func(b *builder) error {
		return b.insert(t, w.m.target, []*thlpb.Row{{After: w.row.GetAfter()}})
	})
}

// readTarget reads the row keyImg's key names, locking it: found, whether
// every column other than the key holds cmp's value (the fast path's
// match tests), and its values as text (ENUM, SET and BIT as numbers).
func (w *rowWork) readTarget(ctx context.Context, keyImg, cmp []*thlpb.Value) (found, same bool, vals []sql.RawBytes, err error) {
	t, target := w.t, w.m.target
	b := &builder{meta: w.a.meta, service: w.a.cfg.Service}
	b.buf = append(b.buf, "SELECT 1"...)
	flags := 0
	for i, j := range target {
		if j < 0 || t.isKey(j) {
			continue
		}
		b.buf = append(b.buf, ",("...)
		if err := b.match(t, j, cmp[i], true); err != nil {
			return false, false, nil, err
		}
		b.buf = append(b.buf, ')')
		flags++
	}
	written := 0
	for _, j := range target {
		if j < 0 {
			continue
		}
		b.buf = append(b.buf, ',')
		b.buf = quoteIdent(b.buf, t.columns[j].name)
		if readsAsNumber(&t.columns[j]) {
			b.buf = append(b.buf, "+0"...)
		}
		written++
	}
	b.buf = append(b.buf, " FROM "...)
	b.tableName(t)
	b.buf = append(b.buf, " WHERE "...)
	if err := b.keyWhere(t, w.m.pos, keyImg); err != nil {
		return false, false, nil, err
	}
	b.buf = append(b.buf, " FOR UPDATE"...)
	w.stmt = string(b.buf)
	rows, err := w.a.conn.QueryContext(ctx, w.stmt)
	if err != nil {
		return false, false, nil, err
	}
	defer rows.Close()
	if !rows.Next() {
		return false, false, nil, rows.Err()
	}
	dest := make([]any, 1+flags+written)
	var one int
	dest[0] = &one
	fl := make([]sql.NullInt64, flags)
	for i := range fl {
		dest[1+i] = &fl[i]
	}
	vs := make([]sql.NullString, written)
	for i := range vs {
		dest[1+flags+i] = &vs[i]
	}
	if err := rows.Scan(dest...); err != nil {
		return false, false, nil, err
	}
	same = true
	for _, f := range fl {
		same = same && f.Valid && f.Int64 == 1
	}
	vals = make([]sql.RawBytes, written)
	for i, v := range vs {
		if v.Valid {
			vals[i] = sql.RawBytes(v.String)
		}
	}
	return true, same, vals, rows.Err()
}

// upsert appends an INSERT of the after-image that, where its key (or a
// unique value) is taken, updates that row to it instead.
func (b *builder) upsert(t *table, target []int, after []*thlpb.Value) error {
	if err := b.insert(t, target, []*thlpb.Row{{After: after}}); err != nil {
		return err
	}
	b.buf = trimSemicolon(b.buf)
	b.buf = append(b.buf, " ON DUPLICATE KEY UPDATE "...)
	return b.columns(target, ",", func(_, j int) error {
		b.buf = quoteIdent(b.buf, t.columns[j].name)
		b.buf = append(b.buf, "=VALUES("...)
		b.buf = quoteIdent(b.buf, t.columns[j].name)
		b.buf = append(b.buf, ')')
		return nil
	})
}

// exec runs the statement f builds.
func (w *rowWork) exec(ctx context.Context, f func(b *builder) error) error {
	_, err := w.execResult(ctx, f)
	return err
}

func (w *rowWork) execResult(ctx context.Context, f func(b *builder) error) (sql.Result, error) {
	b := &builder{meta: w.a.meta, service: w.a.cfg.Service}
	if err := f(b); err != nil {
		return nil, err
	}
	if len(b.buf) == 0 {
		return nil, nil
	}
	w.stmt = string(b.buf)
	return w.a.conn.ExecContext(ctx, w.stmt)
}
