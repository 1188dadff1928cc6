package manager

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/carbidedb/carbide/manager/policy"
	"github.com/carbidedb/carbide/rpc/command"
	"github.com/carbidedb/carbide/rpc/gen/managerpb"
)

// fakeView is another manager's view: frozen (it stopped applying the
// site's changes) or cut (it does not answer).
type fakeView struct {
	frozen *managerpb.StatusReply
	cut    bool
}

type fakeViews struct{ f *fakeSite }

func (v fakeViews) view(ctx context.Context, host string) (*managerpb.StatusReply, error) {
	v.f.Mu.Lock()
	defer v.f.Mu.Unlock()
	m := v.f.mgrs[host]
	switch {
	case m == nil:
		return &managerpb.StatusReply{Host: host, Policy: v.f.St.Policy, Index: v.f.Changes}, nil
	case m.cut:
		return nil, status.Error(codes.Unavailable, "connection error: i/o timeout")
	}
	return m.frozen, nil
}

// confirmSite is a coordinator (east2) of a site with a connector on
// every host, which waits wait for confirmations.
func confirmSite(t *testing.T, wait time.Duration) (*fakeSite, *Agent) {
	t.Helper()
	f := newFakeSite(t, "east1", east...)
	f.St.Routers = map[string]string{}
	for _, h := range east {
		f.St.Routers[h] = policy.Online
	}
	a := f.agent(t, time.Second)
	a.site.Connectors = east
	a.voters = east
	a.st.CommandWait = wait
	a.mon = policy.NewMonitor(a.cfg.Policy)
	return f, a
}

// connector plays host's connector: every 20 ms it reports the table it
// would build from the site's state (applied: the ledger's index and the
// router's state), or, when !applies, the state it had at the start.
func (f *fakeSite) connector(ctx context.Context, a *Agent, host string, applies bool, delay time.Duration) {
	f.Mu.Lock()
	stale := &managerpb.ConnectorReport{Host: host, State: f.St.Routers[host], StateKind: routerKinds[f.St.Routers[host]], Index: f.Changes, Primary: f.St.Primary}
	f.Mu.Unlock()
	start := time.Now()
	keepReporting(ctx, a, func() *managerpb.ConnectorReport {
		if !applies || time.Since(start) < delay {
			return stale
		}
		f.Mu.Lock()
		defer f.Mu.Unlock()
		return &managerpb.ConnectorReport{Host: host, State: f.St.Routers[host], StateKind: routerKinds[f.St.Routers[host]], Index: f.Changes, Primary: f.St.Primary}
	})
}

// keepReporting reports what report returns now and every 20 ms until
// ctx ends, as a connector does (every 500 ms, and at every change).
func keepReporting(ctx context.Context, a *Agent, report func() *managerpb.ConnectorReport) {
	a.connectorReported(report())
	go func() {
		for ctx.Err() == nil {
			time.Sleep(20 * time.Millisecond)
			a.connectorReported(report())
		}
	}()
}

