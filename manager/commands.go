package manager

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/carbidedb/carbide/manager/policy"
	"github.com/carbidedb/carbide/rpc/command"
	"github.com/carbidedb/carbide/rpc/gen/managerpb"
	"github.com/carbidedb/carbide/rpc/gen/replicatorpb"
	"github.com/carbidedb/carbide/rpc/reason"
)

// Operator commands. A request arrives typed (rpc/command builds it from
// the operator's words); the manager switches on its kind and renders it
// as words only for logs and messages (command.Text).

// command runs an operator command here or on the coordinator.
func (a *Agent) command(ctx context.Context, req *managerpb.CommandRequest) (*managerpb.CommandReply, error) {
	here := func(lines []string, err error) (*managerpb.CommandReply, error) {
		if err != nil {
			return nil, err
		}
		return &managerpb.CommandReply{Lines: lines, Coordinator: a.self}, nil
	}
	switch c := req.GetCommand().(type) {
	case nil:
		return nil, usageErr("no command given")
	case *managerpb.CommandRequest_Ping:
		return here([]string{fmt.Sprintf("manager %s@%s: alive, coordinator %s", a.self, a.site.Name, orDefault(a.coordinator(), "none"))}, nil)
	case *managerpb.CommandRequest_Members:
		return here(a.membersLines(), nil)
	case *managerpb.CommandRequest_Service:
		return here(a.serviceCommand(ctx, c.Service))
	}
	coord := a.coordinator()
	if coord == "" {
		return nil, fmt.Errorf("%w: %s", errNoCoordinator, a.noCoordinatorReason())
	}
	if coord != a.self {
		if req.GetForwarded() {
			return nil, fmt.Errorf("%w: the coordinator moved while forwarding; run the command again", errNoCoordinator)
		}
		c, err := a.remote.manager(coord)
		if err != nil {
			return nil, err
		}
		fwd := proto.Clone(req).(*managerpb.CommandRequest)
		fwd.Forwarded = true
		rep, err := c.Command(ctx, fwd)
		if err != nil {
			return nil, err
		}
		// Answer once this manager's view includes the change, so that
		// a status right after shows it.
		for deadline := time.Now().Add(2 * time.Second); a.node.AppliedIndex() < rep.GetIndex() && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
		}
		return &managerpb.CommandReply{Lines: rep.GetLines(), Coordinator: rep.GetCoordinator(), Unconfirmed: rep.GetUnconfirmed()}, nil
	}
	lines, unconfirmed, err := a.coordinate(ctx, req)
	if err != nil {
		return nil, err
	}
	return &managerpb.CommandReply{Lines: lines, Coordinator: a.self, Unconfirmed: unconfirmed}, nil
}

// coordinate runs a command on the coordinator, one at a time, then
// waits (outside the lock) until its change holds in the connectors and
// managers it concerns (confirm.go).
func (a *Agent) coordinate(ctx context.Context, req *managerpb.CommandRequest) ([]string, string, error) {
	text, force := command.Text(req), req.GetForce()
	a.ops.Lock()
	before := a.ledger.Index()
	begin := time.Now()
	lines, err := a.coordinatorCommand(ctx, req)
	after := a.ledger.Index()
	a.ops.Unlock()
	if err != nil {
		a.log.Info("operator command refused", "command", text, "force", force, "error", err)
		return nil, "", err
	}
	var unconfirmed string
	if after > before {
		var warnings []string
		warnings, unconfirmed = a.confirmCommand(ctx, req, after)
		lines = append(lines, warnings...)
	}
	if unconfirmed != "" {
		a.log.Warn("operator command not confirmed everywhere", "command", text, "unconfirmed", unconfirmed)
	}
	a.log.Info("operator command", "command", text, "force", force, "took", time.Since(begin).Round(time.Millisecond), "result", strings.Join(lines, "; "))
	return lines, unconfirmed, nil
}

