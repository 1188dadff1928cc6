package actions

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc/status"

	"github.com/carbidedb/carbide/internal/textutil"
	"github.com/carbidedb/carbide/manager/policy"
	"github.com/carbidedb/carbide/rpc/gen/replicatorpb"
	"github.com/carbidedb/carbide/rpc/reason"
)

// Failover fences the failed primary and promotes a replica (to, or
// the best one) once it is complete: it holds and has applied every
// transaction any reachable replica of the site stored. When it cannot be
// made complete within manager-failover-catchup-timeout the failover stops
// and the site stays without a primary, unless force gives up what is
// missing (the operator's decision, reported).
func (x *Actions) Failover(ctx context.Context, to, why string, force bool) (_ []string, err error) {
	st := x.ledger.State()
	from := st.Primary
	if st.Transition != nil {
		return nil, reason.Refuse("a %s is under way; wait for it to finish", st.Transition)
	}
	facts := x.facts()
	if to == "" {
		x.freshen(ctx, facts, from)
	}
	cand, err := policy.Candidate(st, facts, to)
	if err != nil {
		return nil, reason.Refuse("%v", err)
	}
	x.log.Warn("failover", "from", from, "to", cand, "reason", why)
	if err := x.ledger.Apply(
		policy.Change{Op: policy.OpBegin, Transition: &policy.Transition{Kind: policy.Failover, From: from, To: cand}},
		policy.Change{Op: policy.OpDatasource, Host: from, Value: policy.Failed, Reason: why},
	); err != nil {
		return nil, err
	}
	// Fence the old primary's database (its sessions killed, read_only
	// on) while the candidate is made complete: nothing may commit there
	// once the new primary takes writes.
	fenced := make(chan error, 1)
	fenceFrom := time.Now()
	go func() {
		killed, err := x.dbs.Fence(ctx, from, StepTimeout)
		switch {
		case errors.Is(err, syscall.ECONNREFUSED):
			x.log.Info("fence: the old primary's database is down", "host", from)
			err = nil
		case err != nil:
		default:
			x.log.Info("fence: the old primary's database is read-only", "host", from, "sessions_killed", killed)
		}
		fenced <- err
	}()
	gap := x.complete(ctx, cand, from, x.Others(cand, from))
	// The old primary's replicator stops once the candidate has what it
	// stored (its THL server goes on serving).
	if rc, err := x.repls.Replicator(from); err == nil {
		octx, cancel := context.WithTimeout(ctx, time.Second)
		_, _ = rc.Offline(octx, &replicatorpb.OfflineRequest{Service: x.cfg.Site, Immediate: true})
		cancel()
	}
	// Promote once the old primary is fenced, or its lease has run out
	// (its manager has fenced it then; the fence goes on trying, and the
	// coordinator's stray check fences it when it answers again).
	// The fence gets a second at least: a database that is down or
	// answers says so within it.
	var fenceErr error
	wait := x.leases.End(from)
	if least := fenceFrom.Add(time.Second); wait.Before(least) {
		wait = least
	}
	select {
	case fenceErr = <-fenced:
	case <-time.After(time.Until(wait)):
		fenceErr = errors.New("its database did not answer before its lease ran out")
	}
	var lines []string
	if fenceErr != nil {
		// Unreachable but not down (a hung server, a cut network): its
		// manager fences it when its lease runs out; promote only after.
		lines = append(lines, fmt.Sprintf("WARNING: could not fence %s's database: %s", from, textutil.FirstLine(fenceErr.Error())))
		if err := x.leases.AwaitEnd(ctx, from); err != nil {
			_ = x.ledger.Apply(policy.Change{Op: policy.OpEnd})
			return nil, err
		}
	}
	if gap != nil {
		if !force {
			_ = x.ledger.Apply(policy.Change{Op: policy.OpEnd})
			line := fmt.Sprintf("FAILOVER TO %s BLOCKED: %s; the site has no primary until it has applied them (or: set force true; failover)", cand, gap)
			x.alerts.Raise(FailoverBlocked, line)
			return nil, fmt.Errorf("failover to %s blocked: %s", cand, gap)
		}
		lines = append(lines, fmt.Sprintf("WARNING: forced failover to %s gives up %s", cand, gap))
	}
	if err := x.ReplicatorTo(ctx, cand, policy.RoleMaster, ""); err != nil {
		_ = x.ledger.Apply(policy.Change{Op: policy.OpEnd})
		return nil, fmt.Errorf("failover to %s failed; the site has no primary until a failover succeeds: %w", cand, err)
	}
	if gap != nil {
		// Its THL now describes its database: it dropped the tail it
		// stored but never applied (docs/replicator.md).
		dropped := "may still hold what its database never applied (its replicator did not say)"
		if s, err := x.repls.ServiceStatus(ctx, cand, x.cfg.Site, 2*time.Second); err == nil {
			dropped = "held nothing its database never applied"
			if d := s.GetDropped(); d != nil {
				dropped = fmt.Sprintf("dropped seqnos %d to %d, which its database never applied", d.GetFromSeqno(), d.GetToSeqno())
			}
		}
		lines = append(lines, fmt.Sprintf("WARNING: %s's THL %s; replicas holding any of seqnos %d to %d stop as diverged and must be reprovisioned (tprovision)", cand, dropped, gap.applied+1, gap.upTo))
	}
	if err := x.ledger.Apply(policy.Change{Op: policy.OpPromote, Host: cand}); err != nil {
		return nil, err
	}
	x.leases.Granted(cand) // a promotion gives the lease (lease.go)
	x.alerts.Clear(FailoverBlocked)
	if err := x.dbs.SetReadOnly(ctx, cand, false, StepTimeout); err != nil {
		x.log.Warn("make new primary writable", "host", cand, "error", err)
	}
	failed := x.Repoint(ctx, cand, x.Others(cand, from))
	line := fmt.Sprintf("FAILOVER TO %s COMPLETE (%s FAILED: %s)", cand, from, why)
	x.alerts.Add(line)
	lines = append([]string{line}, lines...)
	for _, l := range lines[1:] {
		x.alerts.Add(l)
	}
	for _, f := range failed {
		lines = append(lines, "WARNING: could not re-point "+f)
	}
	return lines, nil
}

