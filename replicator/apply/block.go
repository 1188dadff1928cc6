package apply

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

// maxPending is how much SQL a block holds before sending part of it
// ahead of the commit (inside the open database transaction).
const maxPending = 4 << 20

// txn is one source transaction's SQL within a block.
type txn struct {
	last  *thlpb.Event // its last fragment
	start int          // offset of its SQL in block.sql
	stmts []int        // offsets of its statements, for error reports
}

// block is the database transaction being built: several source
// transactions, committed together with the tracking row of the last.
type block struct {
	start time.Time
	sql   []byte
	txs   []txn
	txns  int
	open  *thlpb.Event // the last fragment seen of a transaction still open
	sent  bool         // part of the block was already sent (BEGIN issued)
}

func (b *block) reset() {
	b.sql, b.txs, b.txns, b.open, b.sent = b.sql[:0], b.txs[:0], 0, nil, false
}

func isStatement(ev *thlpb.Event) bool {
	for _, c := range ev.GetChanges() {
		if c.GetStatement() != nil {
			return true
		}
	}
	return false
}

// add puts one event (a whole transaction or a fragment) into the block.
func (a *Applier) add(ctx context.Context, blk *block, ev *thlpb.Event) error {
	if err := a.checkSequence(blk, ev); err != nil {
		return err
	}
	a.mu.Lock()
	skip := a.skip[ev.GetSeqno()]
	a.mu.Unlock()
	if isStatement(ev) && !skip {
		if ev.GetFragno() != 0 || !ev.GetLastFrag() {
			return &Error{Seqno: ev.GetSeqno(), Fragno: ev.GetFragno(), EventID: ev.GetEventId(), Err: errors.New("a statement (DDL) arrived in a fragmented transaction")}
		}
		if blk.txns > 0 {
			if err := a.flush(ctx, blk); err != nil {
				return err
			}
		}
		if err := a.quiesce(ctx); err != nil {
			return err
		}
		if err := a.applyStatements(ctx, ev); err != nil {
			return err
		}
		a.queued = ev
		return nil
	}
	if blk.txns == 0 && blk.open == nil {
		blk.start = time.Now()
	}
	if blk.open == nil {
		blk.txs = append(blk.txs, txn{start: len(blk.sql)})
	}
	tx := &blk.txs[len(blk.txs)-1]
	if !skip {
		start := len(blk.sql)
		bld := builder{meta: a.meta, service: a.cfg.Service, buf: blk.sql, deps: a.deps}
		for _, c := range ev.GetChanges() {
			tx.stmts = append(tx.stmts, len(bld.buf))
			if err := bld.rowChange(ctx, a.conn, c.GetRows()); err != nil {
				return &Error{Seqno: ev.GetSeqno(), Fragno: ev.GetFragno(), EventID: ev.GetEventId(), Err: err}
			}
		}
		blk.sql = bld.buf
		if err := a.fit(ctx, blk, ev, start); err != nil {
			return err
		}
	}
	if !ev.GetLastFrag() {
		blk.open = ev
		if len(blk.sql) > maxPending {
			if err := a.quiesce(ctx); err != nil {
				return err
			}
			return a.sendPart(ctx, blk)
		}
		return nil
	}
	blk.open = nil
	tx.last = ev
	blk.txns++
	a.queued = ev
	return nil
}

func (a *Applier) checkSequence(blk *block, ev *thlpb.Event) error {
	var prev *thlpb.Event
	switch {
	case blk.open != nil:
		prev = blk.open
	case a.queued != nil:
		prev = a.queued
	}
	if prev != nil {
		if blk.open != nil {
			if ev.GetSeqno() != prev.GetSeqno() || ev.GetFragno() != prev.GetFragno()+1 {
				return fmt.Errorf("%w: expected seqno %d fragment %d, got seqno %d fragment %d", ErrSequence, prev.GetSeqno(), prev.GetFragno()+1, ev.GetSeqno(), ev.GetFragno())
			}
			return nil
		}
		if ev.GetSeqno() != prev.GetSeqno()+1 || ev.GetFragno() != 0 {
			return fmt.Errorf("%w: expected seqno %d, got seqno %d fragment %d", ErrSequence, prev.GetSeqno()+1, ev.GetSeqno(), ev.GetFragno())
		}
		return nil
	}
	pos, ok := a.Position()
	if ok && (ev.GetSeqno() != pos.Seqno+1 || ev.GetFragno() != 0) {
		return fmt.Errorf("%w: applied up to seqno %d, next event is seqno %d fragment %d", ErrSequence, pos.Seqno, ev.GetSeqno(), ev.GetFragno())
	}
	return nil
}

// queryOverhead bounds what a commit adds to a block's SQL: BEGIN, the
// tracking row's update, COMMIT.
const queryOverhead = 64 << 10

