package manager

import (
	"context"
	"fmt"
	"time"

	"github.com/carbidedb/carbide/internal/lease"
	"github.com/carbidedb/carbide/manager/consensus"
	"github.com/carbidedb/carbide/manager/policy"
	"github.com/carbidedb/carbide/rpc/gen/managerpb"
)

// The primary's lease. A primary's database is writable only while its
// manager holds a lease: the coordinator grants one only to the primary
// of its agreed state, and a grant proves that messages go both ways
// between the two (a primary that only receives, its outbound traffic
// cut, still hears raft and gossip and would otherwise believe itself in
// touch). A lease runs for Config.FenceAfter from when it was asked for,
// on the asker's monotonic clock; the coordinator promotes another host
// only once the last grant it gave (or, new in office, any grant its
// predecessor may have given) has run out, unless it has fenced the old
// primary's database itself.
const (
	// leaseEvery is how often the primary's manager asks.
	leaseEvery = 250 * time.Millisecond
	// leaseMargin is added to a lease on the coordinator's side: time for
	// the cut-off primary to fence its database once its lease ends.
	leaseMargin = time.Second
	// leaderLease is how long a coordinator cut off from the others may
	// still believe it leads (and grant): raft's LeaderLeaseTimeout.
	leaderLease = consensus.LeaderLease
)

// leaseLoop renews this host's lease while the agreed state makes it the
// primary. A coordinator holds its own lease while raft keeps it leader
// (raft steps a leader down within leaderLease of losing its followers).
func (a *Agent) leaseLoop(ctx context.Context) {
	every(ctx, leaseEvery, func() {
		if a.witness {
			return
		}
		if a.ledger.Leading() {
			a.renewLease(time.Now())
			return
		}
		st := a.ledger.State()
		coord := a.coordinator()
		if !st.Initialized || st.Primary != a.self || coord == "" || coord == a.self {
			return
		}
		c, err := a.remote.manager(coord)
		if err != nil {
			return
		}
		asked := time.Now()
		cctx, cancel := context.WithTimeout(ctx, 2*leaseEvery)
		r, err := c.Lease(cctx, &managerpb.LeaseRequest{Host: a.self})
		cancel()
		switch {
		case err != nil:
			a.log.Debug("lease not renewed", "coordinator", coord, "error", err)
		case !r.GetGranted():
			a.log.Info("lease refused", "coordinator", r.GetCoordinator(), "why", r.GetWhy())
		default:
			a.renewLease(asked)
		}
	})
}

// renewLease records a lease asked for at asked, and keeps its end in
// the lease file so that a restarted manager knows it (see loadLease).
func (a *Agent) renewLease(asked time.Time) {
	a.mu.Lock()
	if !asked.After(a.leaseAt) {
		a.mu.Unlock()
		return
	}
	a.leaseAt = asked
	// The file is for the replicator's fencer, which steps in below
	// fencerAsk (1.5 s) left: once a second keeps it above 2 s.
	write := asked.Sub(a.leaseFiled) >= leaseFileEvery
	if write {
		a.leaseFiled = asked
	}
	a.mu.Unlock()
	if !write {
		return
	}
	if err := lease.WriteEnd(a.leaseFile(), a.cfg.FenceAfter-time.Since(asked)); err != nil {
		a.log.Debug("lease file", "error", err)
	}
}

// leaseFileEvery is how often a renewed lease is written to the file.
const leaseFileEvery = time.Second

// leaseHeld tells whether this host's lease runs at now: renewed within
// FenceAfter, or carried over from the previous manager process, or given
// with a promotion this manager saw happen (the coordinator counts the
// same from when it promoted, see doFailover and doSwitch).
func (a *Agent) leaseHeld(now time.Time) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	from := a.leaseAt
	if a.primarySince.After(from) {
		from = a.primarySince
	}
	return !from.IsZero() && now.Sub(from) < a.cfg.FenceAfter
}

// sawPrimary is told, on every enforcement round, who the agreed state
// names as the primary. A host that becomes the primary while this
// manager watches holds a lease from that moment; the first state a
// manager sees after it starts gives none (the lease file does).
func (a *Agent) sawPrimary(now time.Time, st policy.State) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !st.Initialized {
		return
	}
	isPrimary := st.Primary == a.self
	if isPrimary && a.seenState && !a.wasPrimary {
		a.primarySince = now
		// The replicator's fencer reads the lease from the file.
		if err := lease.WriteEnd(a.leaseFile(), a.cfg.FenceAfter); err != nil {
			a.log.Debug("lease file", "error", err)
		}
	}
	a.seenState, a.wasPrimary = true, isPrimary
}

