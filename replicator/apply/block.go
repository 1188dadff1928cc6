package apply

import (
	"context"
	"errors"
	"fmt"
	"strconv"
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
	last       *thlpb.Event // its last fragment
	start      int          // offset of its SQL in block.sql
	stmts      []int        // offsets of its statements, for error reports
	statements bool         // it ran statements (DDL) ahead of the block
	// ahead counts those statements, which conflict mode does not run
	// again.
	ahead int
	// skipped: trepctl online -skip-seqno; recorded, not applied.
	skipped bool
	// events are its fragments, kept for conflict mode while they weigh
	// less than retainMax as stored (retained); dropped: they weighed
	// more and are gone.
	first    *thlpb.Event
	events   []*thlpb.Event
	retained int
	dropped  bool
}

// retainMax bounds the THL bytes of one transaction a block keeps to
// apply it again in conflict mode.
const retainMax = 64 << 20

// block is the database transaction being built: several source
// transactions, committed together with the tracking row of the last.
type block struct {
	start  time.Time
	sql    []byte
	txs    []txn
	txns   int
	open   *thlpb.Event // the last fragment seen of a transaction still open
	sent   bool         // part of the block was already sent (BEGIN issued)
	serial bool         // it holds a statement: no parallel apply
	// questions are its rows to ask another site about, by site,
	// before it commits; changed the tables it changes rows of, marked
	// as it commits (deleted.go).
	questions map[string][]DeletedQuery
	changed   map[[2]string]bool
	marks     marks // BINLOG statement cuts, guards and checks in sql
	known     known // the rows it changes, by identity (verify.go)
}