// freshen replaces the replication figures of facts (reported every
// 500 ms through gossip) with what each replica's replicator says now, so
// that the candidate is the replica that stored, then applied, the most
// at the moment of the failover.
func (x *Actions) freshen(ctx context.Context, facts map[string]policy.Facts, old string) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, h := range x.Others(old) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := x.repls.ServiceStatus(ctx, h, x.cfg.Site, time.Second)
			if err != nil {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			setReplFacts(facts, h, s)
		}()
	}
	wg.Wait()
}

// setReplFacts sets host's replication figures in facts to s's.
func setReplFacts(facts map[string]policy.Facts, host string, s *replicatorpb.ServiceStatus) {
	f := facts[host]
	f.ReplRole, f.ReplState, f.ReplKind, f.Applied, f.MaxStored = s.GetRole(), s.GetState(), s.GetStateKind(), s.GetAppliedLastSeqno(), s.GetMaxStoredSeqno()
	facts[host] = f
}

// finalOf asks the old primary's replicator for the last transaction of
// its THL once that is final (Flush: everything its database committed,
// or the binlog files' tail when the database died), for epoch's lineage.
func (x *Actions) finalOf(ctx context.Context, host string, epoch uint64) (int64, bool) {
	rc, err := x.repls.Replicator(host)
	if err != nil {
		return -1, false
	}
	fctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	fl, err := rc.Flush(fctx, &replicatorpb.FlushRequest{Service: x.cfg.Site})
	if err != nil {
		x.log.Info("failover: the old primary's replicator gives no final seqno; what it alone stored is not looked for", "host", host, "error", textutil.FirstLine(status.Convert(err).Message()))
		return -1, false
	}
	s, err := x.repls.ServiceStatus(ctx, host, x.cfg.Site, 2*time.Second)
	if err != nil || s.GetEpoch() != epoch {
		return -1, false
	}
	x.log.Info("failover: the old primary's THL is final", "host", host, "seqno", fl.GetSeqno())
	return fl.GetSeqno(), true
}

