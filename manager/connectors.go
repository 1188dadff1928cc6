package manager

import (
	"context"
	"time"

	"github.com/carbidedb/carbide/rpc/gen/managerpb"
)

// connectorReport is what a connector last told this manager.
type connectorReport struct {
	*managerpb.ConnectorReport
	at time.Time
}

func (a *Agent) connectorReported(r *managerpb.ConnectorReport) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.reports[r.GetHost()] = connectorReport{r, time.Now()}
}

// waitConnectorsDrained waits (at most limit) until every running
// connector of the site has said, for this transition, that it holds new
// connections (or is OFFLINE) and has no read-write connection to from
// left. A connector that runs (its manager's facts say so) but does not
// answer is waited for until the limit; one that does not run is not.
func (a *Agent) waitConnectorsDrained(ctx context.Context, from, transition string, limit time.Duration) {
	deadline := time.Now().Add(limit)
	for {
		var waiting []string
		facts := a.allFacts()
		now := time.Now()
		a.mu.Lock()
		for _, h := range a.site.Connectors {
			r, fresh, running := a.runningConnector(h, facts, now)
			if !running {
				continue
			}
			if !fresh || r.GetTransition() != transition || r.GetStateKind() == managerpb.ConnectorState_CONNECTOR_STATE_ONLINE ||
				r.GetDraining() != from || r.GetDrainingActive() > 0 {
				waiting = append(waiting, h)
			}
		}
		a.mu.Unlock()
		if len(waiting) == 0 {
			return
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			a.log.Warn("switch goes on without every connector drained", "connectors", waiting)
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}
