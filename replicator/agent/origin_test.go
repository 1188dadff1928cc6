package agent

import (
	"context"
	"net"
	"os"
	"slices"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/carbidedb/carbide/internal/config"
	"github.com/carbidedb/carbide/rpc/gen/managerpb"
	"github.com/carbidedb/carbide/rpc/replstate"
)

func TestRankSources(t *testing.T) {
	ds := func(host, state, repl string, stored int64) *managerpb.Datasource {
		return &managerpb.Datasource{Host: host, State: state, StateKind: managerpb.DatasourceState(managerpb.DatasourceState_value["DATASOURCE_STATE_"+state]), ManagerAlive: true, ReplicatorState: repl, ReplicatorStateKind: replstate.Of(repl), MaxStoredSeqno: stored}
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

// TestOriginOrderWithoutManagers: with no origin manager answering, a
// cross-site service's first source is the first origin member that
// accepts connections (by its [hosts] address), never a member of its own
// site: one that fell back to a neighbour goes back to the origin.
func TestOriginOrderWithoutManagers(t *testing.T) {
	l, err := net.Listen("tcp", "127.77.0.3:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	ini, err := os.ReadFile("../../examples/msaa.ini")
	if err != nil {
		t.Fatal(err)
	}
	hosts := "\n[hosts]\neast1=127.77.0.1\neast2=127.77.0.2\neast3=127.77.0.3\nwest1=127.77.0.3\nwest2=127.77.0.5\nwest3=127.77.0.6\n"
	cfg, err := config.Parse(config.Source{Name: "msaa.ini", Data: append(ini, hosts...)})
	if err != nil {
		t.Fatal(err)
	}
	o := newOriginOrder(cfg, cfg.Service("east"), []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())})
	defer o.close()
	sources := []string{"east2:" + port, "east3:" + port, "east1:" + port, "west1:" + port}
	if got := o.Order(context.Background(), sources); !slices.Equal(got, []string{"east3:" + port}) {
		t.Errorf("order %v, want east3 first (east2 refuses; west1 is a neighbour)", got)
	}
	if got := o.Order(context.Background(), []string{"east2:" + port, "west1:" + port}); got != nil {
		t.Errorf("order %v, want none (no origin member answers)", got)
	}
}
