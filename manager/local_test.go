package manager

import (
	"testing"
	"time"

	"github.com/carbidedb/carbide/internal/config"
	"github.com/carbidedb/carbide/internal/install"
	"github.com/carbidedb/carbide/manager/policy"
	"github.com/carbidedb/carbide/rpc/gen/managerpb"
)

// The host's connector's counters reach its manager's facts through the
// connector's report (the Report RPC), and only while it reports.
func TestConnectorFactsFromReport(t *testing.T) {
	f := newFakeSite(t, "east1", east...)
	a := f.agent(t, time.Second)
	a.bound = &install.Bound{Install: &config.Install{Connector: true}}
	r := &managerpb.ConnectorReport{Host: a.self, Pid: 4242, State: "ONLINE", StateKind: managerpb.ConnectorState_CONNECTOR_STATE_ONLINE,
		Created: 9, Active: 2, PerHost: map[string]*managerpb.Connections{"east1": {Created: 7, Active: 2}, "east3": {Created: 2}}}
	a.connectorReported(r)
	other := "east1"
	if a.self == other {
		other = "east3"
	}
	a.connectorReported(&managerpb.ConnectorReport{Host: other, Pid: 1, Created: 100}) // another host's connector
	var got policy.Facts
	a.connectorFacts(&got)
	if got.ConnPID != 4242 || got.ConnState != "ONLINE" || got.Created != 9 || got.Active != 2 ||
		got.ConnPerHost["east1"] != [2]int64{7, 2} || got.ConnPerHost["east3"] != [2]int64{2, 0} || len(got.ConnPerHost) != 2 {
		t.Fatalf("facts %+v", got)
	}
	a.mu.Lock()
	rep := a.reports[a.self]
	rep.at = time.Now().Add(-4 * time.Second)
	a.reports[a.self] = rep
	a.mu.Unlock()
	got = policy.Facts{}
	a.connectorFacts(&got)
	if got.ConnPID != 0 || got.Created != 0 {
		t.Fatalf("a connector silent for 4 s still counted: %+v", got)
	}
}
