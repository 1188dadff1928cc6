package manager

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/memberlist"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/carbidedb/carbide/manager/policy"
	"github.com/carbidedb/carbide/rpc/gen/managerpb"
	"github.com/carbidedb/carbide/rpc/gen/replicatorpb"
	"github.com/carbidedb/carbide/rpc/reason"
	"github.com/carbidedb/carbide/rpc/replstate"
)

// server adapts the agent to the gRPC API.
type server struct {
	managerpb.UnimplementedManagerServer
	a *Agent
}

func (s *server) Status(ctx context.Context, _ *managerpb.StatusRequest) (*managerpb.StatusReply, error) {
	return s.a.status(), nil
}

func (s *server) Watch(_ *managerpb.WatchRequest, stream managerpb.Manager_WatchServer) error {
	return s.a.watch(stream.Context(), stream.Send)
}

func (s *server) Command(ctx context.Context, req *managerpb.CommandRequest) (*managerpb.CommandReply, error) {
	rep, err := s.a.command(ctx, req)
	if err != nil {
		return nil, toStatus(err)
	}
	rep.Index = s.a.raft.AppliedIndex()
	return rep, nil
}

func (s *server) Local(ctx context.Context, req *managerpb.LocalRequest) (*managerpb.LocalReply, error) {
	lines, err := s.a.local(ctx, req.GetOp())
	if err != nil {
		return nil, toStatus(err)
	}
	return &managerpb.LocalReply{Lines: lines}, nil
}

func (s *server) Report(_ context.Context, req *managerpb.ConnectorReport) (*managerpb.ReportReply, error) {
	s.a.connectorReported(req)
	return &managerpb.ReportReply{}, nil
}

func (s *server) Lease(_ context.Context, req *managerpb.LeaseRequest) (*managerpb.LeaseReply, error) {
	return s.a.grantLease(req.GetHost()), nil
}

// UserError is a refusal worded for the operator; reason, when set, says
// why in terms a caller may decide on (rpc/reason).
type UserError struct {
	msg    string
	reason managerpb.Reason
}

func (e *UserError) Error() string { return e.msg }

func userErr(format string, args ...any) error { return &UserError{msg: fmt.Sprintf(format, args...)} }

// refusal is userErr with a reason.
func refusal(r managerpb.Reason, format string, args ...any) error {
	return &UserError{msg: fmt.Sprintf(format, args...), reason: r}
}

// usageErr is the refusal of a command's wrong words.
func usageErr(format string, args ...any) error {
	return refusal(managerpb.Reason_REASON_USAGE, format, args...)
}

