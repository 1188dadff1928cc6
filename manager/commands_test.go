package manager

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/carbidedb/carbide/manager/policy"
	"github.com/carbidedb/carbide/rpc/command"
	"github.com/carbidedb/carbide/rpc/gen/managerpb"
	"github.com/carbidedb/carbide/rpc/reason"
)

// Every branch of the coordinator's commands against the fakes: what it
// answers, what it refuses (with which reason) and what the site's state
// holds after.
func TestCoordinatorCommands(t *testing.T) {
	ds := func(a managerpb.DatasourceAction, h string) *managerpb.CommandRequest {
		return command.Datasource(h, a)
	}
	const (
		shun    = managerpb.DatasourceAction_DATASOURCE_ACTION_SHUN
		welcome = managerpb.DatasourceAction_DATASOURCE_ACTION_WELCOME
		online  = managerpb.DatasourceAction_DATASOURCE_ACTION_ONLINE
		offline = managerpb.DatasourceAction_DATASOURCE_ACTION_OFFLINE
		fail    = managerpb.DatasourceAction_DATASOURCE_ACTION_FAIL
	)
	force := func(r *managerpb.CommandRequest) *managerpb.CommandRequest { r.Force = true; return r }
	for _, c := range []struct {
		name   string
		before func(*fakeSite)
		req    *managerpb.CommandRequest
		want   string // a line of the answer, or of the refusal
		refuse bool
		reason managerpb.Reason
		after  string // the datasource's state after, as "host=STATE"
	}{
		{name: "shun a replica", req: ds(shun, "east3"), want: "DataSource 'east3@east' is now SHUNNED(MANUALLY-SHUNNED)", after: "east3=SHUNNED"},
		{name: "shun the primary", req: ds(shun, "east1"), want: "east1 is the primary; shunning it stops all writes", refuse: true, after: "east1=ONLINE"},
		{name: "shun the primary, forced", req: force(ds(shun, "east1")), want: "is now SHUNNED", after: "east1=SHUNNED"},
		{name: "shun twice", before: func(f *fakeSite) { f.St.Datasources["east3"] = policy.DS{State: policy.Shunned} }, req: ds(shun, "east3"), want: "east3 is already SHUNNED"},
		{name: "welcome an ONLINE host", req: ds(welcome, "east3"), want: "east3 is ONLINE, not SHUNNED", refuse: true},
		{name: "welcome a shunned host", before: func(f *fakeSite) { f.St.Datasources["east3"] = policy.DS{State: policy.Shunned} }, req: ds(welcome, "east3"), want: "is now ONLINE", after: "east3=ONLINE"},
		{name: "online an ONLINE host", req: ds(online, "east3"), want: "east3 is already ONLINE"},
		{name: "online an OFFLINE host", before: func(f *fakeSite) { f.St.Datasources["east3"] = policy.DS{State: policy.Offline} }, req: ds(online, "east3"), want: "is now ONLINE", after: "east3=ONLINE"},
		{name: "online a FAILED host", before: func(f *fakeSite) { f.St.Datasources["east3"] = policy.DS{State: policy.Failed} }, req: ds(online, "east3"), want: "use datasource east3 recover", refuse: true, after: "east3=FAILED"},
		{name: "offline a replica", req: ds(offline, "east3"), want: "is now OFFLINE", after: "east3=OFFLINE"},
		{name: "offline the primary", req: ds(offline, "east1"), want: "taking it offline stops all writes", refuse: true},
		{name: "offline an OFFLINE host", before: func(f *fakeSite) { f.St.Datasources["east3"] = policy.DS{State: policy.Offline} }, req: ds(offline, "east3"), want: "east3 is OFFLINE, not ONLINE", refuse: true},
		{name: "fail a replica", req: ds(fail, "east3"), want: "is now FAILED(MANUALLY-FAILED)", after: "east3=FAILED"},
		{name: "fail the primary", req: ds(fail, "east1"), want: "failing it triggers a failover", refuse: true},
		{name: "a datasource without action", req: ds(managerpb.DatasourceAction_DATASOURCE_ACTION_UNSPECIFIED, "east3"), want: "no action", refuse: true, reason: managerpb.Reason_REASON_USAGE},
		{name: "an unknown host", req: ds(shun, "east9"), want: "east9 is not a datasource of east", refuse: true, reason: managerpb.Reason_REASON_USAGE},
		{name: "maintenance", req: command.Policy(managerpb.PolicyMode_POLICY_MODE_MAINTENANCE), want: "policy mode is now MAINTENANCE"},
		{name: "no policy", req: command.Policy(managerpb.PolicyMode_POLICY_MODE_UNSPECIFIED), want: "usage: set policy", refuse: true, reason: managerpb.Reason_REASON_USAGE},
		{name: "router of no connector", req: command.Router("east9", false), want: "east9 runs no connector of east", refuse: true, reason: managerpb.Reason_REASON_USAGE},
		{name: "every router offline", req: command.Router("*", false), want: "router * is now OFFLINE"},
		{name: "failover from a healthy primary", req: command.Failover(""), want: "the primary east1 is ONLINE, not FAILED", refuse: true},
		{name: "switch to an unknown host", req: command.Switch("east9"), want: "east9 is not a datasource", refuse: true, reason: managerpb.Reason_REASON_USAGE},
		{name: "replicator offline", req: command.Replicator("east3", false), want: "Replicator 'east3' is now OFFLINE"},
		{name: "replicator online", req: command.Replicator("east3", true), want: "Replicator 'east3' is now ONLINE"},
		{name: "heartbeat", req: command.Heartbeat(), want: "HEARTBEAT 'MANUAL' INSERTED ON east1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFakeSite(t, "east1", east...)
			if c.before != nil {
				c.before(f)
			}
			a := f.agent(t, time.Second)
			a.mon = policy.NewMonitor(a.cfg.Policy)
			lines, err := a.coordinatorCommand(context.Background(), c.req)
			got := strings.Join(lines, "\n")
			if err != nil {
				got = err.Error()
			}
			if (err != nil) != c.refuse || !strings.Contains(got, c.want) {
				t.Fatalf("%s: answered %q (refused %v), want %q (refused %v)", command.Text(c.req), got, err != nil, c.want, c.refuse)
			}
			if c.reason != 0 {
				if r := reason.Of(toStatus(err)); r != c.reason {
					t.Errorf("reason %v, want %v", r, c.reason)
				}
			}
			if c.after != "" {
				h, want, _ := strings.Cut(c.after, "=")
				if got := a.ledger.State().Datasources[h].State; got != want {
					t.Errorf("%s is %s after, want %s", h, got, want)
				}
			}
		})
	}
}

