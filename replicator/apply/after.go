package apply

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

// Causal order across streams (the extractor's side: extract/after.go).
// A host applies its site's stream and each other site's stream on its
// own, each as fast as it can. A transaction a site's clients committed
// after reading what another stream had written (Event.after names how
// far each other stream had been applied at its source) must not be
// applied here before this database holds as much of that stream:
// applied first, an UPDATE by key would set the row, then the older
// write would set it back, and the hosts would differ without a word.
// So the applier holds such a transaction, with its block committed
// (it holds no lock another applier may need meanwhile), until each
// tracking row it depends on says as much.

// afterPoll is how often a held transaction looks again.
const afterPoll = 5 * time.Millisecond

// afterLog: a hold this long is logged (and its end).
const afterLog = time.Second

// CausalCounters count the applier's work for causal order; a service
// keeps one for all its runs (Config.Causal), for metrics.
type CausalCounters struct {
	// Checks are reads of another stream's tracking row; Holds the
	// transactions held until another stream caught up, for HeldNanos
	// in all.
	Checks, Holds atomic.Uint64
	HeldNanos     atomic.Int64
	// Abandoned are the waits given up because the awaited stream did
	// not move for afterStall.
	Abandoned atomic.Uint64
	// DeleteQuestions are the concurrent-change questions asked of
	// another replicator (deleted.go); DeleteUnchecked the rows applied
	// unchecked because one had no answer.
	DeleteQuestions, DeleteUnchecked atomic.Uint64
}

// afterState is what the applier knows of the other streams.
type afterState struct {
	// met is, for each service, one more than the highest seqno known
	// to be applied here (0: none yet).
	met map[string]uint64
	// unknown are services with no tracking row here: nothing to wait
	// for (logged once).
	unknown map[string]bool
	// primaryUntil: the database was writable (its site's primary) when
	// last read; the site's own service counts as met until then (a
	// switch may make it a replica any time after).
	primaryUntil time.Time
	// stalled are services given up on (afterStall): their position
	// then, and when it was last read. Nothing waits for them until they
	// move.
	stalled map[string]stallMark
}

// stallMark is a service given up on.
type stallMark struct {
	next    uint64
	checked time.Time
}

// afterStall is how long a transaction waits for a stream that does not
// move at all before it is applied without it. A stream's history reset
// (trepctl reset: seqnos start again) leaves positions that no longer
// compare, and two streams can then wait for each other; a stream
// stopped for good would hold this one for as long. Past the bound the
// transaction goes on, logged and counted
// (carbide_replicator_causal_abandoned_total).
var afterStall = 10 * time.Second

// stallRecheck: how often a stalled stream is looked at again.
const stallRecheck = time.Second

// primaryFor is how long the database is taken as its site's primary
// after it was read writable.
const primaryFor = time.Second

// hold is what the applier holds a transaction for, and since when.
type hold struct {
	what  string
	since time.Time
}

// Waiting says what the applier holds a transaction for ("" when it
// holds none) and since when, for trepctl status.
func (a *Applier) Waiting() (string, time.Time) {
	if h, ok := a.waiting.Load().(hold); ok {
		return h.what, h.since
	}
	return "", time.Time{}
}

