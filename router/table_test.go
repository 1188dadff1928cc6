package router

import (
	"testing"

	"github.com/carbidedb/carbide/rpc/gen/managerpb"
	"github.com/carbidedb/carbide/rpc/replstate"
)

func site(mut func(r *managerpb.StatusReply)) *managerpb.StatusReply {
	ds := func(h, state string, lat float64) *managerpb.Datasource {
		return &managerpb.Datasource{Host: h, State: state, Dataserver: "ONLINE", ReplicatorState: "ONLINE", AppliedLatency: lat}
	}
	r := &managerpb.StatusReply{Initialized: true, Primary: "east1", Term: 3,
		Datasources: []*managerpb.Datasource{ds("east1", "ONLINE", 0), ds("east2", "ONLINE", 0.9), ds("east3", "ONLINE", 0.2)},
		Routers:     []*managerpb.Router{{Host: "east1", State: "ONLINE"}, {Host: "east2", State: "ONLINE"}}}
	if mut != nil {
		mut(r)
	}
	typed(r)
	return r
}

// typed sets r's typed states from the texts the cases write.
func typed(r *managerpb.StatusReply) {
	for _, d := range r.Datasources {
		d.StateKind = managerpb.DatasourceState(managerpb.DatasourceState_value["DATASOURCE_STATE_"+d.State])
		d.DataserverKind = managerpb.DataserverState(managerpb.DataserverState_value["DATASERVER_STATE_"+d.Dataserver])
		d.ReplicatorStateKind = replstate.Of(d.ReplicatorState)
	}
	for _, rt := range r.Routers {
		rt.StateKind = managerpb.ConnectorState(managerpb.ConnectorState_value["CONNECTOR_STATE_"+rt.State])
	}
}

func TestRoute(t *testing.T) {
	addr := func(h string) string {
		return map[string]string{"east1": "127.0.1.1", "east2": "127.0.1.2", "east3": "127.0.1.3"}[h]
	}
	for _, c := range []struct {
		name               string
		r                  *managerpb.StatusReply
		state, rw, ro, why string
	}{
		{"healthy: primary, and the least-lagged replica for reads", site(nil), StateOnline, "east1", "east3", ""},
		{"this connector offline", site(func(r *managerpb.StatusReply) { r.Routers[1].State = "OFFLINE" }), StateOffline, "", "", "connector east2 is OFFLINE (router east2 online brings it back)"},
		{"another connector offline does not matter", site(func(r *managerpb.StatusReply) { r.Routers[0].State = "OFFLINE" }), StateOnline, "east1", "east3", ""},
		{"switch under way: hold", site(switching), StateOnHold, "", "east3", "a switch east1 -> east3 is under way"},
		{"failed primary: hold", site(func(r *managerpb.StatusReply) { r.Datasources[0].State = "FAILED" }), StateOnHold, "", "east3", "the primary east1 is not ONLINE"},
		{"shunned and lagging replicas: the other one", site(func(r *managerpb.StatusReply) { r.Datasources[2].State = "SHUNNED" }), StateOnline, "east1", "east2", ""},
		{"no replica: reads go to the primary", site(func(r *managerpb.StatusReply) {
			r.Datasources[1].ReplicatorState = "OFFLINE:ERROR"
			r.Datasources[2].Dataserver = "STOPPED"
		}), StateOnline, "east1", "east1", ""},
		{"not initialized", site(func(r *managerpb.StatusReply) { r.Initialized = false }), StateOnHold, "", "east3", "the site has no primary yet"},
	} {
		tb := Route(c.r, "east2", 13306, addr)
		if tb.State != c.state || tb.Primary.Host != c.rw || tb.ReadOnly.Host != c.ro || tb.Why != c.why {
			t.Errorf("%s: got %s rw=%q ro=%q why=%q", c.name, tb.State, tb.Primary.Host, tb.ReadOnly.Host, tb.Why)
		}
		if tb.Primary.Host == "east1" && tb.Primary.Addr != "127.0.1.1:13306" {
			t.Errorf("%s: primary address %s", c.name, tb.Primary.Addr)
		}
	}
	// A switch drains the old primary, even on an OFFLINE connector (its
	// existing connections must not write to a read-only primary); a
	// failover does not (FAILED closes at once).
	for _, c := range []struct {
		r     *managerpb.StatusReply
		drain string
	}{
		{site(func(r *managerpb.StatusReply) { switching(r) }), "east1"},
		{site(func(r *managerpb.StatusReply) { switching(r); r.Routers[1].State = "OFFLINE" }), "east1"},
		{site(func(r *managerpb.StatusReply) {
			r.Transition, r.TransitionKind = "failover east1 -> east3", managerpb.TransitionKind_TRANSITION_KIND_FAILOVER
		}), ""},
		// The kind decides, not the words (which are for people).
		{site(func(r *managerpb.StatusReply) {
			r.Transition, r.TransitionKind = "switch-like words", managerpb.TransitionKind_TRANSITION_KIND_FAILOVER
		}), ""},
		{site(nil), ""},
	} {
		if tb := Route(c.r, "east2", 1, addr); tb.Drain != c.drain || tb.Transition != c.r.Transition {
			t.Errorf("transition %q: drain %q transition %q, want %q", c.r.Transition, tb.Drain, tb.Transition, c.drain)
		}
	}
	if tb := Route(site(func(r *managerpb.StatusReply) { r.Datasources[0].State = "FAILED" }), "east2", 1, addr); !tb.Failed["east1"] {
		t.Errorf("a FAILED datasource is not marked failed: %v", tb.Failed)
	}
}

// Every table carries the index of the status it was built from, whatever
// its state, and so do the expired and held ones: the connector reports
// it, and a command waits for it (manager/confirm.go).
func TestRouteCarriesIndex(t *testing.T) {
	addr := func(string) string { return "127.0.0.1" }
	for _, r := range []*managerpb.StatusReply{
		site(func(r *managerpb.StatusReply) { r.Index = 42 }),
		site(func(r *managerpb.StatusReply) { r.Index = 42; r.Routers[1].State = "OFFLINE" }),
		site(func(r *managerpb.StatusReply) { r.Index = 42; r.Transition = "switch east1 -> east3" }),
	} {
		tb := Route(r, "east2", 3306, addr)
		if tb.Index != 42 || Expired(tb, tableTTL).Index != 42 {
			t.Errorf("%s table: index %d, expired %d; want 42", tb.State, tb.Index, Expired(tb, tableTTL).Index)
		}
	}
}

// switching sets r's transition to a switch from east1 to east3.
func switching(r *managerpb.StatusReply) {
	r.Transition, r.TransitionKind = "switch east1 -> east3", managerpb.TransitionKind_TRANSITION_KIND_SWITCH
	r.TransitionFrom, r.TransitionTo = "east1", "east3"
}
