package manager

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	"github.com/carbidedb/carbide/manager/policy"
	"github.com/carbidedb/carbide/rpc/gen/managerpb"
	"github.com/carbidedb/carbide/rpc/gen/replicatorpb"
)

// failoverBlocked is the key of the alert of a failover that waits for
// its candidate (cleared by the next promotion).
const failoverBlocked = "failover-blocked"

// Timeouts of the steps of a switch or failover.
const (
	stepTimeout  = 5 * time.Second
	catchUpLimit = 30 * time.Second // a switch's candidate
)

func (a *Agent) thlURI(host string) string {
	return "thl://" + host + ":" + strconv.Itoa(a.st.THLPort) + "/"
}

// replicatorTo makes host's cluster replicator a master (uri "") or a
// slave of uri, and brings it online.
func (a *Agent) replicatorTo(ctx context.Context, host, role, uri string) error {
	c, err := a.repls.replicator(host)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, stepTimeout+catchUpLimit)
	defer cancel()
	svc := a.site.Name
	// A host back from a partition may still be between two dials: wait
	// (within stepTimeout) for the connection rather than fail at once.
	sctx, scancel := context.WithTimeout(ctx, stepTimeout)
	st, err := c.Status(sctx, &replicatorpb.StatusRequest{Service: svc}, grpc.WaitForReady(true))
	scancel()
	if err != nil {
		return fmt.Errorf("replicator of %s: %w", host, err)
	}
	s := st.GetStatus()
	if s.GetRole() == role && s.GetStateKind() == replicatorpb.ReplicatorState_REPLICATOR_STATE_ONLINE && (role == policy.RoleMaster || s.GetMasterConnectUri() == uri) {
		return nil
	}
	if _, err := c.Offline(ctx, &replicatorpb.OfflineRequest{Service: svc}); err != nil {
		return fmt.Errorf("replicator of %s offline: %w", host, err)
	}
	if _, err := c.SetRole(ctx, &replicatorpb.SetRoleRequest{Service: svc, Role: role, Uri: uri}); err != nil {
		return fmt.Errorf("replicator of %s setrole %s: %w", host, role, err)
	}
	if _, err := c.Online(ctx, &replicatorpb.OnlineRequest{Service: svc}); err != nil {
		return fmt.Errorf("replicator of %s online: %w", host, err)
	}
	if role == policy.RoleMaster {
		if _, err := c.Wait(ctx, &replicatorpb.WaitRequest{Service: svc, AppliedSeqno: -1, State: "ONLINE", TimeoutSeconds: stepTimeout.Seconds()}); err != nil {
			return fmt.Errorf("replicator of %s did not come ONLINE as master: %w", host, err)
		}
	}
	return nil
}

