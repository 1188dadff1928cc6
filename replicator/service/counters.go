package service

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/carbidedb/carbide/replicator/apply"
	"github.com/carbidedb/carbide/replicator/thl"
	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

// Counters are a service's totals since the process started, for metrics
// (rates come from the monitoring system).
type Counters struct {
	// AppliedEvents are transactions applied: on a master, stored in the
	// THL as extracted; on a slave, taken from the THL by the applier.
	// AppliedBytes is their size in the THL.
	AppliedEvents, AppliedBytes uint64
	// Errors counts the times the service stopped on an error
	// (OFFLINE:ERROR).
	Errors uint64
	// CausalChecks are reads of another stream's tracking row by the
	// applier, CausalHolds the transactions it held until another stream
	// caught up (causal order), for CausalHeld in all.
	CausalChecks, CausalHolds, CausalAbandoned uint64
	CausalHeld                                 time.Duration
	// DeleteQuestions are the concurrent-change questions the applier
	// asked another replicator; DeleteUnchecked the INSERT rows it
	// applied unchecked because one had no answer.
	DeleteQuestions, DeleteUnchecked uint64
	// Conflicts counts the conflicts the applier met, by decision:
	// applied, kept (both recorded in the tracking schema) and stopped.
	Conflicts map[apply.Decision]uint64
}

// counters are updated by the pipeline with atomic adds only.
type counters struct {
	events, bytes, errors  atomic.Uint64
	applied, kept, stopped atomic.Uint64
}

// conflict counts c by its decision (apply.Conflicts.OnConflict).
func (c *counters) conflict(cf apply.Conflict) {
	switch cf.Decision {
	case apply.DecisionApplied:
		c.applied.Add(1)
	case apply.DecisionKept:
		c.kept.Add(1)
	case apply.DecisionStopped:
		c.stopped.Add(1)
	}
}

func (c *counters) add(events, bytes uint64) {
	c.events.Add(events)
	c.bytes.Add(bytes)
}

// Counters returns the service's totals.
func (s *Service) Counters() Counters {
	return Counters{AppliedEvents: s.counts.events.Load(), AppliedBytes: s.counts.bytes.Load(), Errors: s.counts.errors.Load(),
		CausalChecks: s.causal.Checks.Load(), CausalHolds: s.causal.Holds.Load(), CausalAbandoned: s.causal.Abandoned.Load(), CausalHeld: time.Duration(s.causal.HeldNanos.Load()),
		DeleteQuestions: s.causal.DeleteQuestions.Load(), DeleteUnchecked: s.causal.DeleteUnchecked.Load(),
		Conflicts: map[apply.Decision]uint64{
			apply.DecisionApplied: s.counts.applied.Load(), apply.DecisionKept: s.counts.kept.Load(), apply.DecisionStopped: s.counts.stopped.Load(),
		}}
}

// counted is r.Next counting what the applier takes: every fragment's
// bytes, a transaction at its last fragment.
func (s *Service) counted(r *thl.Reader) apply.Next {
	return func(ctx context.Context) (*thlpb.Event, int, error) {
		ev, size, err := r.NextSized(ctx)
		if ev != nil {
			var n uint64
			if ev.GetLastFrag() {
				n = 1
			}
			s.counts.add(n, uint64(size))
		}
		return ev, size, err
	}
}
