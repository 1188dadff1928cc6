package agent

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"

	"github.com/carbidedb/carbide/internal/restapi"
	"github.com/carbidedb/carbide/rpc/gen/replicatorpb"
)

// The replicator's REST API v2 (docs/rest-api.md), on
// replicator-rest-api-address:port: it calls the control server in process.

// ReplicatorStatus is one service's status as the REST API sends it: the
// fields of trepctl status, named as trepctl names them.
type ReplicatorStatus struct {
	ServiceName             string            `json:"serviceName"`
	Role                    string            `json:"role"`
	State                   string            `json:"state"`
	AppliedLastSeqno        int64             `json:"appliedLastSeqno"`
	AppliedLastEventID      string            `json:"appliedLastEventId"`
	AppliedLatency          float64           `json:"appliedLatency"`
	MinStoredSeqno          int64             `json:"minStoredSeqno"`
	MaxStoredSeqno          int64             `json:"maxStoredSeqno"`
	MasterConnectURI        string            `json:"masterConnectUri"`
	Epoch                   uint64            `json:"epochNumber"`
	PendingError            string            `json:"pendingError"`
	PendingErrorSeqno       int64             `json:"pendingErrorSeqno"`
	PendingExceptionMessage string            `json:"pendingExceptionMessage"`
	Fields                  map[string]string `json:"fields"` // every field of trepctl status
}

func restStatus(s *replicatorpb.ServiceStatus) ReplicatorStatus {
	r := ReplicatorStatus{ServiceName: s.GetService(), Role: s.GetRole(), State: s.GetState(),
		AppliedLastSeqno: s.GetAppliedLastSeqno(), AppliedLastEventID: s.GetAppliedLastEventId(), AppliedLatency: s.GetAppliedLatency(),
		MinStoredSeqno: s.GetMinStoredSeqno(), MaxStoredSeqno: s.GetMaxStoredSeqno(), MasterConnectURI: s.GetMasterConnectUri(),
		Epoch: s.GetEpoch(), PendingError: s.GetPendingError(), PendingErrorSeqno: s.GetPendingErrorSeqno(),
		PendingExceptionMessage: s.GetPendingExceptionMessage(), Fields: map[string]string{}}
	for _, f := range s.GetFields() {
		r.Fields[f.GetName()] = f.GetValue()
	}
	return r
}

// ServiceList is the payload of GET services.
type ServiceList struct {
	Services []ServiceSummary `json:"services"`
}

// ServiceSummary names a service with its role and state.
type ServiceSummary struct {
	ServiceName string `json:"serviceName"`
	Role        string `json:"role"`
	State       string `json:"state"`
}

// StatusList is the payload of GET status without ?service.
type StatusList struct {
	Services []ReplicatorStatus `json:"services"`
}

// startREST serves the REST API in a goroutine of wg until ctx ends; off
// (saying why in the log) with replicator-rest-api=false or without
// credentials.
func (a *Agent) startREST(ctx context.Context, wg *sync.WaitGroup) {
	st := a.bound.Install.Settings
	if !st.ReplicatorREST {
		a.log.Info("REST API off", "reason", "replicator-rest-api=false")
		return
	}
	restapi.Start(ctx, wg, restapi.Config{Component: "replicator", Addr: restapi.ListenAddr(a.bound.Host, st.ReplicatorRESTAddress, st.ReplicatorRESTPort),
		User: st.RESTAdminUser, Password: st.RESTAdminPassword, Host: a.bound.Host.Name, Logger: a.log, TLS: a.sec.RESTTLS()}, a.restRoutes)
}

