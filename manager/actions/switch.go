package actions

import (
	"context"
	"fmt"
	"time"

	"github.com/carbidedb/carbide/manager/policy"
	"github.com/carbidedb/carbide/rpc/gen/replicatorpb"
	"github.com/carbidedb/carbide/rpc/reason"
)

// Switch moves the primary role to a replica (to, or the best one) in
// the planned way: nothing acknowledged by the old primary is lost.
func (x *Actions) Switch(ctx context.Context, to string) (_ []string, err error) {
	st := x.ledger.State()
	from := st.Primary
	if st.Transition != nil {
		return nil, reason.Refuse("a %s is under way; wait for it to finish", st.Transition)
	}
	if st.Datasources[from].State != policy.Online {
		return nil, reason.Refuse("the primary %s is %s; use failover instead of switch", from, st.Datasources[from])
	}
	// Gossip's facts are up to 500 ms old: a replica that has just
	// changed role (the last switch's old primary) may be reported still
	// going online. The choice is made on what each replicator says now,
	// and a named candidate still going online is given StepTimeout.
	facts := x.facts()
	x.freshen(ctx, facts, from)
	if to != "" {
		x.awaitOnline(ctx, facts, to)
	}
	cand, err := policy.Candidate(st, facts, to)
	if err != nil {
		return nil, reason.Refuse("%v", err)
	}
	x.log.Info("switch", "from", from, "to", cand)
	tr := &policy.Transition{Kind: policy.Switch, From: from, To: cand, Drain: true}
	if err := x.ledger.Apply(policy.Change{Op: policy.OpBegin, Transition: tr}); err != nil {
		return nil, err
	}
	abort := func(err error) ([]string, error) {
		x.log.Error("switch aborted", "error", err)
		_ = x.ledger.Apply(policy.Change{Op: policy.OpEnd})
		return nil, fmt.Errorf("switch to %s aborted, %s stays primary: %w", cand, from, err)
	}
	// 1. The connectors hold new connections and close their read-write
	// connections to the old primary (those finish within the disconnect
	// timeout), then it stops taking writes: no application connection
	// meets a read-only primary.
	x.conns.AwaitDrained(ctx, from, tr.String(), x.cfg.DisconnectTimeout+time.Second)
	blocked := time.Now()
	if err := x.ledger.Apply(policy.Change{Op: policy.OpDrained}); err != nil {
		return abort(err)
	}
	if err := x.dbs.SetReadOnly(ctx, from, true, StepTimeout); err != nil {
		return abort(err)
	}
	// 2. Everything it wrote is in its THL: the final seqno.
	rc, err := x.repls.Replicator(from)
	if err != nil {
		return abort(err)
	}
	fctx, cancel := context.WithTimeout(ctx, StepTimeout)
	fl, err := rc.Flush(fctx, &replicatorpb.FlushRequest{Service: x.cfg.Site})
	cancel()
	if err != nil {
		return abort(fmt.Errorf("flush on %s: %w", from, err))
	}
	// 3. The candidate applies up to it.
	cc, err := x.repls.Replicator(cand)
	if err != nil {
		return abort(err)
	}
	wctx, cancel := context.WithTimeout(ctx, catchUpLimit+time.Second)
	_, err = cc.Wait(wctx, &replicatorpb.WaitRequest{Service: x.cfg.Site, AppliedSeqno: fl.GetSeqno(), TimeoutSeconds: catchUpLimit.Seconds()})
	cancel()
	if err != nil {
		return abort(fmt.Errorf("%s did not apply up to seqno %d: %w", cand, fl.GetSeqno(), err))
	}
	// 4. Promote.
	if err := x.ReplicatorTo(ctx, cand, policy.RoleMaster, ""); err != nil {
		return abort(err)
	}
	if err := x.ledger.Apply(policy.Change{Op: policy.OpPromote, Host: cand}); err != nil {
		return nil, err
	}
	x.leases.Granted(cand) // a promotion gives the lease (lease.go)
	if err := x.dbs.SetReadOnly(ctx, cand, false, StepTimeout); err != nil {
		x.log.Warn("make new primary writable", "host", cand, "error", err)
	}
	took := time.Since(blocked)
	// 5. Everyone else follows the new primary.
	failed := x.Repoint(ctx, cand, x.Others(cand))
	lines := []string{fmt.Sprintf("SWITCH TO %s COMPLETE (%s was primary; final seqno %d; writes blocked %.0f ms)", cand, from, fl.GetSeqno(), took.Seconds()*1000)}
	for _, f := range failed {
		lines = append(lines, "WARNING: could not re-point "+f)
	}
	x.alerts.Add(lines[0])
	x.alerts.Clear(FailoverBlocked)
	return lines, nil
}

// awaitOnline waits (within StepTimeout) for host's replicator to finish
// going online, and updates its facts with what it says then. A
// replicator in any other state is left as it is.
func (x *Actions) awaitOnline(ctx context.Context, facts map[string]policy.Facts, host string) {
	deadline := time.Now().Add(StepTimeout)
	for facts[host].ReplKind == replicatorpb.ReplicatorState_REPLICATOR_STATE_GOING_ONLINE && time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
		s, err := x.repls.ServiceStatus(ctx, host, x.cfg.Site, time.Second)
		if err != nil {
			return
		}
		setReplFacts(facts, host, s)
	}
}