// router * offline returns once every connector reported the new state,
// and not before.
func TestCommandWaitsForConnectors(t *testing.T) {
	f, a := confirmSite(t, 2*time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, h := range east {
		f.connector(ctx, a, h, true, 300*time.Millisecond)
	}
	begin := time.Now()
	lines, unconfirmed, err := a.coordinate(ctx, cmd("router", "*", "offline"))
	took := time.Since(begin)
	if err != nil {
		t.Fatal(err)
	}
	if joined(lines) != "router * is now OFFLINE" || unconfirmed != "" {
		t.Fatalf("reply %q, unconfirmed %q", lines, unconfirmed)
	}
	if took < 300*time.Millisecond || took > 1500*time.Millisecond {
		t.Fatalf("took %v: want it to wait for the connectors' reports (300 ms), no longer", took)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, h := range east {
		if r := a.reports[h]; r.GetState() != policy.Offline {
			t.Errorf("connector %s reports %s when the command returned", h, r.GetState())
		}
	}
}

// A connector that keeps reporting its old routing makes the command say
// so after manager-command-wait, and fail; the others confirmed.
func TestCommandNamesConnectorThatDoesNotConfirm(t *testing.T) {
	f, a := confirmSite(t, 300*time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f.connector(ctx, a, "east1", true, 0)
	f.connector(ctx, a, "east2", false, 0)
	f.connector(ctx, a, "east3", true, 0)
	begin := time.Now()
	lines, unconfirmed, err := a.coordinate(ctx, cmd("router", "*", "offline"))
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(begin); took < 300*time.Millisecond || took > time.Second {
		t.Errorf("took %v: want the bound, 300 ms", took)
	}
	want := "router * is now OFFLINE | WARNING: connector east2 still shows ONLINE after 300ms"
	if joined(lines) != want {
		t.Fatalf("reply %q, want %q", joined(lines), want)
	}
	if !strings.Contains(unconfirmed, "connector east2 did not confirm") || strings.Contains(unconfirmed, "east1") || strings.Contains(unconfirmed, "east3") {
		t.Fatalf("unconfirmed %q", unconfirmed)
	}
	// Its reports still follow the index before the first change.
	lines, _, err = a.coordinate(ctx, cmd("router", "*", "online"))
	if err != nil || !strings.Contains(joined(lines), "WARNING: connector east2 still shows ONLINE after") {
		t.Fatalf("router * online: %q, %v", lines, err)
	}
}

// A connector whose reports stopped (its process or host is down) is not
// waited for; nor is one that did not take part (router east1 offline
// concerns east1's connector only).
func TestCommandSkipsStoppedConnector(t *testing.T) {
	f, a := confirmSite(t, 2*time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f.connector(ctx, a, "east1", true, 0)
	f.connector(ctx, a, "east2", true, 0)
	a.mu.Lock()
	a.reports["east3"] = connectorReport{&managerpb.ConnectorReport{Host: "east3", State: "ONLINE", StateKind: managerpb.ConnectorState_CONNECTOR_STATE_ONLINE}, time.Now().Add(-10 * time.Second)}
	a.mu.Unlock()
	begin := time.Now()
	lines, unconfirmed, err := a.coordinate(ctx, cmd("router", "*", "offline"))
	if err != nil || unconfirmed != "" || joined(lines) != "router * is now OFFLINE" {
		t.Fatalf("reply %q, unconfirmed %q, err %v", lines, unconfirmed, err)
	}
	if took := time.Since(begin); took > time.Second {
		t.Errorf("took %v: a stopped connector was waited for", took)
	}

	f.connector(ctx, a, "east3", false, 0) // runs, never confirms
	lines, unconfirmed, err = a.coordinate(ctx, cmd("router", "east1", "online"))
	if err != nil || unconfirmed != "" || joined(lines) != "router east1 is now ONLINE" {
		t.Fatalf("router east1 online: reply %q, unconfirmed %q, err %v", lines, unconfirmed, err)
	}
}

// A datasource change is confirmed by the routing; the warning says where
// the connector still routes.
func TestDatasourceCommandShowsRoutes(t *testing.T) {
	f, a := confirmSite(t, 200*time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f.Mu.Lock()
	stale := &managerpb.ConnectorReport{Host: "east1", State: "ONLINE", StateKind: managerpb.ConnectorState_CONNECTOR_STATE_ONLINE, Index: f.Changes, Primary: "east1", ReadOnly: "east3"}
	f.Mu.Unlock()
	keepReporting(ctx, a, func() *managerpb.ConnectorReport { return stale })
	lines, unconfirmed, err := a.coordinate(ctx, cmd("datasource", "east3", "shun"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(joined(lines), "WARNING: connector east1 still shows ONLINE (writes to east1, reads to east3) after 200ms") || unconfirmed == "" {
		t.Fatalf("reply %q, unconfirmed %q", lines, unconfirmed)
	}
	// Nothing changed: nothing to wait for (east1 would not confirm).
	lines, unconfirmed, err = a.coordinate(ctx, cmd("datasource", "east3", "shun"))
	if err != nil || unconfirmed != "" || joined(lines) != "east3 is already SHUNNED" {
		t.Fatalf("shun again: reply %q, unconfirmed %q, err %v", lines, unconfirmed, err)
	}
}

// set policy waits for every live manager to hold the change; one that
// does not is named with the policy it still shows, one out of gossip is
// not waited for.
func TestSetPolicyWaitsForManagers(t *testing.T) {
	f, a := confirmSite(t, 300*time.Millisecond)
	ctx := context.Background()
	lines, unconfirmed, err := a.coordinate(ctx, cmd("set", "policy", "maintenance"))
	if err != nil || unconfirmed != "" || joined(lines) != "policy mode is now MAINTENANCE" {
		t.Fatalf("reply %q, unconfirmed %q, err %v", lines, unconfirmed, err)
	}

	f.Mu.Lock()
	f.mgrs = map[string]*fakeView{"east1": {frozen: &managerpb.StatusReply{Host: "east1", Policy: policy.Maintenance, Index: f.Changes}}}
	f.Mu.Unlock()
	lines, unconfirmed, err = a.coordinate(ctx, cmd("set", "policy", "automatic"))
	if err != nil {
		t.Fatal(err)
	}
	if joined(lines) != "policy mode is now AUTOMATIC | WARNING: manager east1 still shows policy MAINTENANCE after 300ms" ||
		!strings.Contains(unconfirmed, "manager east1 did not confirm") {
		t.Fatalf("reply %q, unconfirmed %q", lines, unconfirmed)
	}

	// east3's manager is in gossip but its API does not answer.
	f.Mu.Lock()
	f.mgrs = map[string]*fakeView{"east3": {cut: true}}
	f.Mu.Unlock()
	lines, unconfirmed, err = a.coordinate(ctx, cmd("set", "policy", "automatic"))
	if err != nil || !strings.Contains(joined(lines), "WARNING: manager east3 did not answer within 300ms: connection error: i/o timeout") ||
		!strings.Contains(unconfirmed, "manager east3 did not confirm") {
		t.Fatalf("reply %q, unconfirmed %q, err %v", lines, unconfirmed, err)
	}
	f.Mu.Lock()
	f.mgrs = map[string]*fakeView{"east1": {frozen: &managerpb.StatusReply{Host: "east1", Policy: policy.Maintenance}}}
	f.Mu.Unlock()

	// east1's manager is gone from gossip: not waited for (it would not
	// confirm).
	east1, _ := a.pool.View(time.Now())
	a.pool.Heard("east1", east1["east1"], time.Now().Add(-time.Minute))
	lines, unconfirmed, err = a.coordinate(ctx, cmd("set", "policy", "maintenance"))
	if err != nil || unconfirmed != "" || joined(lines) != "policy mode is now MAINTENANCE" {
		t.Fatalf("reply %q, unconfirmed %q, err %v", lines, unconfirmed, err)
	}
}

// manager-command-wait 0 waits for nobody.
func TestCommandWaitZero(t *testing.T) {
	f, a := confirmSite(t, 0)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f.connector(ctx, a, "east2", false, 0)
	lines, unconfirmed, err := a.coordinate(ctx, cmd("router", "*", "offline"))
	if err != nil || unconfirmed != "" || joined(lines) != "router * is now OFFLINE" {
		t.Fatalf("reply %q, unconfirmed %q, err %v", lines, unconfirmed, err)
	}
}

// cmd is the typed request of a command's words.
func cmd(words ...string) *managerpb.CommandRequest {
	r, err := command.Parse(words)
	if err != nil {
		panic(err)
	}
	return r
}