func (a *Agent) restRoutes(srv *restapi.Server) {
	c := &controlServer{a: a}
	srv.Handle(http.MethodGet, "services", "ServiceList", func(r *http.Request) (any, error) {
		rep, err := c.Services(r.Context(), &replicatorpb.ServicesRequest{})
		if err != nil {
			return nil, err
		}
		l := ServiceList{Services: []ServiceSummary{}}
		for _, s := range rep.GetServices() {
			l.Services = append(l.Services, ServiceSummary{ServiceName: s.GetService(), Role: s.GetRole(), State: s.GetState()})
		}
		sort.Slice(l.Services, func(i, j int) bool { return l.Services[i].ServiceName < l.Services[j].ServiceName })
		return l, nil
	})
	one := func(ctx context.Context, name string) (any, error) {
		if err := a.knownService(name); err != nil {
			return nil, err
		}
		rep, err := c.Status(ctx, &replicatorpb.StatusRequest{Service: name})
		if err != nil {
			return nil, err
		}
		return restStatus(rep.GetStatus()), nil
	}
	srv.Handle(http.MethodGet, "status", "ReplicatorStatusList", func(r *http.Request) (any, error) {
		if name := r.URL.Query().Get("service"); name != "" {
			p, err := one(r.Context(), name)
			if err != nil {
				return nil, err
			}
			return restapi.Typed("ReplicatorStatus", p), nil
		}
		rep, err := c.Services(r.Context(), &replicatorpb.ServicesRequest{})
		if err != nil {
			return nil, err
		}
		l := StatusList{Services: []ReplicatorStatus{}}
		for _, s := range rep.GetServices() {
			l.Services = append(l.Services, restStatus(s))
		}
		sort.Slice(l.Services, func(i, j int) bool { return l.Services[i].ServiceName < l.Services[j].ServiceName })
		return l, nil
	})
	srv.Handle(http.MethodGet, "service/{svc}/status", "ReplicatorStatus", func(r *http.Request) (any, error) {
		return one(r.Context(), r.PathValue("svc"))
	})
	srv.Handle(http.MethodPost, "service/{svc}/online", "ReplicatorStatus", func(r *http.Request) (any, error) {
		var body struct {
			SkipSeqnos []uint64 `json:"skipSeqnos"`
			FromEvent  string   `json:"fromEvent"`
		}
		name := r.PathValue("svc")
		if err := a.knownService(name); err != nil {
			return nil, err
		}
		if err := restapi.DecodeBody(r, &body); err != nil {
			return nil, err
		}
		rep, err := c.Online(r.Context(), &replicatorpb.OnlineRequest{Service: name, SkipSeqno: body.SkipSeqnos, FromEvent: body.FromEvent})
		if err != nil {
			return nil, err
		}
		return restStatus(rep.GetStatus()), nil
	})
	srv.Handle(http.MethodPost, "service/{svc}/offline", "ReplicatorStatus", func(r *http.Request) (any, error) {
		name := r.PathValue("svc")
		if err := a.knownService(name); err != nil {
			return nil, err
		}
		rep, err := c.Offline(r.Context(), &replicatorpb.OfflineRequest{Service: name})
		if err != nil {
			return nil, err
		}
		return restStatus(rep.GetStatus()), nil
	})
	srv.Handle(http.MethodPost, "service/{svc}/reset", "ReplicatorStatus", func(r *http.Request) (any, error) {
		var body struct {
			All bool `json:"all"`
			THL bool `json:"thl"`
			DB  bool `json:"db"`
		}
		name := r.PathValue("svc")
		if err := a.knownService(name); err != nil {
			return nil, err
		}
		if err := restapi.DecodeBody(r, &body); err != nil {
			return nil, err
		}
		if !body.All && !body.THL && !body.DB {
			return nil, restapi.Error(http.StatusBadRequest, `say what to reset in the body: {"all": true}, {"thl": true} or {"db": true}`)
		}
		rep, err := c.Reset(r.Context(), &replicatorpb.ResetRequest{Service: name, Thl: body.All || body.THL, Db: body.All || body.DB, Relay: body.All})
		if err != nil {
			return nil, err
		}
		return restStatus(rep.GetStatus()), nil
	})
}

// knownService answers 404 for a service this replicator does not run.
func (a *Agent) knownService(name string) error {
	if _, ok := a.byName[name]; ok {
		return nil
	}
	names := make([]string, 0, len(a.services))
	for _, s := range a.services {
		names = append(names, s.Name())
	}
	sort.Strings(names)
	return restapi.Error(http.StatusNotFound, fmt.Sprintf("this replicator has no service %s (services: %s)", name, strings.Join(names, ", ")))
}