// fit keeps every query within the database's max_allowed_packet. When
// ev's SQL (blk.sql from start on) makes the block too long for one
// query, the SQL before it is sent ahead, inside the block's database
// transaction; SQL too long on its own (one row near the limit, its
// escaped bytes larger than the row) stops the applier before ev, nothing
// of ev applied.
func (a *Applier) fit(ctx context.Context, blk *block, ev *thlpb.Event, start int) error {
	if len(blk.sql)+queryOverhead <= a.maxQuery {
		return nil
	}
	if n := len(blk.sql) - start; n+queryOverhead > a.maxQuery {
		tooLarge := &Error{Seqno: ev.GetSeqno(), Fragno: ev.GetFragno(), EventID: ev.GetEventId(), Err: fmt.Errorf(
			"%w: its SQL is %d bytes, and this database's max_allowed_packet of %d bytes takes %d at most in one query; raise max_allowed_packet on this host (up to 1G) and put the replicator online",
			ErrTooLarge, n, a.maxQuery, a.maxQuery-queryOverhead)}
		if ev.GetFragno() != 0 || blk.txns == 0 {
			a.rollback()
			return tooLarge
		}
		// Commit the whole transactions before it: the applier stops
		// right before ev.
		blk.sql, blk.txs = blk.sql[:start], blk.txs[:len(blk.txs)-1]
		if err := a.flush(ctx, blk); err != nil {
			return err
		}
		if err := a.quiesce(ctx); err != nil {
			return err
		}
		return tooLarge
	}
	if err := a.quiesce(ctx); err != nil {
		return err
	}
	q := blk.sql[:start]
	if !blk.sent {
		q = append([]byte("BEGIN;"), q...)
	}
	if _, err := a.conn.ExecContext(ctx, string(q)); err != nil {
		a.rollback()
		return a.sqlError(ev, "", err)
	}
	blk.sent = true
	blk.sql = blk.sql[:copy(blk.sql, blk.sql[start:])]
	for i := range blk.txs {
		blk.txs[i].start, blk.txs[i].stmts = 0, nil
	}
	return nil
}

// sendPart sends the SQL built so far of a large open transaction.
func (a *Applier) sendPart(ctx context.Context, blk *block) error {
	q := blk.sql
	if !blk.sent {
		q = append([]byte("BEGIN;"), q...)
	}
	if _, err := a.conn.ExecContext(ctx, string(q)); err != nil {
		a.rollback()
		ev := blk.open
		return a.sqlError(ev, "", err)
	}
	blk.sent = true
	blk.sql = blk.sql[:0]
	blk.txs[len(blk.txs)-1].stmts = nil
	blk.txs[len(blk.txs)-1].start = 0
	return nil
}

// commit sends the block with the tracking update in one round trip.
func (a *Applier) commit(ctx context.Context, blk *block) error {
	last := blk.txs[len(blk.txs)-1].last
	now := a.cfg.Now()
	q := make([]byte, 0, len(blk.sql)+512)
	if !blk.sent {
		q = append(q, "BEGIN;"...)
	}
	q = append(q, blk.sql...)
	q = appendTrackingUpdate(q, a.cfg.Service, last, now)
	q = append(q, "COMMIT"...)
	begin := time.Now()
	_, err := a.conn.ExecContext(ctx, string(q))
	a.timed(time.Since(begin))
	if err != nil {
		a.rollback()
		if blk.sent || len(blk.txs) == 1 || !isSQLError(err) {
			return a.pinpoint(ctx, blk, 0, err)
		}
		// Find the failing transaction: commit them one by one.
		return a.oneByOne(ctx, blk, err)
	}
	a.committed(last, blk.txns, now)
	blk.reset()
	return nil
}

func (a *Applier) committed(last *thlpb.Event, n int, now time.Time) {
	a.applied.Add(uint64(n))
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.skip, last.GetSeqno())
	a.pos = Position{
		Seqno: last.GetSeqno(), Fragno: last.GetFragno(), LastFrag: true, Epoch: last.GetEpoch(),
		EventID: last.GetEventId(), SourceID: last.GetSourceId(), Shard: last.GetShard(),
		UpdateTimestamp: now, ExtractTime: time.UnixMicro(last.GetExtractTimeUs()),
	}
	if t := last.GetSourceCommitTimeUs(); t > 0 {
		a.pos.AppliedLatency = max(0, now.Sub(time.UnixMicro(t)))
	}
	a.hasPos = true
	a.recovery = false
}

// oneByOne commits the block's transactions one at a time, so the failing
// one is known.
func (a *Applier) oneByOne(ctx context.Context, blk *block, first error) error {
	for i, tx := range blk.txs {
		end := len(blk.sql)
		if i+1 < len(blk.txs) {
			end = blk.txs[i+1].start
		}
		now := a.cfg.Now()
		q := append([]byte("BEGIN;"), blk.sql[tx.start:end]...)
		q = appendTrackingUpdate(q, a.cfg.Service, tx.last, now)
		q = append(q, "COMMIT"...)
		if _, err := a.conn.ExecContext(ctx, string(q)); err != nil {
			a.rollback()
			return a.pinpoint(ctx, blk, i, err)
		}
		a.committed(tx.last, 1, now)
	}
	// Applied one by one without error: the first failure was transient.
	blk.reset()
	return nil
}