// awaitAfter returns once this database holds what ev's source held of
// every other stream when ev committed, committing blk first if it must
// wait.
func (a *Applier) awaitAfter(ctx context.Context, blk *block, ev *thlpb.Event) error {
	deps := ev.GetAfter()
	if len(deps) == 0 || ev.GetFragno() != 0 {
		return nil
	}
	if a.after.met == nil {
		a.after = afterState{met: map[string]uint64{}, unknown: map[string]bool{}, stalled: map[string]stallMark{}}
	}
	var begin time.Time
	logged := false
	defer a.waiting.Store(hold{})
	for _, d := range deps {
		svc := d.GetService()
		var lastNext uint64
		var lastMove time.Time
		for svc != a.cfg.Service && !a.after.unknown[svc] && a.after.met[svc] <= d.GetSeqno() {
			if svc == a.cfg.Site && time.Now().Before(a.after.primaryUntil) {
				break
			}
			if st, ok := a.after.stalled[svc]; ok && time.Since(st.checked) < stallRecheck {
				break
			}
			if a.cfg.Causal != nil {
				a.cfg.Causal.Checks.Add(1)
			}
			next, ok, err := a.appliedHere(ctx, svc)
			if err != nil {
				return err
			}
			if !ok {
				a.after.unknown[svc] = true
				a.cfg.Logger.Warn("a transaction depends on a service this database has no tracking row of; it is applied without waiting for it", "seqno", ev.GetSeqno(), "stream", svc)
				break
			}
			if next == primary {
				a.after.primaryUntil = time.Now().Add(primaryFor)
				break
			}
			if st, ok := a.after.stalled[svc]; ok {
				if next == st.next {
					a.after.stalled[svc] = stallMark{next, time.Now()}
					break
				}
				delete(a.after.stalled, svc) // it moves again: wait for it
			}
			a.after.met[svc] = max(a.after.met[svc], next)
			if next > d.GetSeqno() {
				break
			}
			has := int64(next) - 1
			if lastMove.IsZero() || next != lastNext {
				lastNext, lastMove = next, time.Now()
			} else if time.Since(lastMove) >= afterStall {
				a.after.stalled[svc] = stallMark{next, time.Now()}
				if a.cfg.Causal != nil {
					a.cfg.Causal.Abandoned.Add(1)
				}
				a.cfg.Logger.Warn("a transaction waited for another stream that did not move; it is applied without it (was that stream reset or stopped for good?)", "seqno", ev.GetSeqno(), "stream", svc, "needs", d.GetSeqno(), "has", has, "waited", afterStall)
				break
			}
			if begin.IsZero() {
				begin = time.Now()
				if blk.txns > 0 && blk.open == nil {
					if err := a.flush(ctx, blk); err != nil {
						return err
					}
				}
			}
			a.waiting.Store(hold{fmt.Sprintf("seqno %d waits for service %s to apply seqno %d here (it has %d): its source had applied that much before it committed", ev.GetSeqno(), svc, d.GetSeqno(), has), begin})
			if !logged && time.Since(begin) >= afterLog {
				logged = true
				a.cfg.Logger.Info("holding a transaction until another stream catches up", "seqno", ev.GetSeqno(), "stream", svc, "needs", d.GetSeqno(), "has", has)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(afterPoll):
			}
		}
	}
	if !begin.IsZero() && a.cfg.Causal != nil {
		a.cfg.Causal.Holds.Add(1)
		a.cfg.Causal.HeldNanos.Add(int64(time.Since(begin)))
	}
	if logged {
		a.cfg.Logger.Info("the other stream caught up; applying", "seqno", ev.GetSeqno(), "held", time.Since(begin).Round(time.Millisecond))
	}
	return nil
}

// primary is what appliedHere says of the site's own service on its
// primary.
const primary = ^uint64(0)

// appliedHere reads how far svc has been applied into this database: one
// more than its tracking row's seqno (0 when nothing is). On its site's
// primary (the database writable), the site's own service counts as
// applied in full: its transactions were committed there. ok is false
// when svc has no tracking row here.
func (a *Applier) appliedHere(ctx context.Context, svc string) (uint64, bool, error) {
	var seqno int64
	var readOnly int
	q := "SELECT seqno, @@read_only FROM " + string(quoteIdent(nil, TrackingSchema(svc))) + ".trep_commit_seqno WHERE task_id = 0"
	err := a.db.QueryRowContext(ctx, q).Scan(&seqno, &readOnly)
	var me *mysql.MySQLError
	switch {
	case errors.Is(err, sql.ErrNoRows), errors.As(err, &me) && (me.Number == 1049 || me.Number == 1146):
		return 0, false, nil // no such schema or table
	case err != nil:
		return 0, false, fmt.Errorf("read how far service %s is applied here: %w", svc, err)
	case svc == a.cfg.Site && readOnly == 0:
		return primary, true, nil
	case seqno < 0:
		return 0, true, nil
	}
	return uint64(seqno) + 1, true, nil
}