// What any manager answers itself: ping, members, and a request with no
// command.
func TestCommandsAnsweredHere(t *testing.T) {
	f := newFakeSite(t, "east1", east...)
	a := f.agent(t, time.Second)
	if _, err := a.command(context.Background(), &managerpb.CommandRequest{}); reason.Of(toStatus(err)) != managerpb.Reason_REASON_USAGE {
		t.Errorf("no command: %v", err)
	}
	if _, err := a.command(context.Background(), command.Service("east9", managerpb.ServiceAction_SERVICE_ACTION_RESTART)); err == nil || !strings.Contains(err.Error(), "east9 is not a datasource") {
		t.Errorf("service of an unknown host: %v", err)
	}
	if _, err := a.command(context.Background(), command.Service("east3", managerpb.ServiceAction_SERVICE_ACTION_UNSPECIFIED)); err == nil || !strings.Contains(err.Error(), "no action") {
		t.Errorf("service without action: %v", err)
	}
}

// TestTransitionsCounted: a switch and a failover the coordinator carries
// out, refuses or fails are counted by kind and result (the
// carbide_manager_transitions_total metric), whether an operator or the
// monitor asked.
func TestTransitionsCounted(t *testing.T) {
	f := newFakeSite(t, "east1", east...)
	a := f.agent(t, time.Second)
	ctx := context.Background()
	if _, err := a.coordinatorCommand(ctx, command.Switch("east3")); err != nil {
		t.Fatal(err)
	}
	if _, err := a.coordinatorCommand(ctx, command.Failover("")); err == nil {
		t.Fatal("a failover from a healthy primary was not refused")
	}
	f.Repls["east2"].OnlineErr = context.Canceled
	if _, err := a.coordinatorCommand(ctx, command.Switch("east2")); err == nil {
		t.Fatal("a switch whose candidate refuses the master role did not fail")
	}
	f.Repls["east2"].OnlineErr = nil
	f.DBs["east3"].Down = true
	a.execute(ctx, policy.Decision{Kind: policy.DecideFailover, Host: "east3", Reason: "dataserver down"})
	if p := a.ledger.State().Primary; p == "east3" {
		t.Fatalf("the monitor's failover did not happen: primary %s", p)
	}
	// [kind][result]: kind 0 switch, 1 failover; result 0 completed, 1
	// failed, 2 refused (a failover refused before it began is not one).
	for _, c := range []struct {
		kind, result int
		want         uint64
	}{{0, 0, 1}, {0, 1, 1}, {1, 0, 1}, {1, 2, 0}} {
		if got := a.transitions.n[c.kind][c.result].Load(); got != c.want {
			t.Errorf("transitions[%d][%d] = %d, want %d (all: %v)", c.kind, c.result, got, c.want, &a.transitions.n)
		}
	}
}
