package actions

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/carbidedb/carbide/internal/textutil"
	"github.com/carbidedb/carbide/manager/policy"
	"github.com/carbidedb/carbide/rpc/gen/managerpb"
	"github.com/carbidedb/carbide/rpc/gen/replicatorpb"
	"github.com/carbidedb/carbide/rpc/reason"
)

// Recover brings a FAILED or SHUNNED datasource back as a replica of
// the primary, refusing when its history diverged from the primary's.
func (x *Actions) Recover(ctx context.Context, host string, force bool) ([]string, error) {
	st := x.ledger.State()
	ds, ok := st.Datasources[host]
	if !ok {
		return nil, reason.Refuse("%s is not a datasource of %s (datasources: %s)", host, x.cfg.Site, strings.Join(x.cfg.Hosts, ", "))
	}
	if host == st.Primary && ds.State != policy.Failed {
		return nil, reason.Refuse("%s is the primary; nothing to recover", host)
	}
	if host == st.Primary {
		return nil, reason.Refuse("%s is the FAILED primary; fail over to a replica first (failover), then recover %s as a replica", host, host)
	}
	if err := x.Provisioned(host, force); err != nil {
		return nil, err
	}
	if ds.State == policy.Online {
		// ONLINE with its replicator taken offline (replicator H
		// offline): recover brings the replicator back.
		if f := x.facts()[host]; f.ReplKind != replicatorpb.ReplicatorState_REPLICATOR_STATE_UNSPECIFIED && f.ReplKind != replicatorpb.ReplicatorState_REPLICATOR_STATE_ONLINE {
			if err := x.ReplicatorTo(ctx, host, policy.RoleSlave, x.THLURI(st.Primary)); err != nil {
				return nil, err
			}
			return []string{fmt.Sprintf("%s is ONLINE; its replicator was %s and is ONLINE again", host, f.ReplState)}, nil
		}
		return []string{fmt.Sprintf("%s is already ONLINE", host)}, nil
	}
	if _, err := x.dbs.ReadOnly(ctx, host, 2*time.Second); err != nil {
		return nil, reason.Refuse("cannot recover %s: its database does not answer (%s); start it first (service %s/mysql start)", host, textutil.FirstLine(err.Error()), host)
	}
	if err := x.dbs.SetReadOnly(ctx, host, true, StepTimeout); err != nil {
		return nil, err
	}
	// A former primary may hold writes it committed but never extracted
	// (its database died first): they exist on that host alone.
	var warn []string
	if s, err := x.repls.ServiceStatus(ctx, host, x.cfg.Site, 2*time.Second); err == nil && s.GetRole() == policy.RoleMaster && s.GetAppliedLastEventId() != "" {
		lost, err := x.dbs.Orphans(ctx, host, s.GetAppliedLastEventId())
		switch {
		case err != nil:
			return nil, fmt.Errorf("cannot recover %s: cannot read its binlog after its last extracted event %s: %w", host, s.GetAppliedLastEventId(), err)
		case len(lost) > 0 && !force:
			return nil, reason.Refuse("cannot recover %s: its binlog holds %d transaction(s) after %s that never reached the site and would stay on %s alone (%s); reprovision %s (tprovision), or set force true to bring it back as it is",
				host, len(lost), s.GetAppliedLastEventId(), host, strings.Join(lost, "; "), host)
		case len(lost) > 0:
			warn = append(warn, fmt.Sprintf("WARNING: %s keeps %d transaction(s) the site never got: %s", host, len(lost), strings.Join(lost, "; ")))
		}
	}
	primaryStored := int64(-1)
	if ps, err := x.repls.ServiceStatus(ctx, st.Primary, x.cfg.Site, 2*time.Second); err == nil {
		primaryStored = ps.GetMaxStoredSeqno()
	}
	if err := x.ReplicatorTo(ctx, host, policy.RoleSlave, x.THLURI(st.Primary)); err != nil {
		return nil, fmt.Errorf("cannot recover %s: %w", host, err)
	}
	// The replicator checks its history against the primary's on
	// connecting; a divergence leaves it OFFLINE:ERROR.
	// It is recovered once it applied what the primary had when the
	// recovery began (an apply error shows by then), or after 10 s ONLINE.
	var status *replicatorpb.ServiceStatus
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		s, err := x.repls.ServiceStatus(ctx, host, x.cfg.Site, time.Second)
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
			return nil, reason.Refuse("cannot recover %s: its history diverged from the primary %s: %s; reprovision it (tprovision) or use set force true to bring it ONLINE anyway", host, st.Primary, msg)
		}
		if !force {
			return nil, reason.Refuse("cannot recover %s: its replicator is %s: %s", host, status.GetState(), msg)
		}
	}
	if err := x.ledger.Apply(policy.Change{Op: policy.OpDatasource, Host: host, Value: policy.Online}); err != nil {
		return nil, err
	}
	return append(warn, fmt.Sprintf("DATASOURCE '%s@%s' RECOVERED (replica of %s, replicator %s)", host, x.cfg.Site, st.Primary, status.GetState())), nil
}

// Provisioned refuses to bring back a host whose database holds part of
// a tprovision copy (unless forced).
func (x *Actions) Provisioned(host string, force bool) error {
	if f := x.facts()[host]; f.Incomplete != "" && !force {
		return reason.Refusef(managerpb.Reason_REASON_INCOMPLETE_COPY, "%s's database holds part of a tprovision copy that did not finish (%s); run tprovision on %s again, or set force true to bring it back as it is", host, f.Incomplete, host)
	}
	return nil
}
