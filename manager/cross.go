package manager

import (
	"context"
	"maps"
	"net"
	"slices"
	"strconv"

	"github.com/carbidedb/carbide/internal/config"
	"github.com/carbidedb/carbide/manager/health"
	"github.com/carbidedb/carbide/manager/policy"
	"github.com/carbidedb/carbide/rpc/gen/managerpb"
	"github.com/carbidedb/carbide/rpc/gen/replicatorpb"
)

// crossStates asks this host's cross-site replicator for the state of
// each of its services (health.CrossStates).
func (a *Agent) crossStates(ctx context.Context, x *config.Install) health.Cross {
	var names []string
	for _, svc := range x.Services {
		names = append(names, svc.Name)
	}
	var c replicatorpb.ReplicatorClient
	if conn, err := a.remote.conn(net.JoinHostPort(a.remote.address(a.self), strconv.Itoa(x.Settings.RMIPort))); err == nil {
		c = replicatorpb.NewReplicatorClient(conn)
	}
	return health.CrossStates(ctx, c, names)
}

// serviceConflicts lists f's recorded conflicts for ls: site's cluster
// service first, then the cross-site services by name.
func serviceConflicts(f policy.Facts, site string) []*managerpb.ServiceConflicts {
	var out []*managerpb.ServiceConflicts
	if n := f.Conflicts[site]; n > 0 {
		out = append(out, &managerpb.ServiceConflicts{Service: site, Recorded: n})
	}
	for _, svc := range slices.Sorted(maps.Keys(f.Conflicts)) {
		if svc != site {
			out = append(out, &managerpb.ServiceConflicts{Service: svc, Recorded: f.Conflicts[svc], CrossSite: true})
		}
	}
	return out
}
