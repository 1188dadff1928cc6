package router

import (
	"fmt"
	"net"
	"strconv"

	"github.com/carbidedb/carbide/rpc/gen/managerpb"
	"github.com/carbidedb/carbide/rpc/gen/replicatorpb"
)

// Router states.
const (
	StateOnline  = "ONLINE"
	StateOffline = "OFFLINE"
	StateOnHold  = "ONHOLD"
)

// stateKinds are the typed forms of a connector's states, as its reports
// carry them.
var stateKinds = map[string]managerpb.ConnectorState{
	StateOnline:  managerpb.ConnectorState_CONNECTOR_STATE_ONLINE,
	StateOffline: managerpb.ConnectorState_CONNECTOR_STATE_OFFLINE,
	StateOnHold:  managerpb.ConnectorState_CONNECTOR_STATE_ONHOLD,
}

// Target is a datasource connections go to.
type Target struct {
	Host string
	Addr string // host:port of its database
}

// Table is where new connections go now, worked out from a manager's
// status: a pure function of it, so every decision can be tested.
type Table struct {
	// State is this connector's: OFFLINE when the operator took it
	// offline, ONHOLD while the site has no routable primary (a switch or
	// failover under way, no coordinator, the primary not ONLINE).
	State string
	// Why says what keeps it from routing, for the error packet.
	Why string
	// Primary takes read-write connections; ReadOnly read-only ones (the
	// least-lagged ONLINE replica, else the primary). Zero when none.
	Primary, ReadOnly Target
	// Term changes with every promotion.
	Term uint64
	// Failed are datasources whose connections must close at once.
	Failed map[string]bool
	// Drain is the primary a switch is taking out of service: its
	// read-write connections close within the disconnect timeout, before it
	// goes read-only. Transition names that switch.
	Drain, Transition string
	// Index is the raft index of the managers' status the table was built
	// from: the connector reports it, and a command that changed the
	// routing waits until every running connector reports its own.
	Index uint64
}

// Route builds the table for connector self from r. addr maps a host to
// the address its database listens on, dbPort its port.
func Route(r *managerpb.StatusReply, self string, dbPort int, addr func(string) string) Table {
	t := Table{State: StateOnline, Term: r.GetTerm(), Index: r.GetIndex(), Failed: map[string]bool{}}
	target := func(h string) Target {
		return Target{Host: h, Addr: net.JoinHostPort(addr(h), strconv.Itoa(dbPort))}
	}
	var best *managerpb.Datasource
	for _, d := range r.GetDatasources() {
		if d.GetStateKind() == managerpb.DatasourceState_DATASOURCE_STATE_FAILED {
			t.Failed[d.GetHost()] = true
		}
		if d.GetHost() == r.GetPrimary() || d.GetStateKind() != managerpb.DatasourceState_DATASOURCE_STATE_ONLINE ||
			d.GetReplicatorStateKind() != replicatorpb.ReplicatorState_REPLICATOR_STATE_ONLINE || d.GetDataserverKind() != managerpb.DataserverState_DATASERVER_STATE_ONLINE {
			continue
		}
		if best == nil || d.GetAppliedLatency() < best.GetAppliedLatency() {
			best = d
		}
	}
	t.Transition = r.GetTransition()
	if r.GetTransitionKind() == managerpb.TransitionKind_TRANSITION_KIND_SWITCH {
		t.Drain = r.GetPrimary()
	}
	for _, rt := range r.GetRouters() {
		if rt.GetHost() == self && rt.GetStateKind() == managerpb.ConnectorState_CONNECTOR_STATE_OFFLINE {
			t.State, t.Why = StateOffline, fmt.Sprintf("connector %s is OFFLINE (router %s online brings it back)", self, self)
			return t
		}
	}
	var primary *managerpb.Datasource
	for _, d := range r.GetDatasources() {
		if d.GetHost() == r.GetPrimary() {
			primary = d
		}
	}
	switch {
	case !r.GetInitialized() || r.GetPrimary() == "":
		t.State, t.Why = StateOnHold, "the site has no primary yet"
	case r.GetTransitionKind() != managerpb.TransitionKind_TRANSITION_KIND_NONE:
		t.State, t.Why = StateOnHold, "a "+r.GetTransition()+" is under way"
	case primary == nil || primary.GetStateKind() != managerpb.DatasourceState_DATASOURCE_STATE_ONLINE:
		t.State, t.Why = StateOnHold, "the primary "+r.GetPrimary()+" is not ONLINE"
	default:
		t.Primary = target(r.GetPrimary())
	}
	if best != nil {
		t.ReadOnly = target(best.GetHost())
	} else {
		t.ReadOnly = t.Primary
	}
	return t
}