// repoint makes every listed host a slave of primary, in parallel; it
// returns the hosts that failed, with why.
func (a *Agent) repoint(ctx context.Context, primary string, hosts []string) []string {
	var mu sync.Mutex
	var failed []string
	var wg sync.WaitGroup
	for _, h := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := a.replicatorTo(ctx, h, policy.RoleSlave, a.thlURI(primary)); err != nil {
				a.log.Warn("re-point replica", "host", h, "primary", primary, "error", err)
				mu.Lock()
				failed = append(failed, fmt.Sprintf("%s (%v)", h, err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return failed
}

// others lists the datasources other than the excluded hosts.
func (a *Agent) others(exclude ...string) []string {
	var out []string
	for _, h := range a.hosts {
		skip := false
		for _, x := range exclude {
			if h == x {
				skip = true
			}
		}
		if !skip {
			out = append(out, h)
		}
	}
	return out
}

// doSwitch moves the primary role to a replica (to, or the best one) in
// the planned way: nothing acknowledged by the old primary is lost.
func (a *Agent) doSwitch(ctx context.Context, to string) (_ []string, err error) {
	defer a.transitions.count(policy.Switch, &err)
	st := a.ledger.state()
	from := st.Primary
	if st.Transition != nil {
		return nil, userErr("a %s is under way; wait for it to finish", st.Transition)
	}
	if st.Datasources[from].State != policy.Online {
		return nil, userErr("the primary %s is %s; use failover instead of switch", from, st.Datasources[from])
	}
	facts := a.allFacts()
	cand, err := policy.Candidate(st, facts, to)
	if err != nil {
		return nil, userErr("%v", err)
	}
	a.log.Info("switch", "from", from, "to", cand)
	tr := &policy.Transition{Kind: policy.Switch, From: from, To: cand, Drain: true}
	if err := a.apply(policy.Change{Op: policy.OpBegin, Transition: tr}); err != nil {
		return nil, err
	}
	abort := func(err error) ([]string, error) {
		a.log.Error("switch aborted", "error", err)
		_ = a.apply(policy.Change{Op: policy.OpEnd})
		return nil, fmt.Errorf("switch to %s aborted, %s stays primary: %w", cand, from, err)
	}
	// 1. The connectors hold new connections and close their read-write
	// connections to the old primary (those finish within the disconnect
	// timeout), then it stops taking writes: no application connection
	// meets a read-only primary.
	a.waitConnectorsDrained(ctx, from, tr.String(), a.st.DisconnectTimeout+time.Second)
	blocked := time.Now()
	if err := a.apply(policy.Change{Op: policy.OpDrained}); err != nil {
		return abort(err)
	}
	if err := a.dbs.setReadOnly(ctx, from, true, stepTimeout); err != nil {
		return abort(err)
	}
	// 2. Everything it wrote is in its THL: the final seqno.
	rc, err := a.repls.replicator(from)
	if err != nil {
		return abort(err)
	}
	fctx, cancel := context.WithTimeout(ctx, stepTimeout)
	fl, err := rc.Flush(fctx, &replicatorpb.FlushRequest{Service: a.site.Name})
	cancel()
	if err != nil {
		return abort(fmt.Errorf("flush on %s: %w", from, err))
	}
	// 3. The candidate applies up to it.
	cc, err := a.repls.replicator(cand)
	if err != nil {
		return abort(err)
	}
	wctx, cancel := context.WithTimeout(ctx, catchUpLimit+time.Second)
	_, err = cc.Wait(wctx, &replicatorpb.WaitRequest{Service: a.site.Name, AppliedSeqno: fl.GetSeqno(), TimeoutSeconds: catchUpLimit.Seconds()})
	cancel()
	if err != nil {
		return abort(fmt.Errorf("%s did not apply up to seqno %d: %w", cand, fl.GetSeqno(), err))
	}
	// 4. Promote.
	if err := a.replicatorTo(ctx, cand, policy.RoleMaster, ""); err != nil {
		return abort(err)
	}
	if err := a.apply(policy.Change{Op: policy.OpPromote, Host: cand}); err != nil {
		return nil, err
	}
	a.granted(cand) // a promotion gives the lease (lease.go)
	if err := a.dbs.setReadOnly(ctx, cand, false, stepTimeout); err != nil {
		a.log.Warn("make new primary writable", "host", cand, "error", err)
	}
	took := time.Since(blocked)
	// 5. Everyone else follows the new primary.
	failed := a.repoint(ctx, cand, a.others(cand))
	lines := []string{fmt.Sprintf("SWITCH TO %s COMPLETE (%s was primary; final seqno %d; writes blocked %.0f ms)", cand, from, fl.GetSeqno(), took.Seconds()*1000)}
	for _, f := range failed {
		lines = append(lines, "WARNING: could not re-point "+f)
	}
	a.addAlert(lines[0])
	a.clearAlert(failoverBlocked)
	return lines, nil
}

// connectorReport is what a connector last told this manager.
type connectorReport struct {
	*managerpb.ConnectorReport
	at time.Time
}

func (a *Agent) connectorReported(r *managerpb.ConnectorReport) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.reports[r.GetHost()] = connectorReport{r, time.Now()}
}

// waitConnectorsDrained waits (at most limit) until every running
// connector of the site has said, for this transition, that it holds new
// connections (or is OFFLINE) and has no read-write connection to from
// left. A connector that runs (its manager's facts say so) but does not
// answer is waited for until the limit; one that does not run is not.
func (a *Agent) waitConnectorsDrained(ctx context.Context, from, transition string, limit time.Duration) {
	deadline := time.Now().Add(limit)
	for {
		var waiting []string
		facts := a.allFacts()
		now := time.Now()
		a.mu.Lock()
		for _, h := range a.site.Connectors {
			r, fresh, running := a.runningConnector(h, facts, now)
			if !running {
				continue
			}
			if !fresh || r.GetTransition() != transition || r.GetStateKind() == managerpb.ConnectorState_CONNECTOR_STATE_ONLINE ||
				r.GetDraining() != from || r.GetDrainingActive() > 0 {
				waiting = append(waiting, h)
			}
		}
		a.mu.Unlock()
		if len(waiting) == 0 {
			return
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			a.log.Warn("switch goes on without every connector drained", "connectors", waiting)
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// doFailover fences the failed primary and promotes a replica (to, or
// the best one) once it is complete: it holds and has applied every
// transaction any reachable replica of the site stored. When it cannot be
// made complete within manager-failover-catchup-timeout the failover stops
// and the site stays without a primary, unless force gives up what is
// missing (the operator's decision, reported).
func (a *Agent) doFailover(ctx context.Context, to, reason string, force bool) (_ []string, err error) {
	defer a.transitions.count(policy.Failover, &err)
	st := a.ledger.state()
	from := st.Primary
	if st.Transition != nil {
		return nil, userErr("a %s is under way; wait for it to finish", st.Transition)
	}
	facts := a.allFacts()
	if to == "" {
		a.freshen(ctx, facts, from)
	}
	cand, err := policy.Candidate(st, facts, to)
	if err != nil {
		return nil, userErr("%v", err)
	}
	a.log.Warn("failover", "from", from, "to", cand, "reason", reason)
	if err := a.apply(
		policy.Change{Op: policy.OpBegin, Transition: &policy.Transition{Kind: policy.Failover, From: from, To: cand}},
		policy.Change{Op: policy.OpDatasource, Host: from, Value: policy.Failed, Reason: reason},
	); err != nil {
		return nil, err
	}
	// Fence the old primary's database (its sessions killed, read_only
	// on) while the candidate is made complete: nothing may commit there
	// once the new primary takes writes.
	fenced := make(chan error, 1)
	fenceFrom := time.Now()
	go func() {
		killed, err := a.dbs.fence(ctx, from, stepTimeout)
		switch {
		case errors.Is(err, errDatabaseDown):
			a.log.Info("fence: the old primary's database is down", "host", from)
			err = nil
		case err != nil:
		default:
			a.log.Info("fence: the old primary's database is read-only", "host", from, "sessions_killed", killed)
		}
		fenced <- err
	}()
	gap := a.complete(ctx, cand, from, a.others(cand, from))
	// The old primary's replicator stops once the candidate has what it
	// stored (its THL server goes on serving).
	if rc, err := a.repls.replicator(from); err == nil {
		octx, cancel := context.WithTimeout(ctx, time.Second)
		_, _ = rc.Offline(octx, &replicatorpb.OfflineRequest{Service: a.site.Name, Immediate: true})
		cancel()
	}
	// Promote once the old primary is fenced, or its lease has run out
	// (its manager has fenced it then; the fence goes on trying, and the
	// coordinator's stray check fences it when it answers again).
	// The fence gets a second at least: a database that is down or
	// answers says so within it.
	var fenceErr error
	wait := a.leaseEnd(from)
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
		lines = append(lines, fmt.Sprintf("WARNING: could not fence %s's database: %s", from, firstLine(fenceErr.Error())))
		if err := a.awaitLeaseEnd(ctx, from); err != nil {
			_ = a.apply(policy.Change{Op: policy.OpEnd})
			return nil, err
		}
	}
	if gap != nil {
		if !force {
			_ = a.apply(policy.Change{Op: policy.OpEnd})
			line := fmt.Sprintf("FAILOVER TO %s BLOCKED: %s; the site has no primary until it has applied them (or: set force true; failover)", cand, gap)
			a.raise(failoverBlocked, line)
			return nil, fmt.Errorf("failover to %s blocked: %s", cand, gap)
		}
		lines = append(lines, fmt.Sprintf("WARNING: forced failover to %s gives up %s", cand, gap))
	}
	if err := a.replicatorTo(ctx, cand, policy.RoleMaster, ""); err != nil {
		_ = a.apply(policy.Change{Op: policy.OpEnd})
		return nil, fmt.Errorf("failover to %s failed; the site has no primary until a failover succeeds: %w", cand, err)
	}
	if gap != nil {
		// Its THL now describes its database: it dropped the tail it
		// stored but never applied (docs/replicator.md).
		dropped := "may still hold what its database never applied (its replicator did not say)"
		if s, err := a.repls.serviceStatus(ctx, cand, a.site.Name, 2*time.Second); err == nil {
			dropped = "held nothing its database never applied"
			if d := s.GetDropped(); d != nil {
				dropped = fmt.Sprintf("dropped seqnos %d to %d, which its database never applied", d.GetFromSeqno(), d.GetToSeqno())
			}
		}
		lines = append(lines, fmt.Sprintf("WARNING: %s's THL %s; replicas holding any of seqnos %d to %d stop as diverged and must be reprovisioned (tprovision)", cand, dropped, gap.applied+1, gap.upTo))
	}
	if err := a.apply(policy.Change{Op: policy.OpPromote, Host: cand}); err != nil {
		return nil, err
	}
	a.granted(cand) // a promotion gives the lease (lease.go)
	a.clearAlert(failoverBlocked)
	if err := a.dbs.setReadOnly(ctx, cand, false, stepTimeout); err != nil {
		a.log.Warn("make new primary writable", "host", cand, "error", err)
	}
	failed := a.repoint(ctx, cand, a.others(cand, from))
	line := fmt.Sprintf("FAILOVER TO %s COMPLETE (%s FAILED: %s)", cand, from, reason)
	a.addAlert(line)
	lines = append([]string{line}, lines...)
	for _, l := range lines[1:] {
		a.addAlert(l)
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
func (a *Agent) freshen(ctx context.Context, facts map[string]policy.Facts, old string) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, h := range a.others(old) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := a.repls.serviceStatus(ctx, h, a.site.Name, time.Second)
			if err != nil {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			f := facts[h]
			f.ReplRole, f.ReplState, f.ReplKind, f.Applied, f.MaxStored = s.GetRole(), s.GetState(), s.GetStateKind(), s.GetAppliedLastSeqno(), s.GetMaxStoredSeqno()
			facts[h] = f
		}()
	}
	wg.Wait()
}

// finalOf asks the old primary's replicator for the last transaction of
// its THL once that is final (Flush: everything its database committed,
// or the binlog files' tail when the database died), for epoch's lineage.
func (a *Agent) finalOf(ctx context.Context, host string, epoch uint64) (int64, bool) {
	rc, err := a.repls.replicator(host)
	if err != nil {
		return -1, false
	}
	fctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	fl, err := rc.Flush(fctx, &replicatorpb.FlushRequest{Service: a.site.Name})
	if err != nil {
		a.log.Info("failover: the old primary's replicator gives no final seqno; what it alone stored is not looked for", "host", host, "error", firstLine(status.Convert(err).Message()))
		return -1, false
	}
	s, err := a.repls.serviceStatus(ctx, host, a.site.Name, 2*time.Second)
	if err != nil || s.GetEpoch() != epoch {
		return -1, false
	}
	a.log.Info("failover: the old primary's THL is final", "host", host, "seqno", fl.GetSeqno())
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
func (a *Agent) complete(ctx context.Context, cand, old string, others []string) *catchUpGap {
	limit := a.st.FailoverCatchUp
	if limit <= 0 {
		limit = 60 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, limit+stepTimeout)
	defer cancel()
	svc := a.site.Name
	cs, err := a.repls.serviceStatus(ctx, cand, svc, 2*time.Second)
	if err != nil {
		return &catchUpGap{cand: cand, applied: -1, upTo: -1, holder: cand, reason: "its replicator does not answer (" + firstLine(err.Error()) + ")"}
	}
	best, upTo := cand, cs.GetMaxStoredSeqno()
	if old != "" {
		if seqno, ok := a.finalOf(ctx, old, cs.GetEpoch()); ok && seqno > upTo {
			best, upTo = old, seqno
		}
	}
	for _, h := range others {
		s, err := a.repls.serviceStatus(ctx, h, svc, 2*time.Second)
		if err != nil {
			a.log.Info("failover: replica does not answer; what it stored is not looked for", "host", h, "error", firstLine(err.Error()))
			continue
		}
		if s.GetRole() == policy.RoleSlave && s.GetEpoch() == cs.GetEpoch() && s.GetMaxStoredSeqno() > upTo {
			best, upTo = h, s.GetMaxStoredSeqno()
		}
	}
	gap := func(reason string) *catchUpGap {
		applied := cs.GetAppliedLastSeqno()
		if s, err := a.repls.serviceStatus(context.Background(), cand, svc, 2*time.Second); err == nil {
			applied = s.GetAppliedLastSeqno()
		}
		return &catchUpGap{cand: cand, applied: applied, upTo: upTo, holder: best, reason: reason}
	}
	if best != cand {
		a.log.Warn("failover: the candidate fetches the tail another replica stored", "candidate", cand, "from", best, "stored", cs.GetMaxStoredSeqno(), "up_to", upTo)
		if err := a.replicatorTo(ctx, cand, policy.RoleSlave, a.thlURI(best)); err != nil {
			return gap("it could not read from " + best + " (" + firstLine(err.Error()) + ")")
		}
	}
	if upTo < 0 || cs.GetAppliedLastSeqno() >= upTo {
		return nil
	}
	cc, err := a.repls.replicator(cand)
	if err != nil {
		return gap(firstLine(err.Error()))
	}
	_, err = cc.Wait(ctx, &replicatorpb.WaitRequest{Service: svc, AppliedSeqno: upTo, TimeoutSeconds: limit.Seconds()})
	if err != nil {
		return gap(fmt.Sprintf("it did not apply them within manager-failover-catchup-timeout (%s): %s", limit, firstLine(status.Convert(err).Message())))
	}
	return nil
}

// doRecover brings a FAILED or SHUNNED datasource back as a replica of
// the primary, refusing when its history diverged from the primary's.
func (a *Agent) doRecover(ctx context.Context, host string, force bool) ([]string, error) {
	st := a.ledger.state()
	ds, ok := st.Datasources[host]
	if !ok {
		return nil, userErr("%s is not a datasource of %s (datasources: %s)", host, a.site.Name, strings.Join(a.hosts, ", "))
	}
	if host == st.Primary && ds.State != policy.Failed {
		return nil, userErr("%s is the primary; nothing to recover", host)
	}
	if host == st.Primary {
		return nil, userErr("%s is the FAILED primary; fail over to a replica first (failover), then recover %s as a replica", host, host)
	}
	if err := a.provisioned(host, force); err != nil {
		return nil, err
	}
	if ds.State == policy.Online {
		// ONLINE with its replicator taken offline (replicator H
		// offline): recover brings the replicator back.
		if f := a.allFacts()[host]; f.ReplKind != replicatorpb.ReplicatorState_REPLICATOR_STATE_UNSPECIFIED && f.ReplKind != replicatorpb.ReplicatorState_REPLICATOR_STATE_ONLINE {
			if err := a.replicatorTo(ctx, host, policy.RoleSlave, a.thlURI(st.Primary)); err != nil {
				return nil, err
			}
			return []string{fmt.Sprintf("%s is ONLINE; its replicator was %s and is ONLINE again", host, f.ReplState)}, nil
		}
		return []string{fmt.Sprintf("%s is already ONLINE", host)}, nil
	}
	if _, err := a.dbs.readOnly(ctx, host, 2*time.Second); err != nil {
		return nil, userErr("cannot recover %s: its database does not answer (%s); start it first (service %s/mysql start)", host, firstLine(err.Error()), host)
	}
	if err := a.dbs.setReadOnly(ctx, host, true, stepTimeout); err != nil {
		return nil, err
	}
	// A former primary may hold writes it committed but never extracted
	// (its database died first): they exist on that host alone.
	var warn []string
	if s, err := a.repls.serviceStatus(ctx, host, a.site.Name, 2*time.Second); err == nil && s.GetRole() == policy.RoleMaster && s.GetAppliedLastEventId() != "" {
		lost, err := a.orphans(ctx, host, s.GetAppliedLastEventId())
		switch {
		case err != nil:
			return nil, fmt.Errorf("cannot recover %s: cannot read its binlog after its last extracted event %s: %w", host, s.GetAppliedLastEventId(), err)
		case len(lost) > 0 && !force:
			return nil, userErr("cannot recover %s: its binlog holds %d transaction(s) after %s that never reached the site and would stay on %s alone (%s); reprovision %s (tprovision), or set force true to bring it back as it is",
				host, len(lost), s.GetAppliedLastEventId(), host, strings.Join(lost, "; "), host)
		case len(lost) > 0:
			warn = append(warn, fmt.Sprintf("WARNING: %s keeps %d transaction(s) the site never got: %s", host, len(lost), strings.Join(lost, "; ")))
		}
	}
	primaryStored := int64(-1)
	if ps, err := a.repls.serviceStatus(ctx, st.Primary, a.site.Name, 2*time.Second); err == nil {
		primaryStored = ps.GetMaxStoredSeqno()
	}
	if err := a.replicatorTo(ctx, host, policy.RoleSlave, a.thlURI(st.Primary)); err != nil {
		return nil, fmt.Errorf("cannot recover %s: %w", host, err)
	}
	// The replicator checks its history against the primary's on
	// connecting; a divergence leaves it OFFLINE:ERROR.
	// It is recovered once it applied what the primary had when the
	// recovery began (an apply error shows by then), or after 10 s ONLINE.
	var status *replicatorpb.ServiceStatus
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		s, err := a.repls.serviceStatus(ctx, host, a.site.Name, time.Second)
		if err == nil {
			status = s
			if k := s.GetStateKind(); k == replicatorpb.ReplicatorState_REPLICATOR_STATE_OFFLINE_ERROR || (k == replicatorpb.ReplicatorState_REPLICATOR_STATE_ONLINE && s.GetAppliedLastSeqno() >= primaryStored) {
				break
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	if status == nil {
		return nil, fmt.Errorf("cannot recover %s: its replicator does not answer", host)
	}
	if status.GetStateKind() == replicatorpb.ReplicatorState_REPLICATOR_STATE_OFFLINE_ERROR {
		msg := status.GetPendingError()
		if msg == "" {
			msg = status.GetPendingExceptionMessage()
		}
		if status.GetPendingErrorKind() == replicatorpb.PendingErrorKind_PENDING_ERROR_KIND_DIVERGED && !force {
			return nil, userErr("cannot recover %s: its history diverged from the primary %s: %s; reprovision it (tprovision) or use set force true to bring it ONLINE anyway", host, st.Primary, msg)
		}
		if !force {
			return nil, userErr("cannot recover %s: its replicator is %s: %s", host, status.GetState(), msg)
		}
	}
	if err := a.apply(policy.Change{Op: policy.OpDatasource, Host: host, Value: policy.Online}); err != nil {
		return nil, err
	}
	return append(warn, fmt.Sprintf("DATASOURCE '%s@%s' RECOVERED (replica of %s, replicator %s)", host, a.site.Name, st.Primary, status.GetState())), nil
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// provisioned refuses to bring back a host whose database holds part of
// a tprovision copy (unless forced).
func (a *Agent) provisioned(host string, force bool) error {
	if f := a.allFacts()[host]; f.Incomplete != "" && !force {
		return refusal(managerpb.Reason_REASON_INCOMPLETE_COPY, "%s's database holds part of a tprovision copy that did not finish (%s); run tprovision on %s again, or set force true to bring it back as it is", host, f.Incomplete, host)
	}
	return nil
}
