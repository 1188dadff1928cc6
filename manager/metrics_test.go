package manager

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/carbidedb/carbide/internal/exporter"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/carbidedb/carbide/rpc/gen/managerpb"
	"github.com/carbidedb/carbide/rpc/reason"
)

// gather collects c and flattens it: "name{label=value,…}" → value.
func gather(t *testing.T, c prometheus.Collector) map[string]float64 {
	t.Helper()
	m, err := exporter.Gather(c)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestManagerCollector(t *testing.T) {
	status := &managerpb.StatusReply{Site: "east", Host: "east2", Coordinator: "east2", Policy: "MAINTENANCE", Primary: "east1", Term: 3,
		Initialized: true, Transition: "switch east1 -> east3", TransitionKind: managerpb.TransitionKind_TRANSITION_KIND_SWITCH,
		Datasources: []*managerpb.Datasource{
			{Host: "east1", State: "ONLINE", AppliedSeqno: 42, ManagerAlive: true},
			{Host: "east2", State: "SHUNNED", AppliedSeqno: 40, AppliedLatency: 0.25, ManagerAlive: true},
			{Host: "east3", State: "FAILED", AppliedSeqno: -1},
		},
		Routers: []*managerpb.Router{{Host: "east1", State: "ONLINE"}, {Host: "east2", State: "OFFLINE"}},
		Members: []*managerpb.Member{{Host: "east1", State: "alive"}, {Host: "east2", State: "alive"}, {Host: "east3", State: "dead"}},
	}
	var counts transitionCounts
	for _, err := range []error{nil, nil, errors.New("flush on east1: timeout"), reason.Refuse("a switch is under way")} {
		counts.count("switch", &err)
	}
	var ok error
	counts.count("failover", &ok)
	c := collector{site: "east", self: "east2", status: func() *managerpb.StatusReply { return status }, quorum: func() bool { return true }, transitions: &counts}
	got := gather(t, c)
	for k, want := range map[string]float64{
		"carbide_manager_policy{policy=MAINTENANCE,site=east}":                           1,
		"carbide_manager_policy{policy=AUTOMATIC,site=east}":                             0,
		"carbide_manager_coordinator{site=east}":                                         1,
		"carbide_manager_coordinator_known{site=east}":                                   1,
		"carbide_manager_quorum{site=east}":                                              1,
		"carbide_manager_members{site=east,state=alive}":                                 2,
		"carbide_manager_members{site=east,state=dead}":                                  1,
		"carbide_manager_members{site=east,state=suspect}":                               0,
		"carbide_manager_term{site=east}":                                                3,
		"carbide_manager_transition{kind=switch,site=east}":                              1,
		"carbide_manager_transition{kind=failover,site=east}":                            0,
		"carbide_manager_transitions_total{kind=switch,result=completed,site=east}":      2,
		"carbide_manager_transitions_total{kind=switch,result=failed,site=east}":         1,
		"carbide_manager_transitions_total{kind=switch,result=refused,site=east}":        1,
		"carbide_manager_transitions_total{kind=failover,result=completed,site=east}":    1,
		"carbide_manager_transitions_total{kind=failover,result=failed,site=east}":       0,
		"carbide_manager_datasource_state{datasource=east1,site=east,state=ONLINE}":      1,
		"carbide_manager_datasource_state{datasource=east2,site=east,state=SHUNNED}":     1,
		"carbide_manager_datasource_state{datasource=east2,site=east,state=ONLINE}":      0,
		"carbide_manager_datasource_state{datasource=east3,site=east,state=FAILED}":      1,
		"carbide_manager_datasource_primary{datasource=east1,site=east}":                 1,
		"carbide_manager_datasource_primary{datasource=east2,site=east}":                 0,
		"carbide_manager_datasource_applied_seqno{datasource=east1,site=east}":           42,
		"carbide_manager_datasource_applied_seqno{datasource=east3,site=east}":           -1,
		"carbide_manager_datasource_applied_latency_seconds{datasource=east2,site=east}": 0.25,
		"carbide_manager_datasource_manager_alive{datasource=east3,site=east}":           0,
		"carbide_manager_router_state{router=east2,site=east,state=OFFLINE}":             1,
		"carbide_manager_router_state{router=east2,site=east,state=ONLINE}":              0,
	} {
		v, ok := got[k]
		if !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", k, v, ok, want)
		}
	}
	if t.Failed() {
		t.Log(fmt.Sprint(got))
	}
}

// TestManagerCollectorBeforeInit: a manager without a site state yet
// reports no policy and no primary, and no coordinator.
func TestManagerCollectorBeforeInit(t *testing.T) {
	var counts transitionCounts
	c := collector{site: "east", self: "east1", status: func() *managerpb.StatusReply {
		return &managerpb.StatusReply{Site: "east", Datasources: []*managerpb.Datasource{{Host: "east1", AppliedSeqno: -1}}}
	}, quorum: func() bool { return false }, transitions: &counts}
	got := gather(t, c)
	for k := range got {
		if strings.HasPrefix(k, "carbide_manager_policy") || strings.HasPrefix(k, "carbide_manager_datasource_state") {
			t.Errorf("%s reported before the site state exists", k)
		}
	}
	if got["carbide_manager_coordinator_known{site=east}"] != 0 || got["carbide_manager_quorum{site=east}"] != 0 ||
		got["carbide_manager_datasource_primary{datasource=east1,site=east}"] != 0 {
		t.Errorf("metrics = %v", got)
	}
}
