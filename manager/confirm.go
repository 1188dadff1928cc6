package manager

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/status"

	"github.com/carbidedb/carbide/internal/textutil"
	"github.com/carbidedb/carbide/manager/policy"
	"github.com/carbidedb/carbide/rpc/command"
	"github.com/carbidedb/carbide/rpc/gen/managerpb"
)

// A command returns when its effect holds: once the change is in the
// site's state (raft), the coordinator waits, for at most
// manager-command-wait, until every running connector and live manager
// the change concerns has applied it. Each confirms by one number, the
// raft index of the state it follows: a connector reports the index of
// the status its routing table was built from (router/agent.go), a
// manager answers Status with the index of its own state. The change is
// applied where that index reaches the coordinator's index after the
// change. Those that do not get there in time are named in WARNING lines
// and in the reply's unconfirmed sentence (cctrl fails the command).

// reportFresh is how recent a connector's report must be for the
// connector to count as running: it reports every 500 ms, so a connector
// that stopped (or whose host went down) drops out within it.
const reportFresh = 3 * time.Second

// audience is what a command's change must reach.
type audience struct {
	connectors []string // the connectors concerned (before skipping those not running)
	managers   bool     // every live manager of the site
	// routes: a connector's report shows where it routes, not only its
	// state (a datasource change or a switch does not change the state).
	routes bool
}

// audienceOf says whom the command args must reach; ok is false for a
// command that is not confirmed (its effect holds once it returns).
func (a *Agent) audienceOf(req *managerpb.CommandRequest) (audience, bool) {
	switch c := req.GetCommand().(type) {
	case *managerpb.CommandRequest_Router:
		if c.Router.GetHost() == "*" {
			return audience{connectors: a.site.Connectors}, true
		}
		return audience{connectors: []string{c.Router.GetHost()}}, true
	case *managerpb.CommandRequest_Policy:
		return audience{managers: true}, true
	case *managerpb.CommandRequest_Datasource:
		switch c.Datasource.GetAction() {
		case managerpb.DatasourceAction_DATASOURCE_ACTION_SHUN, managerpb.DatasourceAction_DATASOURCE_ACTION_WELCOME,
			managerpb.DatasourceAction_DATASOURCE_ACTION_ONLINE, managerpb.DatasourceAction_DATASOURCE_ACTION_OFFLINE:
			return audience{connectors: a.site.Connectors, routes: true}, true
		}
	case *managerpb.CommandRequest_Switch:
		return audience{connectors: a.site.Connectors, routes: true}, true
	}
	return audience{}, false
}

// confirmCommand waits until the change of req, which left the site's
// state at index target, holds in every running connector and live
// manager it concerns, or manager-command-wait passes. It returns a
// WARNING line for each that did not confirm, and one sentence naming
// them ("" when all did).
func (a *Agent) confirmCommand(ctx context.Context, req *managerpb.CommandRequest, target uint64) ([]string, string) {
	who, ok := a.audienceOf(req)
	limit := a.st.CommandWait
	if !ok || limit <= 0 {
		return nil, ""
	}
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	var mgrs []pending
	var wg sync.WaitGroup
	if who.managers {
		wg.Add(1)
		go func() { defer wg.Done(); mgrs = a.awaitManagers(ctx, target, limit) }()
	}
	all := a.awaitConnectors(ctx, who, target, limit)
	wg.Wait()
	all = append(all, mgrs...)
	if len(all) == 0 {
		return nil, ""
	}
	var lines, names []string
	for _, p := range all {
		lines, names = append(lines, p.line), append(names, p.who)
	}
	return lines, fmt.Sprintf("%s holds in the site's state, but %s did not confirm applying it within %s (manager-command-wait)",
		command.Text(req), strings.Join(names, ", "), limit)
}

// pending is a connector or manager that did not confirm a change: who
// ("connector east2") and the WARNING line saying what it still shows.
type pending struct{ who, line string }