func toStatus(err error) error {
	if _, ok := status.FromError(err); ok {
		return err
	}
	var ue *UserError
	switch {
	case errors.As(err, &ue):
		return reason.Status(codes.FailedPrecondition, ue.reason, err.Error())
	case errors.Is(err, errNoCoordinator):
		return reason.Status(codes.Unavailable, managerpb.Reason_REASON_NO_COORDINATOR, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	}
	return status.Error(codes.Internal, err.Error())
}

// watch sends the status now and after every change (at most every
// 100 ms, and at least every 2 s).
func (a *Agent) watch(ctx context.Context, send func(*managerpb.StatusReply) error) error {
	for {
		ch := a.changes()
		if err := send(a.status()); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ch:
		case <-time.After(time.Second): // connectors give up a silent watch (router/expire.go)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// transitionKind is the wire kind of a policy transition kind.
func transitionKind(k string) managerpb.TransitionKind {
	switch k {
	case policy.Switch:
		return managerpb.TransitionKind_TRANSITION_KIND_SWITCH
	case policy.Failover:
		return managerpb.TransitionKind_TRANSITION_KIND_FAILOVER
	}
	return managerpb.TransitionKind_TRANSITION_KIND_NONE
}

// status is this manager's view of the site.
func (a *Agent) status() *managerpb.StatusReply {
	st, index := a.fsm.view()
	now := time.Now()
	facts, _ := a.pool.view(now)
	facts[a.self] = a.localFacts()
	coord := a.coordinator()
	r := &managerpb.StatusReply{Site: a.site.Name, Host: a.self, Coordinator: coord, Policy: st.Policy,
		Primary: st.Primary, Term: st.Term, Transition: st.Transition.String(), TimeUnixMs: now.UnixMilli(),
		TransitionDrain: st.Transition != nil && st.Transition.Drain,
		Initialized:     st.Initialized, Index: index}
	if t := st.Transition; t != nil {
		r.TransitionKind, r.TransitionFrom, r.TransitionTo = transitionKind(t.Kind), t.From, t.To
	}
	if coord == "" {
		r.CoordinatorProblem = a.noCoordinatorReason()
	}
	a.mu.Lock()
	r.Warnings = append([]string(nil), a.warnings...)
	a.mu.Unlock()
	for i, h := range a.hosts {
		f := facts[h]
		ds := st.Datasources[h]
		role := policy.RoleSlave
		if h == st.Primary {
			role = policy.RoleMaster
		}
		d := &managerpb.Datasource{Host: h, Role: role, State: ds.State, Reason: ds.Reason, Address: a.bound.Config.Address(h),
			ManagerAlive: f.Alive, Dataserver: orDefault(f.DB, policy.DBUnknown), ReadOnly: f.ReadOnly,
			ReplicatorRole: f.ReplRole, ReplicatorState: f.ReplState, ReplicatorStateKind: f.ReplKind, AppliedSeqno: f.Applied, AppliedLatency: f.Latency,
			MaxStoredSeqno: f.MaxStored, MasterUri: f.MasterURI,
			Fenced: f.Fenced, Precedence: int64(i + 1), DataserverError: f.DBError, ManagerState: "ONLINE"}
		d.ConnectionsCreated, d.ConnectionsActive = connectionsTo(facts, h)
		for _, svc := range slices.Sorted(maps.Keys(f.Cross)) {
			d.Cross = append(d.Cross, &managerpb.CrossService{Service: svc, State: f.Cross[svc], Kind: replstate.Of(f.Cross[svc])})
		}
		d.Conflicts = serviceConflicts(f, a.site.Name)
		if !f.Alive {
			d.ManagerState = "STOPPED"
			d.Dataserver = policy.DBUnknown
		}
		d.StateKind, d.DataserverKind = datasourceKind(d.State), dataserverKind(d.Dataserver)
		r.Datasources = append(r.Datasources, d)
	}
	for _, h := range a.site.Connectors {
		f := facts[h]
		state := orDefault(st.Routers[h], policy.Online)
		r.Routers = append(r.Routers, &managerpb.Router{Host: h, State: state, StateKind: routerKind(state),
			Pid: f.ConnPID, Created: f.Created, Active: f.Active, Alive: f.Alive && f.ConnPID != 0})
	}
	states := map[string]string{a.self: "alive"}
	addrs := map[string]string{}
	for _, n := range a.pool.members() {
		states[n.Name] = nodeState(n.State)
		addrs[n.Name] = n.Address()
	}
	for _, h := range a.voters {
		st, ok := states[h]
		if !ok {
			st = "unknown"
		}
		r.Members = append(r.Members, &managerpb.Member{Host: h, Address: addrs[h], State: st, Voter: true,
			Coordinator: h == coord, Witness: slices.Contains(a.site.Witnesses, h)})
	}
	r.Alerts = st.Alerts
	for _, al := range st.Active {
		r.ActiveAlerts = append(r.ActiveAlerts, &managerpb.Alert{Key: al.Key, Text: al.Text, SinceUnixMs: al.Since.UnixMilli()})
	}
	return r
}

func nodeState(s memberlist.NodeStateType) string {
	switch s {
	case memberlist.StateAlive:
		return "alive"
	case memberlist.StateSuspect:
		return "suspect"
	case memberlist.StateDead:
		return "dead"
	case memberlist.StateLeft:
		return "left"
	}
	return "unknown"
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// noCoordinatorReason says why there is no coordinator.
func (a *Agent) noCoordinatorReason() string {
	now := time.Now()
	alive := 1
	for _, h := range a.voters {
		if h != a.self && a.pool.seenWithin(h, now, time.Second) {
			alive++
		}
	}
	need := len(a.voters)/2 + 1
	if alive < need {
		return fmt.Sprintf("no quorum: this manager reaches %d of the %d managers of %s, a coordinator needs %d; no automatic action is taken", alive, len(a.voters), a.site.Name, need)
	}
	return "an election is under way"
}

// command runs an operator command here or on the coordinator.
func (a *Agent) command(ctx context.Context, req *managerpb.CommandRequest) (*managerpb.CommandReply, error) {
	args := req.GetArgs()
	if len(args) == 0 {
		return nil, userErr("no command given")
	}
	here := func(lines []string, err error) (*managerpb.CommandReply, error) {
		if err != nil {
			return nil, err
		}
		return &managerpb.CommandReply{Lines: lines, Coordinator: a.self}, nil
	}
	switch args[0] {
	case "ping":
		return here([]string{fmt.Sprintf("manager %s@%s: alive, coordinator %s", a.self, a.site.Name, orDefault(a.coordinator(), "none"))}, nil)
	case "members":
		return here(a.membersLines(), nil)
	case "service":
		return here(a.serviceCommand(ctx, args))
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
		fwd := &managerpb.CommandRequest{Args: args, Force: req.GetForce(), Forwarded: true}
		rep, err := c.Command(ctx, fwd)
		if err != nil {
			return nil, err
		}
		// Answer once this manager's view includes the change, so that
		// a status right after shows it.
		for deadline := time.Now().Add(2 * time.Second); a.raft.AppliedIndex() < rep.GetIndex() && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
		}
		return &managerpb.CommandReply{Lines: rep.GetLines(), Coordinator: rep.GetCoordinator(), Unconfirmed: rep.GetUnconfirmed()}, nil
	}
	lines, unconfirmed, err := a.coordinate(ctx, args, req.GetForce())
	if err != nil {
		return nil, err
	}
	return &managerpb.CommandReply{Lines: lines, Coordinator: a.self, Unconfirmed: unconfirmed}, nil
}

// coordinate runs a command on the coordinator, one at a time, then
// waits (outside the lock) until its change holds in the connectors and
// managers it concerns (confirm.go).
func (a *Agent) coordinate(ctx context.Context, args []string, force bool) ([]string, string, error) {
	a.ops.Lock()
	before := a.ledger.index()
	begin := time.Now()
	lines, err := a.coordinatorCommand(ctx, args, force)
	after := a.ledger.index()
	a.ops.Unlock()
	if err != nil {
		a.log.Info("operator command refused", "command", strings.Join(args, " "), "force", force, "error", err)
		return nil, "", err
	}
	var unconfirmed string
	if after > before {
		var warnings []string
		warnings, unconfirmed = a.confirmCommand(ctx, args, after)
		lines = append(lines, warnings...)
	}
	if unconfirmed != "" {
		a.log.Warn("operator command not confirmed everywhere", "command", strings.Join(args, " "), "unconfirmed", unconfirmed)
	}
	a.log.Info("operator command", "command", strings.Join(args, " "), "force", force, "took", time.Since(begin).Round(time.Millisecond), "result", strings.Join(lines, "; "))
	return lines, unconfirmed, nil
}

func (a *Agent) membersLines() []string {
	r := a.status()
	lines := []string{fmt.Sprintf("%s/%s: coordinator %s", a.site.Name, a.self, orDefault(r.Coordinator, "none ("+r.CoordinatorProblem+")"))}
	for _, m := range r.Members {
		role := "manager"
		if m.Witness {
			role = "witness"
		}
		c := ""
		if m.Coordinator {
			c = " COORDINATOR"
		}
		lines = append(lines, fmt.Sprintf("%s(%s:%s) %s%s", m.Host, role, strings.ToUpper(m.State), m.Address, c))
	}
	return lines
}

// coordinatorCommand runs a command that changes the site.
func (a *Agent) coordinatorCommand(ctx context.Context, args []string, force bool) ([]string, error) {
	st := a.ledger.state()
	if !st.Initialized {
		return nil, userErr("the site state is not initialized yet; try again in a moment")
	}
	usage := func(u string) error { return usageErr("usage: %s", u) }
	switch args[0] {
	case "set":
		if len(args) != 3 || args[1] != "policy" {
			return nil, usage("set policy automatic|maintenance")
		}
		p := strings.ToUpper(args[2])
		if p != policy.Automatic && p != policy.Maintenance {
			return nil, usageErr("unknown policy %q; use automatic or maintenance", args[2])
		}
		if err := a.apply(policy.Change{Op: policy.OpPolicy, Value: p}); err != nil {
			return nil, err
		}
		a.mon.Reset()
		return []string{"policy mode is now " + p}, nil
	case "datasource":
		if len(args) != 3 {
			return nil, usage("datasource HOST shun|welcome|recover|online|offline|fail")
		}
		return a.datasourceCommand(ctx, st, args[1], args[2], force)
	case "replicator":
		if len(args) != 3 || (args[2] != "online" && args[2] != "offline") {
			return nil, usage("replicator HOST online|offline")
		}
		return a.replicatorCommand(ctx, args[1], args[2])
	case "router":
		if len(args) != 3 || (args[2] != "online" && args[2] != "offline") {
			return nil, usage("router HOST|* online|offline")
		}
		h := args[1]
		if h != "*" && !slices.Contains(a.site.Connectors, h) {
			return nil, usageErr("%s runs no connector of %s (connectors: %s)", h, a.site.Name, strings.Join(a.site.Connectors, ", "))
		}
		v := strings.ToUpper(args[2])
		if err := a.apply(policy.Change{Op: policy.OpRouter, Host: h, Value: v}); err != nil {
			return nil, err
		}
		return []string{fmt.Sprintf("router %s is now %s", h, v)}, nil
	case "switch":
		to, err := targetArg(args, "switch [to HOST]")
		if err != nil {
			return nil, err
		}
		if err := a.checkHost(to); err != nil {
			return nil, err
		}
		return a.doSwitch(ctx, to)
	case "failover":
		to, err := targetArg(args, "failover [to HOST]")
		if err != nil {
			return nil, err
		}
		if err := a.checkHost(to); err != nil {
			return nil, err
		}
		if st.Datasources[st.Primary].State != policy.Failed && !force {
			return nil, userErr("the primary %s is %s, not FAILED; use switch for a planned change, or set force true to fail over anyway", st.Primary, st.Datasources[st.Primary])
		}
		reason := st.Datasources[st.Primary].Reason
		if reason == "" || st.Datasources[st.Primary].State != policy.Failed {
			reason = "MANUAL-FAILOVER"
		}
		return a.doFailover(ctx, to, reason, force)
	case "cluster":
		if len(args) != 2 || args[1] != "heartbeat" {
			return nil, usage("cluster heartbeat")
		}
		rc, err := a.remote.replicator(st.Primary)
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
	return nil, usageErr("unknown command %q", args[0])
}

func targetArg(args []string, u string) (string, error) {
	switch {
	case len(args) == 1:
		return "", nil
	case len(args) == 3 && args[1] == "to":
		return args[2], nil
	}
	return "", usageErr("usage: %s", u)
}

func (a *Agent) checkHost(h string) error {
	if h == "" || slices.Contains(a.hosts, h) {
		return nil
	}
	return usageErr("%s is not a datasource of %s (datasources: %s)", h, a.site.Name, strings.Join(a.hosts, ", "))
}

func (a *Agent) datasourceCommand(ctx context.Context, st policy.State, h, verb string, force bool) ([]string, error) {
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
	switch verb {
	case "shun":
		if primary && !force {
			return nil, userErr("%s is the primary; shunning it stops all writes to %s. Switch first, or set force true", h, a.site.Name)
		}
		if ds.State == policy.Shunned {
			return []string{fmt.Sprintf("%s is already SHUNNED", h)}, nil
		}
		return set(policy.Shunned, "MANUALLY-SHUNNED")
	case "welcome":
		if ds.State != policy.Shunned {
			return nil, userErr("%s is %s, not SHUNNED; welcome re-admits a shunned datasource", h, ds)
		}
		if err := a.provisioned(h, force); err != nil {
			return nil, err
		}
		return set(policy.Online, "")
	case "recover":
		return a.doRecover(ctx, h, force)
	case "online":
		switch ds.State {
		case policy.Online:
			return []string{fmt.Sprintf("%s is already ONLINE", h)}, nil
		case policy.Offline, policy.Shunned:
			// The guide brings a shunned host back with online too.
		default:
			return nil, userErr("%s is %s; use datasource %s recover", h, ds, h)
		}
		f := a.allFacts()[h]
		if f.DB != policy.DBUp && !force {
			return nil, userErr("%s's dataserver is %s; start it first (service %s/mysql start)", h, orDefault(f.DB, policy.DBUnknown), h)
		}
		if err := a.provisioned(h, force); err != nil {
			return nil, err
		}
		return set(policy.Online, "")
	case "offline":
		if primary && !force {
			return nil, userErr("%s is the primary; taking it offline stops all writes to %s. Switch first, or set force true", h, a.site.Name)
		}
		if ds.State != policy.Online {
			return nil, userErr("%s is %s, not ONLINE", h, ds)
		}
		return set(policy.Offline, "")
	case "fail":
		if primary && !force {
			return nil, userErr("%s is the primary; failing it triggers a failover in AUTOMATIC policy. Set force true to do it", h)
		}
		return set(policy.Failed, "MANUALLY-FAILED")
	}
	return nil, userErr("datasource %s: unknown action %q; use shun, welcome, recover, online, offline or fail", h, verb)
}

func (a *Agent) replicatorCommand(ctx context.Context, h, verb string) ([]string, error) {
	if err := a.checkHost(h); err != nil {
		return nil, err
	}
	rc, err := a.remote.replicator(h)
	if err != nil {
		return nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if verb == "online" {
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
func (a *Agent) serviceCommand(ctx context.Context, args []string) ([]string, error) {
	if len(args) != 3 {
		return nil, usageErr("usage: service HOST/mysql start|stop|restart")
	}
	host, comp, ok := strings.Cut(args[1], "/")
	if !ok || comp != "mysql" {
		return nil, userErr("service %s: name the database as HOST/mysql", args[1])
	}
	if err := a.checkHost(host); err != nil {
		return nil, err
	}
	verb := args[2]
	if verb != "start" && verb != "stop" && verb != "restart" {
		return nil, userErr("service %s: unknown action %q; use start, stop or restart", args[1], verb)
	}
	if host == a.self {
		return a.local(ctx, "dataserver-"+verb)
	}
	c, err := a.remote.manager(host)
	if err != nil {
		return nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	rep, err := c.Local(cctx, &managerpb.LocalRequest{Op: "dataserver-" + verb})
	if err != nil {
		return nil, fmt.Errorf("the manager of %s: %w", host, err)
	}
	return rep.GetLines(), nil
}
