package router

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/carbidedb/carbide/internal/restapi"
	"github.com/carbidedb/carbide/rpc/command"
	"github.com/carbidedb/carbide/rpc/gen/managerpb"
)

// The connector's REST API v2 (docs/rest-api.md), on
// connector-rest-api-address:port: status from the proxy's own table and
// counters; online and offline are the managers' `router H online|offline`
// (sent to this host's manager first, then the site's others); onhold is
// this connector's own (hold.go).

// ConnectorStatus is the connector's state and routing now.
type ConnectorStatus struct {
	Host         string                 `json:"host"`
	DataService  string                 `json:"dataService"`
	PID          int                    `json:"pid"`
	State        string                 `json:"state"` // ONLINE, OFFLINE, ONHOLD
	Why          string                 `json:"why"`   // what keeps it from routing
	OperatorHold bool                   `json:"operatorHold"`
	Coordinator  string                 `json:"coordinator"`
	Primary      RouteTarget            `json:"primary"`  // read-write connections go here
	ReadOnly     RouteTarget            `json:"readOnly"` // read-only connections go here
	Term         uint64                 `json:"term"`
	Transition   string                 `json:"transition"`
	Drain        string                 `json:"drain"`
	Created      int64                  `json:"created"`
	Active       int64                  `json:"active"`
	Datasources  map[string]Connections `json:"datasources"`
	Listen       map[string]string      `json:"listen"` // readWrite, readOnly
}

// RouteTarget is a datasource connections go to; empty when none.
type RouteTarget struct {
	Host    string `json:"host"`
	Address string `json:"address"`
}

// Connections are connection counts.
type Connections struct {
	Created int64 `json:"created"`
	Active  int64 `json:"active"`
}

// ConnectorCommandResult is the payload of online, offline and onhold.
type ConnectorCommandResult struct {
	Command     string          `json:"command"`
	Coordinator string          `json:"coordinator"`
	Lines       []string        `json:"lines"`
	Connector   ConnectorStatus `json:"connector"`
}

func (a *Agent) restStatus() ConnectorStatus {
	t := a.proxy.Table()
	c := a.proxy.Counters()
	a.mu.Lock()
	coord := a.coord
	a.mu.Unlock()
	rw, ro := a.Addrs()
	s := ConnectorStatus{Host: a.bound.Host.Name, DataService: a.site.Name, PID: os.Getpid(), State: t.State, Why: t.Why, OperatorHold: a.onHold(),
		Coordinator: coord, Primary: RouteTarget{t.Primary.Host, t.Primary.Addr}, ReadOnly: RouteTarget{t.ReadOnly.Host, t.ReadOnly.Addr},
		Term: t.Term, Transition: t.Transition, Drain: t.Drain, Created: c.Created, Active: c.Active,
		Datasources: map[string]Connections{}, Listen: map[string]string{"readWrite": rw, "readOnly": ro}}
	for h, v := range c.PerHost {
		s.Datasources[h] = Connections{Created: v[0], Active: v[1]}
	}
	return s
}

// startREST serves the REST API in a goroutine of wg until ctx ends; with
// no credentials configured it logs why and serves nothing.
func (a *Agent) startREST(ctx context.Context, wg *sync.WaitGroup) {
	restapi.Start(ctx, wg, restapi.Config{Component: "connector", Addr: restapi.ListenAddr(a.bound.Host, a.st.ConnectorRESTAddress, a.st.ConnectorRESTPort),
		User: a.st.RESTAdminUser, Password: a.st.RESTAdminPassword, Host: a.bound.Host.Name, Logger: a.log, TLS: a.sec.RESTTLS()}, a.restRoutes)
}

func (a *Agent) restRoutes(srv *restapi.Server) {
	srv.Handle(http.MethodGet, "status", "ConnectorStatus", func(*http.Request) (any, error) { return a.restStatus(), nil })
	srv.Handle(http.MethodPost, "online", "ConnectorCommandResult", func(r *http.Request) (any, error) {
		a.setHold(false)
		return a.routerCommand(r.Context(), "online", func(t Table) bool { return t.State != StateOffline })
	})
	srv.Handle(http.MethodPost, "offline", "ConnectorCommandResult", func(r *http.Request) (any, error) {
		return a.routerCommand(r.Context(), "offline", func(t Table) bool { return t.State == StateOffline })
	})
	srv.Handle(http.MethodPost, "onhold", "ConnectorCommandResult", func(*http.Request) (any, error) {
		a.setHold(true)
		return ConnectorCommandResult{Command: "onhold", Lines: []string{fmt.Sprintf("connector %s is ONHOLD: new connections wait (up to %s) until online", a.bound.Host.Name, a.proxy.cfg.HoldTimeout)},
			Connector: a.restStatus()}, nil
	})
}

// routerCommand has the site's managers run `router <this host> verb`,
// trying the next manager while one is unreachable or has no coordinator,
// then waits (up to 3 s) for the routing table to show it (done).
func (a *Agent) routerCommand(ctx context.Context, verb string, done func(Table) bool) (any, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	req := command.Router(a.bound.Host.Name, verb == "online")
	var last error
	for _, h := range a.managers() {
		conn, err := a.client(a.managerAddr(h))
		if err != nil {
			last = err
			continue
		}
		cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
		rep, err := managerpb.NewManagerClient(conn).Command(cctx, req)
		ccancel()
		if err != nil {
			last = err
			if c := status.Code(err); c == codes.Unavailable || c == codes.DeadlineExceeded {
				continue
			}
			return nil, err
		}
		for deadline := time.Now().Add(3 * time.Second); !done(a.proxy.Table()) && time.Now().Before(deadline); {
			select {
			case <-a.proxy.Changed():
			case <-time.After(100 * time.Millisecond):
			}
		}
		return ConnectorCommandResult{Command: "router " + a.bound.Host.Name + " " + verb, Coordinator: rep.GetCoordinator(),
			Lines: append([]string{}, rep.GetLines()...), Connector: a.restStatus()}, nil
	}
	msg := "no manager answered"
	if s, ok := status.FromError(last); ok && last != nil {
		msg = s.Message()
	}
	return nil, status.Errorf(codes.Unavailable, "no manager of %s could run router %s %s (%s); try again when the site has a coordinator", a.site.Name, a.bound.Host.Name, verb, msg)
}