// pinpoint finds the failing statement of transaction i (executing its
// statements one by one in a transaction it rolls back) for the report.
func (a *Applier) pinpoint(ctx context.Context, blk *block, i int, err error) error {
	tx := blk.txs[i]
	ev := tx.last
	if ev == nil {
		ev = blk.open
	}
	if !isSQLError(err) || blk.sent {
		return a.sqlError(ev, "", err)
	}
	end := len(blk.sql)
	if i+1 < len(blk.txs) {
		end = blk.txs[i+1].start
	}
	failing := ""
	if _, berr := a.conn.ExecContext(ctx, "BEGIN"); berr == nil {
		for k, off := range tx.stmts {
			stop := end
			if k+1 < len(tx.stmts) {
				stop = tx.stmts[k+1]
			}
			stmt := string(blk.sql[off:stop])
			if _, serr := a.conn.ExecContext(ctx, stmt); serr != nil {
				failing, err = stmt, serr
				break
			}
		}
		a.rollback()
	}
	return a.sqlError(ev, failing, err)
}

func (a *Applier) rollback() {
	_, _ = a.conn.ExecContext(context.Background(), "ROLLBACK")
}

func isSQLError(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me)
}

// sqlError turns a database error into an *Error; a lost connection stays
// a plain error (the service reconnects and retries).
func (a *Applier) sqlError(ev *thlpb.Event, stmt string, err error) error {
	if !isSQLError(err) {
		return fmt.Errorf("apply seqno %d: %w", ev.GetSeqno(), err)
	}
	return &Error{Seqno: ev.GetSeqno(), Fragno: ev.GetFragno(), EventID: ev.GetEventId(), SQL: shortSQL(strings.TrimSuffix(stmt, ";")), Err: err}
}

// idempotentDDL are errors a statement re-applied after a crash may
// raise because it ran before the crash: table/database/column exists or
// does not exist.
var idempotentDDL = map[uint16]bool{1007: true, 1008: true, 1050: true, 1051: true, 1060: true, 1091: true, 1061: true, 1146: true}

// applyStatements applies a transaction holding statements (DDL): they
// commit implicitly, so it runs on its own, then records the tracking row.
// A DDL cannot commit atomically with the tracking row: after a crash
// between the two, the statement runs again, and an "already exists"
// error on that first transaction after a restart counts as applied.
func (a *Applier) applyStatements(ctx context.Context, ev *thlpb.Event) error {
	a.meta.clear()
	for _, c := range ev.GetChanges() {
		bld := builder{meta: a.meta, service: a.cfg.Service}
		if st := c.GetStatement(); st != nil {
			if err := a.execStatement(ctx, &bld, st); err != nil {
				return a.statementError(ev, st, err)
			}
			a.meta.clear()
			continue
		}
		if err := bld.rowChange(ctx, a.conn, c.GetRows()); err != nil {
			return &Error{Seqno: ev.GetSeqno(), EventID: ev.GetEventId(), Err: err}
		}
		if _, err := a.conn.ExecContext(ctx, string(bld.buf)); err != nil {
			return a.sqlError(ev, string(bld.buf), err)
		}
	}
	now := a.cfg.Now()
	if _, err := a.conn.ExecContext(ctx, string(appendTrackingUpdate(nil, a.cfg.Service, ev, now))); err != nil {
		return a.sqlError(ev, "", err)
	}
	a.committed(ev, 1, now)
	return nil
}

func (a *Applier) execStatement(ctx context.Context, bld *builder, st *thlpb.Statement) error {
	bld.statement(st)
	_, err := a.conn.ExecContext(ctx, string(bld.buf))
	var me *mysql.MySQLError
	if errors.As(err, &me) && me.Number == 1049 && st.GetSchema() != "" {
		// Its default schema is gone (dropped later on the source, or by
		// this very statement's predecessor): run it without one.
		st2 := &thlpb.Statement{Sql: st.GetSql(), Session: st.GetSession(), Timestamp: st.GetTimestamp()}
		bld.buf = bld.buf[:0]
		bld.statement(st2)
		_, err = a.conn.ExecContext(ctx, string(bld.buf))
	}
	// Back to no default schema, whatever happened.
	_, _ = a.conn.ExecContext(ctx, "SET SESSION sql_mode='"+sessionSQLMode+"'")
	return err
}

func (a *Applier) statementError(ev *thlpb.Event, st *thlpb.Statement, err error) error {
	var me *mysql.MySQLError
	a.mu.Lock()
	recovery := a.recovery
	a.mu.Unlock()
	if errors.As(err, &me) && recovery && idempotentDDL[me.Number] {
		a.cfg.Logger.Warn("statement already applied before the restart; recording it as applied", "seqno", ev.GetSeqno(), "error", err)
		now := a.cfg.Now()
		if _, err := a.conn.ExecContext(context.Background(), string(appendTrackingUpdate(nil, a.cfg.Service, ev, now))); err != nil {
			return a.sqlError(ev, "", err)
		}
		a.committed(ev, 1, now)
		return nil
	}
	return a.sqlError(ev, st.GetSql(), err)
}
