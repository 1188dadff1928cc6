package manager

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/carbidedb/carbide/internal/restapi"
	"github.com/carbidedb/carbide/rpc/command"
	"github.com/carbidedb/carbide/rpc/gen/managerpb"
)

// The manager's REST API v2 (docs/rest-api.md), on
// manager-rest-api-address:port: status and the site's control commands,
// run in process as the Command RPC runs them (forwarded to the
// coordinator when this manager is not it).

// ManagerStatus is this manager's view of its data service.
type ManagerStatus struct {
	DataService        string             `json:"dataService"`
	Host               string             `json:"host"`
	Coordinator        string             `json:"coordinator"`
	CoordinatorProblem string             `json:"coordinatorProblem"`
	PolicyMode         string             `json:"policyMode"`
	Primary            string             `json:"primary"`
	Term               uint64             `json:"term"`
	Transition         string             `json:"transition"`
	TransitionDrain    bool               `json:"transitionDrain"`
	Initialized        bool               `json:"initialized"`
	TimeUnixMs         int64              `json:"timeUnixMs"`
	Alerts             []string           `json:"alerts"`
	ActiveAlerts       []ActiveAlert      `json:"activeAlerts"`
	Warnings           []string           `json:"warnings"`
	Datasources        []DatasourceStatus `json:"datasources"`
	Connectors         []ConnectorState   `json:"connectors"`
	Managers           []ManagerMember    `json:"managers"`
}

// ActiveAlert is an alert whose condition holds now.
type ActiveAlert struct {
	Key         string `json:"key"`
	Text        string `json:"text"`
	SinceUnixMs int64  `json:"sinceUnixMs"`
}

// DatasourceStatus is one datasource as cctrl ls shows it.
type DatasourceStatus struct {
	Host               string  `json:"host"`
	Address            string  `json:"address"`
	Role               string  `json:"role"`
	State              string  `json:"state"`
	Reason             string  `json:"reason"`
	Precedence         int64   `json:"precedence"`
	Dataserver         string  `json:"dataserver"`
	DataserverError    string  `json:"dataserverError"`
	ReadOnly           bool    `json:"readOnly"`
	Fenced             bool    `json:"fenced"`
	ManagerState       string  `json:"managerState"`
	ReplicatorRole     string  `json:"replicatorRole"`
	ReplicatorState    string  `json:"replicatorState"`
	AppliedLastSeqno   int64   `json:"appliedLastSeqno"`
	AppliedLatency     float64 `json:"appliedLatency"`
	MaxStoredSeqno     int64   `json:"maxStoredSeqno"`
	MasterConnectURI   string  `json:"masterConnectUri"`
	ConnectionsCreated int64   `json:"connectionsCreated"`
	ConnectionsActive  int64   `json:"connectionsActive"`
}

// ConnectorState is a connector of the site as the managers know it.
type ConnectorState struct {
	Host    string `json:"host"`
	State   string `json:"state"`
	Alive   bool   `json:"alive"`
	PID     int64  `json:"pid"`
	Created int64  `json:"created"`
	Active  int64  `json:"active"`
}

// ManagerMember is a manager of the site.
type ManagerMember struct {
	Host        string `json:"host"`
	Address     string `json:"address"`
	State       string `json:"state"`
	Coordinator bool   `json:"coordinator"`
	Witness     bool   `json:"witness"`
}

// CommandResult is the payload of a control command.
type CommandResult struct {
	DataService string   `json:"dataService"`
	Command     string   `json:"command"`
	Coordinator string   `json:"coordinator"`
	Lines       []string `json:"lines"`
}