func (b *block) reset() {
	clear(b.txs) // their retained events
	b.sql, b.txs, b.txns, b.open, b.sent, b.serial = b.sql[:0], b.txs[:0], 0, nil, false, false
	clear(b.questions)
	clear(b.changed)
	b.marks.reset()
	clear(b.known)
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
//
// A statement (DDL) commits implicitly, so it runs on its own, on the main
// connection, once everything before it has committed; the rows that
// follow it in its transaction (CREATE TABLE … SELECT) go into the block
// like any rows and commit with the tracking row at the transaction's
// end, right away. A statement after rows of its transaction runs inside
// the block's database transaction. So every binlog group the applier
// writes either writes the tracking schema or is a statement carrying the
// origin marks.
func (a *Applier) add(ctx context.Context, blk *block, ev *thlpb.Event, size int) error {
	if a.resolving != nil {
		return a.resolveNext(ctx, ev)
	}
	if err := a.checkSequence(blk, ev); err != nil {
		return err
	}
	a.mu.Lock()
	skip := a.skip[ev.GetSeqno()]
	a.mu.Unlock()
	withStatements := isStatement(ev) && !skip
	if withStatements && blk.open == nil && blk.txns > 0 {
		if err := a.flush(ctx, blk); err != nil {
			return err
		}
	}
	if blk.txns == 0 && blk.open == nil {
		blk.start = time.Now()
	}
	if !skip {
		a.noteRows(ctx, blk, ev)
		a.noteChanges(blk, ev)
	}
	if blk.open == nil {
		blk.txs = append(blk.txs, txn{start: len(blk.sql), first: ev, skipped: skip})
	}
	tx := &blk.txs[len(blk.txs)-1]
	tx.retain(ev, size)
	if !skip {
		start := len(blk.sql)
		if a.detect && blk.known == nil {
			blk.known = known{}
		}
		bld := builder{meta: a.meta, service: a.cfg.Service, buf: blk.sql, deps: a.deps, marks: blk.marks, known: blk.known,
			binlogAll: a.cfg.BinlogRows || a.touchesTriggers(ctx, ev), detect: a.detect}
		for i, c := range ev.GetChanges() {
			if st := c.GetStatement(); st != nil && (len(bld.buf) > tx.start || blk.sent) {
				// After rows of its transaction: DML a session logged as a
				// statement (binlog_format=MIXED); MariaDB logs no DDL
				// there (a DDL commits what precedes it first). It runs
				// in the block's transaction, atomic with the rows, and
				// the block commits serially: its rows are unknown.
				tx.stmts = append(tx.stmts, len(bld.buf))
				bld.statement(st)
				blk.serial = true
				continue
			}
			if st := c.GetStatement(); st != nil {
				bld.flushBinlog()
				blk.sql, blk.marks = bld.buf, bld.marks
				last := ev.GetLastFrag() && i == len(ev.GetChanges())-1
				if err := a.statementInBlock(ctx, blk, ev, st, last); err != nil {
					return err
				}
				if last { // it recorded its transaction too
					blk.txs = blk.txs[:len(blk.txs)-1]
					blk.open = nil
					a.queued = ev
					return nil
				}
				tx.statements = true
				tx.ahead++
				continue
			}
			tx.stmts = append(tx.stmts, len(bld.buf))
			if err := bld.rowChange(ctx, a.conn, c.GetRows()); err != nil {
				return &Error{Seqno: ev.GetSeqno(), Fragno: ev.GetFragno(), EventID: ev.GetEventId(), Err: err}
			}
		}
		bld.flushBinlog()
		blk.sql, blk.marks = bld.buf, bld.marks
		if err := a.fit(ctx, blk, ev, start); err != nil {
			if errors.Is(err, errResolved) {
				return nil
			}
			return err
		}
	}
	if !ev.GetLastFrag() {
		blk.open = ev
		if len(blk.sql) > maxPending {
			if err := a.quiesce(ctx); err != nil {
				return err
			}
			if err := a.sendPart(ctx, blk); !errors.Is(err, errResolved) {
				return err
			}
		}
		return nil
	}
	blk.open = nil
	tx.last = ev
	blk.txns++
	a.queued = ev
	if tx.statements {
		// Its statements are in the database already: record it now.
		return a.flush(ctx, blk)
	}
	return nil
}

// retain keeps ev for conflict mode, while the transaction's events weigh
// less than retainMax.
func (tx *txn) retain(ev *thlpb.Event, size int) {
	if tx.dropped {
		return
	}
	tx.retained += size
	if tx.retained > retainMax {
		tx.events, tx.dropped = nil, true
		return
	}
	tx.events = append(tx.events, ev)
}

// touchesTriggers reports whether a row change of ev is on a table with
// triggers here: then all its row changes are applied from their source
// events, in one BINLOG statement, instead of one per trigger table
// between SQL statements.
func (a *Applier) touchesTriggers(ctx context.Context, ev *thlpb.Event) bool {
	for _, c := range ev.GetChanges() {
		if rc := c.GetRows(); rc != nil {
			if t, err := a.meta.get(ctx, a.conn, rc.GetSchema(), rc.GetTable()); err == nil && t.native() {
				return true
			}
		}
	}
	return false
}

// statementInBlock runs st of ev, the transaction open in blk, before
// any of its rows; last says it ends the transaction.
func (a *Applier) statementInBlock(ctx context.Context, blk *block, ev *thlpb.Event, st *thlpb.Statement, last bool) error {
	if err := a.quiesce(ctx); err != nil {
		return err
	}
	now := a.cfg.Now()
	var tracking []byte
	if last {
		tracking = appendCommitTracking(nil, a.cfg.Service, blk.changed, ev, now)
	} else {
		tracking = appendTrackingTouch(nil, a.cfg.Service)
	}
	a.meta.clear()
	bld := builder{meta: a.meta, service: a.cfg.Service}
	err := a.execStatement(ctx, &bld, st, tracking)
	a.meta.clear()
	var me *mysql.MySQLError
	a.mu.Lock()
	recovery := a.recovery
	a.mu.Unlock()
	switch {
	case err == nil:
	case errors.As(err, &me) && recovery && idempotentDDL[me.Number]:
		// It ran before a restart that came before its tracking row
		// (a DDL cannot commit with it); what follows it did not.
		a.cfg.Logger.Warn("statement already applied before the restart; going on with the rest of its transaction", "seqno", ev.GetSeqno(), "error", err)
		if !last {
			return nil
		}
		if _, err := a.conn.ExecContext(ctx, string(tracking)); err != nil {
			return a.sqlError(ev, "", err)
		}
	default:
		return a.sqlError(ev, st.GetSql(), err)
	}
	if last {
		a.committed(ev, 1, now)
	}
	return nil
}

// idempotentDDL are errors a statement re-applied after a crash may
// raise because it ran before the crash: table/database/column exists or
// does not exist.
var idempotentDDL = map[uint16]bool{1007: true, 1008: true, 1050: true, 1051: true, 1060: true, 1091: true, 1061: true, 1146: true}

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
		blk.sql, blk.txs, blk.marks = blk.sql[:start], blk.txs[:len(blk.txs)-1], blk.marks.before(start)
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
	if err := a.send(ctx, a.conn, script{begin: !blk.sent, sql: blk.sql, to: start, marks: blk.marks, compound: a.compoundFor(blk), check: a.detect, guard: a.guard}); err != nil {
		a.rollback()
		if a.detect && isConflictSignal(err) {
			return a.resolved(a.resolveBlock(ctx, blk, err))
		}
		return a.sqlError(ev, "", err)
	}
	blk.sent = true
	blk.sql = blk.sql[:copy(blk.sql, blk.sql[start:])]
	blk.marks = blk.marks.after(start)
	for i := range blk.txs {
		blk.txs[i].start, blk.txs[i].stmts = 0, nil
	}
	return nil
}

