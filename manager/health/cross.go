package health

import (
	"context"
	"time"

	"github.com/carbidedb/carbide/internal/textutil"
	"github.com/carbidedb/carbide/rpc/gen/replicatorpb"
)

// CrossErrorMax bounds the error a cross-site service's state carries in
// the facts: they are gossiped as memberlist metadata, at most 512 bytes
// in all, and a conflict's error names both rows (the alert points to
// mm_trepctl status for the whole of it).
const CrossErrorMax = 120

// Cross is what the host's cross-site replicator says of its services:
// states (with the pending error after ": "; "" when it does not
// answer), the holds of those that hold a transaction, and the conflicts
// of those that recorded any.
type Cross struct {
	States    map[string]string
	Holds     map[string]float64
	Conflicts map[string]uint64
}

// CrossStates asks the cross-site replicator c (nil: it cannot be
// reached) for each of services.
func CrossStates(ctx context.Context, c replicatorpb.ReplicatorClient, services []string) Cross {
	out := Cross{States: map[string]string{}}
	for _, svc := range services {
		out.States[svc] = ""
		if c == nil {
			continue
		}
		sctx, cancel := context.WithTimeout(ctx, time.Second)
		r, err := c.Status(sctx, &replicatorpb.StatusRequest{Service: svc})
		cancel()
		if err != nil {
			continue
		}
		st := r.GetStatus()
		out.States[svc] = st.GetState()
		if e := st.GetPendingError(); e != "" && st.GetStateKind() == replicatorpb.ReplicatorState_REPLICATOR_STATE_OFFLINE_ERROR {
			out.States[svc] += ": " + textutil.Clip(textutil.FirstLine(e), CrossErrorMax)
		}
		if st.GetWaitingFor() != "" {
			if out.Holds == nil {
				out.Holds = map[string]float64{}
			}
			out.Holds[svc] = st.GetWaitingSeconds()
		}
		out.Conflicts = AddConflicts(out.Conflicts, svc, st.GetConflicts())
	}
	return out
}
