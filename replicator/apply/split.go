package apply

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Finding the transaction in conflict. Conflict mode applies a block's
// transactions one at a time, each row read and checked in its own round
// trip and each transaction committed on its own: several times the
// block's cost per transaction. A block that met a conflict is therefore
// first split in halves, each built again from its events and committed
// as a block of its own; a half that meets the conflict again is split in
// turn, down to the transaction that holds it, which conflict mode
// applies. A block of ten with one transaction in conflict costs about
// seven blocks' checks (a check that fails stops its block before it
// changes a row) and one transaction in conflict mode, instead of ten in
// conflict mode. Under crossing writes to hot rows (both sites updating
// the same rows), where most blocks meet a conflict, this is what keeps
// the appliers from falling ever further behind: a lag makes more writes
// cross, and more crossings made a larger lag (TestClusterCheck, its
// writers 5 ms apart: with whole blocks in conflict mode some runs fell
// minutes behind; split, 10 runs of 36-43 s).
//
// Splitting in halves pays while few transactions of a block meet a
// conflict: each half that fails costs a round trip and the server's parse
// of its SQL, about a third of a transaction in conflict mode. Where many
// do, halves that fail again and again cost more than they find. So when
// a split finds half or more of a block's transactions in conflict, the
// next denseBlocks blocks that meet a conflict are split straight into
// single transactions: each commits as a block of one (a round trip), and
// only the one that meets a conflict goes to conflict mode, after its
// failed try and its rollback. Where most do (wholeDensity), those tries
// cost more than the blocks they save, and those blocks go whole to
// conflict mode instead: with a transaction in conflict mode at about
// four round trips, singles cost 1 + d×5 round trips a transaction where
// a share d meets a conflict, whole blocks 4, even at d = 3/5. The block
// after them is split in halves again, to see whether conflicts are
// still that dense; split into singles, a block measures its density as
// it goes.
// (BenchmarkReplicationApplyConflictSplit: every tenth transaction in
// conflict, every second, every one.) Before singles, every dense block
// went whole to conflict mode, where a transaction without a conflict costs
// several round trips instead of part of one: under crossing writes to hot
// rows beside other writes (TestClusterCheck), a CI run's replicas fell
// further behind the more conflicts their lag made, minutes behind.
//
// Each half is a block like any other: its checks verify the first change
// of each row in the half (a row changed in the first half is verified
// again in the second, against what the first half left), it asks its own
// questions (deleted.go), and it commits with its own tracking row, so a
// crash between halves resumes after the first.

// errResolved: the block in hand was applied in conflict mode, with the
// event being added.
var errResolved = errors.New("apply: block applied in conflict mode")

// resolveBlock applies the transactions of blk, rolled back after cause:
// split in halves when cause is a conflict and blk splittable, else in
// conflict mode. The last one may be incomplete: it goes on as its
// fragments arrive.
func (a *Applier) resolveBlock(ctx context.Context, blk *block, cause error) error {
	if a.deps != nil {
		a.deps.reset()
	}
	if (isConflictSignal(cause) || errors.Is(cause, errConcurrentChange)) && !a.cfg.Conflicts.WholeBlocks && splittable(blk) {
		switch {
		case a.splitDepth > 0 || a.denseLeft == 0:
			return a.splitBlock(ctx, blk, (len(blk.txs)+1)/2)
		case !a.denseWhole:
			a.denseLeft--
			return a.splitBlock(ctx, blk, 1)
		}
		a.denseLeft--
	}
	a.resolvedBlocks.Add(1)
	a.resolvedTxns.Add(uint64(len(blk.txs)))
	a.cfg.Logger.Info("block failed: applying its transactions one at a time, each row checked", "cause", cause, "transactions", len(blk.txs))
	txs := slices.Clone(blk.txs)
	blk.reset()
	for i := range txs {
		tx := &txs[i]
		if tx.dropped {
			return &Error{Seqno: tx.first.GetSeqno(), EventID: tx.first.GetEventId(), Err: fmt.Errorf(
				"its block failed (%w) and the transaction is too large (over %d MiB in the THL) to apply again row by row; "+
					"find the row in conflict, make it what it should be with sql_log_bin=0 and put the service online", cause, retainMax>>20)}
		}
		a.resolving = &resolving{skipped: tx.skipped, ahead: tx.ahead}
		for _, ev := range tx.events {
			if err := a.resolveEvent(ctx, ev); err != nil {
				return err
			}
		}
	}
	return nil
}

