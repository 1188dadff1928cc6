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
	// 0. Writes still flowing, the candidate comes close: the writes are
	// blocked below only while it applies its last second or so. A
	// candidate that cannot is refused here, nothing blocked (under the
	// load of conflicts a replica fell minutes behind, and the switch
	// held every write for 30 s before it gave up).
	if err := x.nearlyCaughtUp(ctx, from, cand); err != nil {
		return nil, reason.Refuse("%v", err)
	}
	if now := x.ledger.State(); now.Primary != from || now.Transition != nil {
		return nil, reason.Refuse("the site changed while the switch waited for %s to catch up (primary %s, %v); nothing was done", cand, now.Primary, now.Transition)
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

// maxSwitchBlock is the longest a switch blocks writes for a candidate
// that keeps pace behind the primary: one further behind is refused.
const maxSwitchBlock = 5 * time.Second

// nearlyCaughtUp waits (within SwitchCatchUp), writes flowing, until
// cand applies what from has stored within a second of the wait, or its
// lag no longer shrinks and is at most maxSwitchBlock (a replica that
// keeps pace a few seconds behind: the switch then blocks writes for
// about that long).
// It says how far behind cand is when it does not reach what from had
// stored within the time left; a replicator that does not answer is left
// to the switch's steps, which say so.
func (x *Actions) nearlyCaughtUp(ctx context.Context, from, cand string) error {
	limit := x.cfg.SwitchCatchUp
	if limit <= 0 {
		limit = catchUpLimit
	}
	cc, err := x.repls.Replicator(cand)
	if err != nil {
		return nil
	}
	deadline := time.Now().Add(limit)
	last := time.Duration(-1) // how long the last wait that ended took
	for {
		ps, err := x.repls.ServiceStatus(ctx, from, x.cfg.Site, time.Second)
		if err != nil {
			return nil
		}
		target := ps.GetMaxStoredSeqno()
		left := time.Until(deadline)
		if left <= 0 {
			cs, err := x.repls.ServiceStatus(ctx, cand, x.cfg.Site, time.Second)
			if err != nil {
				return nil
			}
			behind := ""
			if last > 0 {
				behind = fmt.Sprintf(" (it stays about %v behind)", last.Round(100*time.Millisecond))
			}
			return fmt.Errorf("%s has applied seqno %d and %s has stored %d: in %v it did not catch up%s; "+
				"the switch did not start (no write was blocked): try again when it has caught up (trepctl status on %s)",
				cand, cs.GetAppliedLastSeqno(), from, target, limit, behind, cand)
		}
		began := time.Now()
		wctx, cancel := context.WithTimeout(ctx, left+time.Second)
		_, err = cc.Wait(wctx, &replicatorpb.WaitRequest{Service: x.cfg.Site, AppliedSeqno: target, TimeoutSeconds: left.Seconds()})
		cancel()
		took := time.Since(began)
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case err != nil && took < left:
			select { // a wait that failed at once: do not spin
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		case err != nil:
			// The deadline: the message above, next turn.
		case took <= time.Second, last >= 0 && took >= last*9/10 && took <= maxSwitchBlock:
			return nil
		default:
			last = took
		}
	}
}