// coordinatorCommand runs a command that changes the site.
func (a *Agent) coordinatorCommand(ctx context.Context, req *managerpb.CommandRequest) ([]string, error) {
	st := a.ledger.State()
	if !st.Initialized {
		return nil, reason.Refuse("the site state is not initialized yet; try again in a moment")
	}
	force := req.GetForce()
	switch c := req.GetCommand().(type) {
	case *managerpb.CommandRequest_Policy:
		var p string
		switch c.Policy.GetMode() {
		case managerpb.PolicyMode_POLICY_MODE_AUTOMATIC:
			p = policy.Automatic
		case managerpb.PolicyMode_POLICY_MODE_MAINTENANCE:
			p = policy.Maintenance
		default:
			return nil, usageErr("usage: set policy automatic|maintenance")
		}
		if err := a.apply(policy.Change{Op: policy.OpPolicy, Value: p}); err != nil {
			return nil, err
		}
		a.mon.Reset()
		return []string{"policy mode is now " + p}, nil
	case *managerpb.CommandRequest_Datasource:
		return a.datasourceCommand(ctx, st, c.Datasource.GetHost(), c.Datasource.GetAction(), force)
	case *managerpb.CommandRequest_Replicator:
		return a.replicatorCommand(ctx, c.Replicator.GetHost(), c.Replicator.GetOnline())
	case *managerpb.CommandRequest_Router:
		h := c.Router.GetHost()
		if h != "*" && !slices.Contains(a.site.Connectors, h) {
			return nil, usageErr("%s runs no connector of %s (connectors: %s)", h, a.site.Name, strings.Join(a.site.Connectors, ", "))
		}
		v := policy.Offline
		if c.Router.GetOnline() {
			v = policy.Online
		}
		if err := a.apply(policy.Change{Op: policy.OpRouter, Host: h, Value: v}); err != nil {
			return nil, err
		}
		return []string{fmt.Sprintf("router %s is now %s", h, v)}, nil
	case *managerpb.CommandRequest_Switch:
		to := c.Switch.GetTo()
		if err := a.checkHost(to); err != nil {
			return nil, err
		}
		return a.doSwitch(ctx, to)
	case *managerpb.CommandRequest_Failover:
		to := c.Failover.GetTo()
		if err := a.checkHost(to); err != nil {
			return nil, err
		}
		if st.Datasources[st.Primary].State != policy.Failed && !force {
			return nil, reason.Refuse("the primary %s is %s, not FAILED; use switch for a planned change, or set force true to fail over anyway", st.Primary, st.Datasources[st.Primary])
		}
		reason := st.Datasources[st.Primary].Reason
		if reason == "" || st.Datasources[st.Primary].State != policy.Failed {
			reason = "MANUAL-FAILOVER"
		}
		return a.doFailover(ctx, to, reason, force)
	case *managerpb.CommandRequest_Heartbeat:
		rc, err := a.repls.Replicator(st.Primary)
		if err != nil {
			return nil, err
		}
		hctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		rep, err := rc.Heartbeat(hctx, &replicatorpb.HeartbeatRequest{Service: a.site.Name, Name: "MANUAL"})
		if err != nil {
			return nil, fmt.Errorf("heartbeat on the primary %s: %w", st.Primary, err)
		}
		return []string{fmt.Sprintf("HEARTBEAT 'MANUAL' INSERTED ON %s (seqno %d)", st.Primary, rep.GetSeqno())}, nil
	}
	return nil, usageErr("unknown command %q", command.Text(req))
}

func (a *Agent) checkHost(h string) error {
	if h == "" || slices.Contains(a.hosts, h) {
		return nil
	}
	return usageErr("%s is not a datasource of %s (datasources: %s)", h, a.site.Name, strings.Join(a.hosts, ", "))
}