// splittable reports whether blk may be applied in parts built again from
// its transactions' events: two or more whole transactions of rows only,
// each kept in full, none skipped, nothing of the block sent yet.
func splittable(blk *block) bool {
	if len(blk.txs) < 2 || blk.sent || blk.serial || blk.open != nil {
		return false
	}
	for i := range blk.txs {
		tx := &blk.txs[i]
		if tx.dropped || tx.skipped || tx.statements || tx.ahead > 0 || tx.last == nil || len(tx.events) == 0 {
			return false
		}
	}
	return true
}

// splitBlock applies blk, rolled back after a conflict, as blocks of size
// of its transactions each (commit splits a part that meets a conflict
// again, down to one transaction in conflict mode). Split at the top, it
// measures how dense the block's conflicts are (resolveBlock).
func (a *Applier) splitBlock(ctx context.Context, blk *block, size int) error {
	txs := slices.Clone(blk.txs)
	blk.reset()
	resolved := a.resolvedTxns.Load()
	a.splitDepth++
	defer func() {
		a.splitDepth--
		if a.splitDepth != 0 {
			return
		}
		if n := a.resolvedTxns.Load() - resolved; 2*n >= uint64(len(txs)) {
			a.denseLeft = denseBlocks
			a.denseWhole = n*wholeDensity[1] >= uint64(len(txs))*wholeDensity[0]
		}
	}()
	for start := 0; start < len(txs); start += size {
		sub, err := a.rebuild(ctx, txs[start:min(start+size, len(txs))])
		if err != nil {
			return err
		}
		if err := a.commit(ctx, sub); err != nil {
			return err
		}
	}
	return nil
}

// denseBlocks is how many blocks that meet a conflict split into singles,
// or go whole to conflict mode, after a split found half or more of a
// block in conflict.
const denseBlocks = 32

// wholeDensity is the share of a block's transactions in conflict
// (numerator, denominator) from which dense blocks go whole to conflict
// mode rather than one by one.
var wholeDensity = [2]uint64{2, 3}

// rebuild returns a block of txs alone, its SQL, checks and questions
// built again from their events.
func (a *Applier) rebuild(ctx context.Context, txs []txn) (*block, error) {
	sub := &block{start: time.Now()}
	if a.detect {
		sub.known = known{}
	}
	for _, tx := range txs {
		sub.txs = append(sub.txs, txn{start: len(sub.sql), first: tx.first, last: tx.last, events: tx.events, retained: tx.retained})
		t := &sub.txs[len(sub.txs)-1]
		for _, ev := range tx.events {
			a.noteRows(ctx, sub, ev)
			a.noteChanges(sub, ev)
			bld := builder{meta: a.meta, service: a.cfg.Service, buf: sub.sql, marks: sub.marks, known: sub.known,
				binlogAll: a.cfg.BinlogRows || a.touchesTriggers(ctx, ev), detect: a.detect}
			for _, c := range ev.GetChanges() {
				t.stmts = append(t.stmts, len(bld.buf))
				if err := bld.rowChange(ctx, a.conn, c.GetRows()); err != nil {
					return nil, &Error{Seqno: ev.GetSeqno(), Fragno: ev.GetFragno(), EventID: ev.GetEventId(), Err: err}
				}
			}
			bld.flushBinlog()
			sub.sql, sub.marks = bld.buf, bld.marks
		}
		sub.txns++
	}
	return sub, nil
}
