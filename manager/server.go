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
	rep.Index = s.a.node.AppliedIndex()
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

// errNoCoordinator: this manager is not the coordinator and knows none.
var errNoCoordinator = errors.New("manager: no coordinator")

// usageErr is the refusal of a command's wrong words.
func usageErr(format string, args ...any) error {
	return reason.Refusef(managerpb.Reason_REASON_USAGE, format, args...)
}

func toStatus(err error) error {
	if _, ok := status.FromError(err); ok {
		return err
	}
	switch {
	case reason.Refused(err):
		return reason.Status(codes.FailedPrecondition, reason.Of(err), err.Error())
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

// status is this manager's view of the site.
func (a *Agent) status() *managerpb.StatusReply {
	st, index := a.ledger.View()
	now := time.Now()
	facts, _ := a.pool.View(now)
	facts[a.self] = a.localFacts()
	coord := a.coordinator()
	r := &managerpb.StatusReply{Site: a.site.Name, Host: a.self, Coordinator: coord, Policy: st.Policy,
		Primary: st.Primary, Term: st.Term, Transition: st.Transition.String(), TimeUnixMs: now.UnixMilli(),
		TransitionDrain: st.Transition != nil && st.Transition.Drain,
		Initialized:     st.Initialized, Index: index}
	if t := st.Transition; t != nil {
		r.TransitionKind, r.TransitionFrom, r.TransitionTo = transitionKinds[t.Kind], t.From, t.To
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
		d.StateKind, d.DataserverKind = datasourceKinds[d.State], dataserverKinds[d.Dataserver]
		r.Datasources = append(r.Datasources, d)
	}
	for _, h := range a.site.Connectors {
		f := facts[h]
		state := orDefault(st.Routers[h], policy.Online)
		r.Routers = append(r.Routers, &managerpb.Router{Host: h, State: state, StateKind: routerKinds[state],
			Pid: f.ConnPID, Created: f.Created, Active: f.Active, Alive: f.Alive && f.ConnPID != 0})
	}
	states := map[string]string{a.self: "alive"}
	addrs := map[string]string{}
	for _, n := range a.pool.Members() {
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
		if h != a.self && a.pool.SeenWithin(h, now, time.Second) {
			alive++
		}
	}
	need := len(a.voters)/2 + 1
	if alive < need {
		return fmt.Sprintf("no quorum: this manager reaches %d of the %d managers of %s, a coordinator needs %d; no automatic action is taken", alive, len(a.voters), a.site.Name, need)
	}
	return "an election is under way"
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
