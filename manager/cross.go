package manager

import (
	"context"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/carbidedb/carbide/internal/config"
	"github.com/carbidedb/carbide/internal/textutil"
	"github.com/carbidedb/carbide/rpc/gen/replicatorpb"
)

// crossReport is what this host's cross-site replicator says of its
// services: states, and the holds of those that hold a transaction.
type crossReport struct {
	states map[string]string
	holds  map[string]float64
}

// crossStates asks this host's cross-site replicator for the state of
// each of its services, with the pending error after ": " ("" when it
// does not answer), and what their appliers hold.
func (a *Agent) crossStates(ctx context.Context, x *config.Install) crossReport {
	out := map[string]string{}
	var holds map[string]float64
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
		if e := st.GetPendingError(); e != "" && strings.HasPrefix(st.GetState(), "OFFLINE:ERROR") {
			out[svc.Name] += ": " + textutil.Clip(firstLine(e), crossErrorMax)
		}
		if st.GetWaitingFor() != "" {
			if holds == nil {
				holds = map[string]float64{}
			}
			holds[svc.Name] = st.GetWaitingSeconds()
		}
	}
	return crossReport{out, holds}
}