// checkGuard is the guard a multi-statement script of this applier
// carries: none when detection is off.
func (a *Applier) checkGuard() string {
	if !a.detect {
		return ""
	}
	return a.guard
}

// resolved is errResolved when conflict mode took the block (err nil).
func (a *Applier) resolved(err error) error {
	if err != nil {
		return err
	}
	return errResolved
}

// sendPart sends the SQL built so far of a large open transaction.
func (a *Applier) sendPart(ctx context.Context, blk *block) error {
	if err := a.send(ctx, a.conn, script{begin: !blk.sent, sql: blk.sql, to: len(blk.sql), marks: blk.marks, compound: a.compoundFor(blk), check: a.detect, guard: a.guard}); err != nil {
		a.rollback()
		if a.detect && isConflictSignal(err) {
			return a.resolved(a.resolveBlock(ctx, blk, err))
		}
		ev := blk.open
		return a.sqlError(ev, "", err)
	}
	blk.sent = true
	blk.sql = blk.sql[:0]
	blk.marks.reset()
	blk.txs[len(blk.txs)-1].stmts = nil
	blk.txs[len(blk.txs)-1].start = 0
	return nil
}

// commit sends the block with the tracking update in one round trip; in
// two when it changes rows another site may have changed concurrently
// (where its statement's guard says so, when compound): the question is
// asked between them, holding the rows' locks (deleted.go), and a yes
// applies the block in conflict mode.
func (a *Applier) commit(ctx context.Context, blk *block) error {
	last := blk.txs[len(blk.txs)-1].last
	now := a.cfg.Now()
	a.tail = append(appendCommitTracking(a.tail[:0], a.cfg.Service, blk.changed, last, now), "COMMIT"...)
	begin := time.Now()
	s := script{begin: !blk.sent, sql: blk.sql, to: len(blk.sql), marks: blk.marks, tail: a.tail,
		compound: a.compoundFor(blk), check: a.detect, guard: a.guard}
	if len(blk.questions) > 0 && !s.compound {
		s.tail = nil // committed after the question
	}
	ask, err := a.sendAsking(ctx, a.conn, s, blk.questions)
	if err == nil && ask {
		var hit bool
		if hit, err = a.concurrentChanges(ctx, a.conn, blk.questions); err != nil {
			a.rollback()
			return err
		}
		if hit {
			a.rollback()
			return a.resolveBlock(ctx, blk, errConcurrentChange)
		}
		_, err = a.conn.ExecContext(ctx, string(a.tail))
	}
	a.timed(time.Since(begin))
	if err != nil {
		a.rollback()
		if a.detect && isConflictSignal(err) {
			return a.resolveBlock(ctx, blk, err)
		}
		if blk.sent || len(blk.txs) == 1 || !isSQLError(err) {
			return a.pinpoint(ctx, blk, 0, err)
		}
		// Find the failing transaction: commit them one by one. Detecting
		// conflicts, in conflict mode: a row a transaction changes after
		// an earlier one of the block (not verified again) is unlocked
		// between their commits.
		if a.detect {
			return a.resolveBlock(ctx, blk, err)
		}
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
		suffix := string(append(appendCommitTracking(nil, a.cfg.Service, blk.changed, tx.last, now), "COMMIT"...))
		if err := execCut(ctx, a.conn, "BEGIN;", blk.sql, tx.start, end, blk.marks, a.checkGuard(), suffix); err != nil {
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
			if serr := execCut(ctx, a.conn, "", blk.sql, off, stop, blk.marks, a.checkGuard(), ""); serr != nil {
				failing, err = string(blk.sql[off:stop]), serr
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

// execStatement runs st in a transaction with tracking, a write of the
// tracking schema. A DDL commits implicitly before and after itself, so
// the tracking write then commits on its own; any other statement (DML
// the source logged as a statement) commits with it, so every binlog group
// it makes carries the loop mark (statements carry theirs too).
func (a *Applier) execStatement(ctx context.Context, bld *builder, st *thlpb.Statement, tracking []byte) error {
	exec := func(st *thlpb.Statement) error {
		bld.buf = append(bld.buf[:0], "BEGIN;"...)
		bld.statement(st)
		bld.buf = append(bld.buf, tracking...)
		bld.buf = append(bld.buf, "COMMIT"...)
		_, err := a.conn.ExecContext(ctx, string(bld.buf))
		if err != nil {
			a.rollback()
		}
		return err
	}
	err := exec(st)
	var me *mysql.MySQLError
	if errors.As(err, &me) && me.Number == 1049 && st.GetSchema() != "" {
		// Its default schema is gone (dropped later on the source, or by
		// this very statement's predecessor): run it without one.
		err = exec(&thlpb.Statement{Sql: st.GetSql(), Session: st.GetSession(), Timestamp: st.GetTimestamp()})
	}
	// Back to the applier's sql_mode and foreign key checks, whatever happened.
	_, _ = a.conn.ExecContext(ctx, statementReset)
	if expect := expectedError(st); expect != 0 {
		// The source logged it with the error it raised there (a CREATE OR
		// REPLACE that dropped the old table and then failed, a partly
		// done non-transactional write): the same error here is its
		// outcome, as MariaDB's own replica takes it.
		switch {
		case errors.As(err, &me) && me.Number == expect:
			a.cfg.Logger.Info("statement raised the error it raised on the source; going on", "error", err)
			if _, err = a.conn.ExecContext(ctx, "BEGIN;"+string(tracking)+"COMMIT"); err != nil {
				a.rollback()
			}
		case err == nil:
			err = fmt.Errorf("the statement raised error %d on the source and none here, so this database may now differ from the source's; "+
				"compare the tables it names, repair them with sql_log_bin=0, and put the replicator online", expect)
		}
	}
	return err
}

// sessionErrorCode is the Session key of the error a statement raised on
// its source (extract.SessionErrorCode).
const sessionErrorCode = "#error_code"

// expectedError is the error number the source's statement raised, 0 for
// none.
func expectedError(st *thlpb.Statement) uint16 {
	n, _ := strconv.ParseUint(st.GetSession()[sessionErrorCode], 10, 16)
	return uint16(n)
}