// runningConnector tells whether the connector on h runs: it reported
// within reportFresh, or its host's manager is alive and says its
// connector reported to it that recently (a connector cut off from the
// coordinator). It returns its last report, and whether that is fresh
// (a.mu held).
func (a *Agent) runningConnector(h string, facts map[string]policy.Facts, now time.Time) (r connectorReport, fresh, running bool) {
	r, ok := a.reports[h]
	fresh = ok && now.Sub(r.at) < reportFresh
	return r, fresh, fresh || (facts[h].Alive && facts[h].ConnPID != 0)
}

// awaitConnectors waits until every running connector of who reports
// routing by index target or later, or ctx ends; it returns a WARNING
// line for each that did not.
func (a *Agent) awaitConnectors(ctx context.Context, who audience, target uint64, limit time.Duration) []pending {
	if len(who.connectors) == 0 {
		return nil
	}
	for {
		var lines []pending
		facts := a.allFacts()
		now := time.Now()
		a.mu.Lock()
		for _, h := range who.connectors {
			r, fresh, running := a.runningConnector(h, facts, now)
			switch {
			case !running, fresh && r.GetIndex() >= target:
			case !fresh:
				lines = append(lines, pending{"connector " + h, fmt.Sprintf("WARNING: connector %s runs but did not report within %s", h, limit)})
			default:
				lines = append(lines, pending{"connector " + h, fmt.Sprintf("WARNING: connector %s still shows %s after %s", h, connectorShows(r, who.routes), limit)})
			}
		}
		a.mu.Unlock()
		if len(lines) == 0 || ctx.Err() != nil {
			return lines
		}
		select {
		case <-ctx.Done():
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// connectorShows is what a connector's report says it does, for a
// WARNING line: its state, and where it routes when routes is set.
func connectorShows(r connectorReport, routes bool) string {
	if !routes || r.GetStateKind() != managerpb.ConnectorState_CONNECTOR_STATE_ONLINE {
		return r.GetState()
	}
	s := r.GetState() + " (writes to " + orDefault(r.GetPrimary(), "none")
	if ro := r.GetReadOnly(); ro != "" && ro != r.GetPrimary() {
		s += ", reads to " + ro
	}
	return s + ")"
}

// awaitManagers waits until every live manager of the site other than
// this one answers Status with index target or later, or ctx ends; it
// returns a WARNING line for each that did not. A manager is live when
// gossip heard from it within reportFresh.
func (a *Agent) awaitManagers(ctx context.Context, target uint64, limit time.Duration) []pending {
	now := time.Now()
	var mu sync.Mutex
	var out []pending
	var wg sync.WaitGroup
	for _, h := range a.voters {
		if h == a.self || !a.pool.SeenWithin(h, now, reportFresh) {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var last *managerpb.StatusReply
			var lastErr error
			for ctx.Err() == nil {
				r, err := a.views.view(ctx, h)
				switch {
				case err == nil && r.GetIndex() >= target:
					return
				case err == nil:
					last = r
				case ctx.Err() == nil:
					lastErr = err
				}
				select {
				case <-ctx.Done():
				case <-time.After(20 * time.Millisecond):
				}
			}
			var l string
			switch {
			case last != nil:
				l = fmt.Sprintf("WARNING: manager %s still shows policy %s after %s", h, last.GetPolicy(), limit)
			case lastErr != nil:
				l = fmt.Sprintf("WARNING: manager %s did not answer within %s: %s", h, limit, textutil.FirstLine(status.Convert(lastErr).Message()))
			default:
				l = fmt.Sprintf("WARNING: manager %s did not answer within %s", h, limit)
			}
			mu.Lock()
			out = append(out, pending{"manager " + h, l})
			mu.Unlock()
		}()
	}
	wg.Wait()
	slices.SortFunc(out, func(x, y pending) int { return strings.Compare(x.who, y.who) })
	return out
}