// catchUpGap is what a failover candidate lacks: the seqnos after what it
// applied, up to the highest any reachable replica stored, and where
// they are.
type catchUpGap struct {
	cand           string
	applied, upTo  int64
	holder, reason string
}

func (g *catchUpGap) String() string {
	return fmt.Sprintf("%s has applied seqno %d; seqnos %d to %d (stored on %s) are not applied: %s", g.cand, g.applied, g.applied+1, g.upTo, g.holder, g.reason)
}

// complete makes cand hold and apply every transaction the replicas
// (cand and others) and the old primary's replicator stored, within the
// catch-up limit: when another holds more, cand first fetches the tail
// from it (its replicator a slave of that host's THL). The old primary's
// counts once its THL is final (Flush): its database answers, or died
// and its replicator stored what the binlog files hold. It returns nil
// when cand is complete, else what it lacks. A host whose replicator
// does not answer has nothing to give.
func (x *Actions) complete(ctx context.Context, cand, old string, others []string) *catchUpGap {
	limit := x.cfg.CatchUp
	if limit <= 0 {
		limit = 60 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, limit+StepTimeout)
	defer cancel()
	svc := x.cfg.Site
	cs, err := x.repls.ServiceStatus(ctx, cand, svc, 2*time.Second)
	if err != nil {
		return &catchUpGap{cand: cand, applied: -1, upTo: -1, holder: cand, reason: "its replicator does not answer (" + textutil.FirstLine(err.Error()) + ")"}
	}
	best, upTo := cand, cs.GetMaxStoredSeqno()
	if old != "" {
		if seqno, ok := x.finalOf(ctx, old, cs.GetEpoch()); ok && seqno > upTo {
			best, upTo = old, seqno
		}
	}
	for _, h := range others {
		s, err := x.repls.ServiceStatus(ctx, h, svc, 2*time.Second)
		if err != nil {
			x.log.Info("failover: replica does not answer; what it stored is not looked for", "host", h, "error", textutil.FirstLine(err.Error()))
			continue
		}
		if s.GetRole() == policy.RoleSlave && s.GetEpoch() == cs.GetEpoch() && s.GetMaxStoredSeqno() > upTo {
			best, upTo = h, s.GetMaxStoredSeqno()
		}
	}
	gap := func(why string) *catchUpGap {
		applied := cs.GetAppliedLastSeqno()
		if s, err := x.repls.ServiceStatus(context.Background(), cand, svc, 2*time.Second); err == nil {
			applied = s.GetAppliedLastSeqno()
		}
		return &catchUpGap{cand: cand, applied: applied, upTo: upTo, holder: best, reason: why}
	}
	if best != cand {
		x.log.Warn("failover: the candidate fetches the tail another replica stored", "candidate", cand, "from", best, "stored", cs.GetMaxStoredSeqno(), "up_to", upTo)
		if err := x.ReplicatorTo(ctx, cand, policy.RoleSlave, x.THLURI(best)); err != nil {
			return gap("it could not read from " + best + " (" + textutil.FirstLine(err.Error()) + ")")
		}
	}
	if upTo < 0 || cs.GetAppliedLastSeqno() >= upTo {
		return nil
	}
	cc, err := x.repls.Replicator(cand)
	if err != nil {
		return gap(textutil.FirstLine(err.Error()))
	}
	_, err = cc.Wait(ctx, &replicatorpb.WaitRequest{Service: svc, AppliedSeqno: upTo, TimeoutSeconds: limit.Seconds()})
	if err != nil {
		return gap(fmt.Sprintf("it did not apply them within manager-failover-catchup-timeout (%s): %s", limit, textutil.FirstLine(status.Convert(err).Message())))
	}
	return nil
}