func (a *Agent) leaseFile() string { return lease.File(a.cfg.Home) }

// loadLease takes over the lease a previous manager process of this host
// (or its replicator, see replicator/agent/fencer.go) held, from the lease
// file.
func (a *Agent) loadLease() {
	left, err := lease.Left(a.leaseFile())
	if err != nil || left <= 0 {
		return
	}
	a.mu.Lock()
	a.leaseAt = time.Now().Add(left - a.cfg.FenceAfter)
	a.mu.Unlock()
	a.log.Info("lease taken over from the lease file", "left", left.Round(time.Millisecond))
}

// grantLease answers a primary's request: granted only by the coordinator
// (raft leader, its state read after a barrier) to the host its state
// names as the primary, unless that host has failed.
func (a *Agent) grantLease(host string) *managerpb.LeaseReply {
	r := &managerpb.LeaseReply{Coordinator: a.self}
	a.mu.Lock()
	ready := !a.leaderSince.IsZero()
	a.mu.Unlock()
	if !a.ledger.Leading() || !ready {
		r.Why = a.self + " is not the coordinator"
		return r
	}
	st := a.ledger.State()
	switch {
	case !st.Initialized || st.Primary != host:
		r.Why = fmt.Sprintf("%s is not the primary of %s (the primary is %q)", host, a.site.Name, st.Primary)
		return r
	case st.Datasources[host].State == policy.Failed:
		r.Why = fmt.Sprintf("the primary %s is FAILED", host)
		return r
	}
	a.granted(host)
	r.Granted = true
	return r
}

// granted records that this coordinator gave host a lease now (a grant,
// or a promotion).
func (a *Agent) granted(host string) {
	a.mu.Lock()
	a.grants[host] = time.Now()
	a.mu.Unlock()
}

// leaseEnd is when any lease host may hold has certainly run out and its
// manager has had time to fence its database: the last grant this
// coordinator gave it, or any grant the previous coordinator may have
// given before this one took office.
func (a *Agent) leaseEnd(host string) time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	last := a.leaderSince.Add(consensus.LeaderLease)
	if g := a.grants[host]; g.After(last) {
		last = g
	}
	return last.Add(a.cfg.FenceAfter + leaseMargin)
}

// awaitLeaseEnd waits until host's lease has run out (see leaseEnd).
func (a *Agent) awaitLeaseEnd(ctx context.Context, host string) error {
	wait := time.Until(a.leaseEnd(host))
	if wait <= 0 {
		return nil
	}
	a.log.Info("waiting for the old primary's lease to run out", "host", host, "wait", wait)
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(wait):
		return nil
	}
}

// strayLoop, on the coordinator, fences the database of any host that is
// not the primary, whose manager is out of reach (hung, or cut off and
// unable to fence it), and that takes writes: such a host cannot be
// fenced while it is cut off, so it is tried every second until the
// database answers, and fenced the moment it does.
func (a *Agent) strayLoop(ctx context.Context) {
	every(ctx, time.Second, func() {
		a.mu.Lock()
		leading := !a.leaderSince.IsZero()
		a.mu.Unlock()
		st := a.ledger.State()
		if !leading || !st.Initialized || st.Transition != nil {
			return
		}
		facts, _ := a.pool.View(time.Now())
		for _, h := range a.hosts {
			if h == st.Primary || h == a.self || facts[h].Alive {
				continue
			}
			ro, err := a.dbs.ReadOnly(ctx, h, 500*time.Millisecond)
			if err != nil || ro {
				continue
			}
			killed, err := a.dbs.Fence(ctx, h, time.Second)
			if err != nil {
				a.log.Warn("fencing a writable database whose manager is out of reach", "host", h, "error", err)
				continue
			}
			a.addAlert(fmt.Sprintf("fenced %s's database: it took writes although %s is the primary, and its manager is out of reach (%d sessions killed)", h, st.Primary, killed))
		}
	})
}