func restStatus(r *managerpb.StatusReply) ManagerStatus {
	s := ManagerStatus{DataService: r.GetSite(), Host: r.GetHost(), Coordinator: r.GetCoordinator(), CoordinatorProblem: r.GetCoordinatorProblem(),
		PolicyMode: r.GetPolicy(), Primary: r.GetPrimary(), Term: r.GetTerm(), Transition: r.GetTransition(), TransitionDrain: r.GetTransitionDrain(),
		Initialized: r.GetInitialized(), TimeUnixMs: r.GetTimeUnixMs(), Alerts: append([]string{}, r.GetAlerts()...), ActiveAlerts: []ActiveAlert{}, Warnings: append([]string{}, r.GetWarnings()...),
		Datasources: []DatasourceStatus{}, Connectors: []ConnectorState{}, Managers: []ManagerMember{}}
	for _, al := range r.GetActiveAlerts() {
		s.ActiveAlerts = append(s.ActiveAlerts, ActiveAlert{Key: al.GetKey(), Text: al.GetText(), SinceUnixMs: al.GetSinceUnixMs()})
	}
	for _, d := range r.GetDatasources() {
		s.Datasources = append(s.Datasources, DatasourceStatus{Host: d.GetHost(), Address: d.GetAddress(), Role: d.GetRole(), State: d.GetState(),
			Reason: d.GetReason(), Precedence: d.GetPrecedence(), Dataserver: d.GetDataserver(), DataserverError: d.GetDataserverError(),
			ReadOnly: d.GetReadOnly(), Fenced: d.GetFenced(), ManagerState: d.GetManagerState(), ReplicatorRole: d.GetReplicatorRole(),
			ReplicatorState: d.GetReplicatorState(), AppliedLastSeqno: d.GetAppliedSeqno(), AppliedLatency: d.GetAppliedLatency(),
			MaxStoredSeqno: d.GetMaxStoredSeqno(), MasterConnectURI: d.GetMasterUri(), ConnectionsCreated: d.GetConnectionsCreated(),
			ConnectionsActive: d.GetConnectionsActive()})
	}
	for _, c := range r.GetRouters() {
		s.Connectors = append(s.Connectors, ConnectorState{Host: c.GetHost(), State: c.GetState(), Alive: c.GetAlive(), PID: c.GetPid(),
			Created: c.GetCreated(), Active: c.GetActive()})
	}
	for _, m := range r.GetMembers() {
		s.Managers = append(s.Managers, ManagerMember{Host: m.GetHost(), Address: m.GetAddress(), State: m.GetState(),
			Coordinator: m.GetCoordinator(), Witness: m.GetWitness()})
	}
	return s
}

// startREST serves the REST API in a goroutine of wg until ctx ends; with
// no credentials configured it logs why and serves nothing.
func (a *Agent) startREST(ctx context.Context, wg *sync.WaitGroup) {
	restapi.Start(ctx, wg, restapi.Config{Component: "manager", Addr: restapi.ListenAddr(a.bound.Host, a.st.ManagerRESTAddress, a.st.ManagerRESTPort),
		User: a.st.RESTAdminUser, Password: a.st.RESTAdminPassword, Host: a.self, Logger: a.log, TLS: a.sec.RESTTLS()}, a.restRoutes)
}

// commandTimeout bounds a control command run for the REST API; the
// command does not stop when the client goes away (a switch is not left
// half done because curl was interrupted).
const commandTimeout = 2 * time.Minute

func (a *Agent) restRoutes(srv *restapi.Server) {
	rpc := &server{a: a}
	srv.Handle(http.MethodGet, "status", "ManagerStatus", func(r *http.Request) (any, error) {
		rep, err := rpc.Status(r.Context(), &managerpb.StatusRequest{})
		if err != nil {
			return nil, err
		}
		return restStatus(rep), nil
	})
	srv.Handle(http.MethodGet, "service/{svc}/status", "ManagerStatus", func(r *http.Request) (any, error) {
		if err := a.knownService(r.PathValue("svc")); err != nil {
			return nil, err
		}
		rep, err := rpc.Status(r.Context(), &managerpb.StatusRequest{})
		if err != nil {
			return nil, err
		}
		return restStatus(rep), nil
	})
	control := func(verb string, build func(to string) *managerpb.CommandRequest) {
		srv.Handle(http.MethodPost, "control/service/{svc}/"+verb, "CommandResult", func(r *http.Request) (any, error) {
			var body struct {
				To    string `json:"to"`
				Force bool   `json:"force"`
			}
			if err := a.knownService(r.PathValue("svc")); err != nil {
				return nil, err
			}
			if err := restapi.DecodeBody(r, &body); err != nil {
				return nil, err
			}
			ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), commandTimeout)
			defer cancel()
			req := build(body.To)
			req.Force = body.Force
			rep, err := rpc.Command(ctx, req)
			if err != nil {
				return nil, err
			}
			return CommandResult{DataService: a.site.Name, Command: command.Text(req), Coordinator: rep.GetCoordinator(),
				Lines: append([]string{}, rep.GetLines()...)}, nil
		})
	}
	control("switch", command.Switch)
	control("failover", command.Failover)
	control("heartbeat", func(string) *managerpb.CommandRequest { return command.Heartbeat() })
}

// knownService answers 404 for a data service this manager does not manage.
func (a *Agent) knownService(name string) error {
	if name == a.site.Name {
		return nil
	}
	return restapi.Error(http.StatusNotFound, fmt.Sprintf("this manager manages data service %s, not %s", a.site.Name, name))
}
