package manager

import (
	"context"
	"maps"
	"net"
	"slices"
	"strconv"
	"time"

	"github.com/carbidedb/carbide/internal/config"
	"github.com/carbidedb/carbide/internal/textutil"
	"github.com/carbidedb/carbide/manager/policy"
	"github.com/carbidedb/carbide/rpc/gen/managerpb"
	"github.com/carbidedb/carbide/rpc/gen/replicatorpb"
)

// crossReport is what this host's cross-site replicator says of its
// services: states, the holds of those that hold a transaction, and the
// conflicts of those that recorded any.
type crossReport struct {
	states    map[string]string
	holds     map[string]float64
	conflicts map[string]uint64
}

// crossStates asks this host's cross-site replicator for the state of
// each of its services, with the pending error after ": " ("" when it
// does not answer), what their appliers hold and the conflicts they
// recorded.
func (a *Agent) crossStates(ctx context.Context, x *config.Install) crossReport {
	out := map[string]string{}
	var holds map[string]float64
	var conflicts map[string]uint64
	conn, err := a.remote.conn(net.JoinHostPort(a.remote.address(a.self), strconv.Itoa(x.Settings.RMIPort)))
	for _, svc := range x.Services {
		out[svc.Name] = ""
		if err != nil {
			continue
		}
		sctx, cancel := context.WithTimeout(ctx, time.Second)
		r, err := replicatorpb.NewReplicatorClient(conn).Status(sctx, &replicatorpb.StatusRequest{Service: svc.Name})
		cancel()
		if err != nil {
			continue
		}
		st := r.GetStatus()
		out[svc.Name] = st.GetState()
		if e := st.GetPendingError(); e != "" && st.GetStateKind() == replicatorpb.ReplicatorState_REPLICATOR_STATE_OFFLINE_ERROR {
			out[svc.Name] += ": " + textutil.Clip(textutil.FirstLine(e), crossErrorMax)
		}
		if st.GetWaitingFor() != "" {
			if holds == nil {
				holds = map[string]float64{}
			}
			holds[svc.Name] = st.GetWaitingSeconds()
		}
		conflicts = addConflicts(conflicts, svc.Name, st.GetConflicts())
	}
	return crossReport{out, holds, conflicts}
}

// addConflicts returns m with service's n recorded conflicts (m as it is
// when n is 0: the facts name only the services that recorded some).
func addConflicts(m map[string]uint64, service string, n uint64) map[string]uint64 {
	if n == 0 {
		return m
	}
	if m == nil {
		m = map[string]uint64{}
	}
	m[service] = n
	return m
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
