package agent

import (
	"slices"
	"testing"

	"github.com/carbidedb/carbide/rpc/gen/managerpb"
)

func TestRankSources(t *testing.T) {
	ds := func(host, state, repl string, stored int64) *managerpb.Datasource {
		return &managerpb.Datasource{Host: host, State: state, ManagerAlive: true, ReplicatorState: repl, MaxStoredSeqno: stored}
	}
	sources := []string{"east2:2112", "east3:2112", "east1:2112"}
	for _, c := range []struct {
		name string
		dss  []*managerpb.Datasource
		want []string
	}{
		{"healthy: replicas in configured order, primary last",
			[]*managerpb.Datasource{ds("east1", "ONLINE", "ONLINE", 5000), ds("east2", "ONLINE", "ONLINE", 5000), ds("east3", "ONLINE", "ONLINE", 4990)},
			[]string{"east2:2112", "east3:2112", "east1:2112"}},
		{"a replica whose replicator is offline goes after the primary",
			[]*managerpb.Datasource{ds("east1", "ONLINE", "ONLINE", 5000), ds("east2", "ONLINE", "OFFLINE:NORMAL", 5000), ds("east3", "ONLINE", "ONLINE", 5000)},
			[]string{"east3:2112", "east1:2112", "east2:2112"}},
		{"a lagging replica goes after the primary",
			[]*managerpb.Datasource{ds("east1", "ONLINE", "ONLINE", 9000), ds("east2", "ONLINE", "ONLINE", 7000), ds("east3", "ONLINE", "ONLINE", 8999)},
			[]string{"east3:2112", "east1:2112", "east2:2112"}},
		{"a shunned replica and a failed one last",
			[]*managerpb.Datasource{ds("east1", "FAILED", "OFFLINE:NORMAL", 10), ds("east2", "SHUNNED", "ONLINE", 10), ds("east3", "ONLINE", "ONLINE", 10)},
			[]string{"east3:2112", "east2:2112", "east1:2112"}},
	} {
		r := &managerpb.StatusReply{Primary: "east1", Datasources: c.dss}
		if c.name == "a shunned replica and a failed one last" {
			r.Primary = "east3"
		}
		if got := rankSources(r, sources); !slices.Equal(got, c.want) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}