func (a *Agent) datasourceCommand(ctx context.Context, st policy.State, h string, action managerpb.DatasourceAction, force bool) ([]string, error) {
	if h == "" {
		return nil, usageErr("usage: datasource HOST shun|welcome|recover|online|offline|fail")
	}
	if err := a.checkHost(h); err != nil {
		return nil, err
	}
	ds := st.Datasources[h]
	set := func(state, reason string) ([]string, error) {
		if err := a.apply(policy.Change{Op: policy.OpDatasource, Host: h, Value: state, Reason: reason}); err != nil {
			return nil, err
		}
		return []string{fmt.Sprintf("DataSource '%s@%s' is now %s", h, a.site.Name, policy.DS{State: state, Reason: reason})}, nil
	}
	primary := h == st.Primary
	switch action {
	case managerpb.DatasourceAction_DATASOURCE_ACTION_SHUN:
		if primary && !force {
			return nil, reason.Refuse("%s is the primary; shunning it stops all writes to %s. Switch first, or set force true", h, a.site.Name)
		}
		if ds.State == policy.Shunned {
			return []string{fmt.Sprintf("%s is already SHUNNED", h)}, nil
		}
		return set(policy.Shunned, "MANUALLY-SHUNNED")
	case managerpb.DatasourceAction_DATASOURCE_ACTION_WELCOME:
		if ds.State != policy.Shunned {
			return nil, reason.Refuse("%s is %s, not SHUNNED; welcome re-admits a shunned datasource", h, ds)
		}
		if err := a.act.Provisioned(h, force); err != nil {
			return nil, err
		}
		return set(policy.Online, "")
	case managerpb.DatasourceAction_DATASOURCE_ACTION_RECOVER:
		return a.act.Recover(ctx, h, force)
	case managerpb.DatasourceAction_DATASOURCE_ACTION_ONLINE:
		switch ds.State {
		case policy.Online:
			return []string{fmt.Sprintf("%s is already ONLINE", h)}, nil
		case policy.Offline, policy.Shunned:
			// The guide brings a shunned host back with online too.
		default:
			return nil, reason.Refuse("%s is %s; use datasource %s recover", h, ds, h)
		}
		f := a.allFacts()[h]
		if f.DB != policy.DBUp && !force {
			return nil, reason.Refuse("%s's dataserver is %s; start it first (service %s/mysql start)", h, orDefault(f.DB, policy.DBUnknown), h)
		}
		if err := a.act.Provisioned(h, force); err != nil {
			return nil, err
		}
		return set(policy.Online, "")
	case managerpb.DatasourceAction_DATASOURCE_ACTION_OFFLINE:
		if primary && !force {
			return nil, reason.Refuse("%s is the primary; taking it offline stops all writes to %s. Switch first, or set force true", h, a.site.Name)
		}
		if ds.State != policy.Online {
			return nil, reason.Refuse("%s is %s, not ONLINE", h, ds)
		}
		return set(policy.Offline, "")
	case managerpb.DatasourceAction_DATASOURCE_ACTION_FAIL:
		if primary && !force {
			return nil, reason.Refuse("%s is the primary; failing it triggers a failover in AUTOMATIC policy. Set force true to do it", h)
		}
		return set(policy.Failed, "MANUALLY-FAILED")
	}
	return nil, usageErr("datasource %s: no action; use shun, welcome, recover, online, offline or fail", h)
}

func (a *Agent) replicatorCommand(ctx context.Context, h string, online bool) ([]string, error) {
	if h == "" {
		return nil, usageErr("usage: replicator HOST online|offline")
	}
	if err := a.checkHost(h); err != nil {
		return nil, err
	}
	rc, err := a.repls.Replicator(h)
	if err != nil {
		return nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	verb := "offline"
	if online {
		verb = "online"
		_, err = rc.Online(cctx, &replicatorpb.OnlineRequest{Service: a.site.Name})
	} else {
		_, err = rc.Offline(cctx, &replicatorpb.OfflineRequest{Service: a.site.Name})
	}
	if err != nil {
		return nil, fmt.Errorf("replicator %s %s: %w", h, verb, err)
	}
	return []string{fmt.Sprintf("Replicator '%s' is now %s", h, strings.ToUpper(verb))}, nil
}

// serviceCommand runs `service HOST/mysql start|stop|restart` on that
// host's manager.
func (a *Agent) serviceCommand(ctx context.Context, c *managerpb.ServiceCommand) ([]string, error) {
	host := c.GetHost()
	if host == "" {
		return nil, usageErr("usage: service HOST/mysql start|stop|restart")
	}
	if err := a.checkHost(host); err != nil {
		return nil, err
	}
	var op managerpb.LocalOp
	switch c.GetAction() {
	case managerpb.ServiceAction_SERVICE_ACTION_START:
		op = managerpb.LocalOp_LOCAL_OP_DATASERVER_START
	case managerpb.ServiceAction_SERVICE_ACTION_STOP:
		op = managerpb.LocalOp_LOCAL_OP_DATASERVER_STOP
	case managerpb.ServiceAction_SERVICE_ACTION_RESTART:
		op = managerpb.LocalOp_LOCAL_OP_DATASERVER_RESTART
	default:
		return nil, usageErr("service %s/mysql: no action; use start, stop or restart", host)
	}
	if host == a.self {
		return a.local(ctx, op)
	}
	m, err := a.remote.manager(host)
	if err != nil {
		return nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	rep, err := m.Local(cctx, &managerpb.LocalRequest{Op: op})
	if err != nil {
		return nil, fmt.Errorf("the manager of %s: %w", host, err)
	}
	return rep.GetLines(), nil
}
