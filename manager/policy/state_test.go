package policy

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/carbidedb/carbide/rpc/gen/replicatorpb"
)

// site is an initialized state: primary east1, replicas east2 and east3,
// connectors on east1 and east2.
func site(t *testing.T) State {
	t.Helper()
	st, err := State{}.Apply(Change{Op: OpInit, Host: "east1", Hosts: []string{"east1", "east2", "east3"}, Routers: []string{"east1", "east2"}})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// switching is site with a switch east1 -> east2 under way.
func switching(t *testing.T) State {
	t.Helper()
	st, err := site(t).Apply(Change{Op: OpBegin, Transition: &Transition{Kind: Switch, From: "east1", To: "east2"}})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestApplyRejects(t *testing.T) {
	empty := func(*testing.T) State { return State{} }
	tests := []struct {
		name   string
		state  func(*testing.T) State
		change Change
		want   string // in the error
	}{
		{"change before init", empty, Change{Op: OpPolicy, Value: Maintenance}, "before the site state is initialized"},
		{"promote before init", empty, Change{Op: OpPromote, Host: "east1"}, "before the site state is initialized"},
		{"init primary not a host", empty, Change{Op: OpInit, Host: "east4", Hosts: []string{"east1", "east2"}}, "primary east4 is not among"},
		{"init without hosts", empty, Change{Op: OpInit, Host: "east1"}, "primary east1 is not among"},
		{"init unknown policy", empty, Change{Op: OpInit, Host: "east1", Hosts: []string{"east1"}, Value: "MANUAL"}, `unknown policy "MANUAL"`},
		{"init twice", site, Change{Op: OpInit, Host: "east1", Hosts: []string{"east1"}}, "already initialized"},
		{"unknown policy", site, Change{Op: OpPolicy, Value: "automatic"}, `unknown policy "automatic"`},
		{"empty policy", site, Change{Op: OpPolicy}, `unknown policy ""`},
		{"datasource not a member", site, Change{Op: OpDatasource, Host: "east4", Value: Online}, "east4 is not a datasource"},
		{"datasource unknown state", site, Change{Op: OpDatasource, Host: "east2", Value: "BROKEN"}, `unknown datasource state "BROKEN"`},
		{"router unknown state", site, Change{Op: OpRouter, Host: "east1", Value: Shunned}, `unknown router state "SHUNNED"`},
		{"all routers unknown state", site, Change{Op: OpRouter, Host: "*", Value: "DOWN"}, `unknown router state "DOWN"`},
		{"router on a host without one", site, Change{Op: OpRouter, Host: "east3", Value: Offline}, "east3 runs no connector"},
		{"begin without a transition", site, Change{Op: OpBegin}, "begin without a transition"},
		{"begin unknown kind", site, Change{Op: OpBegin, Transition: &Transition{Kind: "restart", From: "east1", To: "east2"}}, `unknown transition "restart"`},
		{"begin from a replica", site, Change{Op: OpBegin, Transition: &Transition{Kind: Switch, From: "east2", To: "east3"}}, "east2 is not the primary"},
		{"begin to a non-member", site, Change{Op: OpBegin, Transition: &Transition{Kind: Failover, From: "east1", To: "east4"}}, "east4 is not a replica"},
		{"begin to the primary", site, Change{Op: OpBegin, Transition: &Transition{Kind: Switch, From: "east1", To: "east1"}}, "east1 is not a replica"},
		{"begin during a switch", switching, Change{Op: OpBegin, Transition: &Transition{Kind: Failover, From: "east1", To: "east3"}}, "a switch east1 -> east2 is already under way"},
		{"promote a non-member", site, Change{Op: OpPromote, Host: "east4"}, "east4 is not a datasource"},
		{"promote another host than the switch's", switching, Change{Op: OpPromote, Host: "east3"}, "promote east3 during switch east1 -> east2"},
		{"a failover does not drain", site, Change{Op: OpBegin, Transition: &Transition{Kind: Failover, From: "east1", To: "east2", Drain: true}}, "only a switch drains"},
		{"drained without a transition", site, Change{Op: OpDrained}, "drained without a transition"},
		{"unknown change", site, Change{Op: "reboot"}, `unknown change "reboot"`},
		{"no op", site, Change{}, `unknown change ""`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := tt.state(t)
			got, err := st.Apply(tt.change)
			if err == nil {
				t.Fatalf("Apply(%+v) = nil error, want one with %q", tt.change, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not say %q", err, tt.want)
			}
			want := tt.state(t)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("returned state %+v, want the state unchanged %+v", got, want)
			}
			if !reflect.DeepEqual(st, want) {
				t.Errorf("receiver became %+v, want it unchanged %+v", st, want)
			}
		})
	}
}

// TestSwitchDrain: the old primary of a switch stays writable while the
// connectors drain it, and no database is writable after OpDrained until
// the promotion.
func TestSwitchDrain(t *testing.T) {
	st, err := site(t).Apply(Change{Op: OpBegin, Transition: &Transition{Kind: Switch, From: "east1", To: "east2", Drain: true}})
	if err != nil {
		t.Fatal(err)
	}
	if !st.Writable("east1") || st.Writable("east2") {
		t.Errorf("draining: east1 writable %v, east2 writable %v; want only east1", st.Writable("east1"), st.Writable("east2"))
	}
	if st, err = st.Apply(Change{Op: OpDrained}); err != nil {
		t.Fatal(err)
	}
	if st.Writable("east1") || st.Writable("east2") || st.Transition.String() != "switch east1 -> east2" {
		t.Errorf("drained: east1 writable %v, east2 writable %v, transition %s", st.Writable("east1"), st.Writable("east2"), st.Transition)
	}
	if st, err = st.Apply(Change{Op: OpPromote, Host: "east2"}); err != nil || !st.Writable("east2") || st.Writable("east1") {
		t.Errorf("promoted: %v, east2 writable %v", err, st.Writable("east2"))
	}
}

// A change that applies leaves the state it was applied to as it was.
func TestApplyCopies(t *testing.T) {
	tests := []Change{
		{Op: OpDatasource, Host: "east2", Value: Shunned, Reason: "operator"},
		{Op: OpRouter, Host: "*", Value: Offline},
		{Op: OpBegin, Transition: &Transition{Kind: Switch, From: "east1", To: "east3"}},
		{Op: OpPromote, Host: "east2"},
	}
	for _, c := range tests {
		st := switching(t)
		if c.Op == OpBegin {
			st = site(t)
		}
		before := st.Clone()
		if _, err := st.Apply(c); err != nil {
			t.Fatalf("Apply(%+v): %v", c, err)
		}
		if !reflect.DeepEqual(st, before) {
			t.Errorf("Apply(%+v) changed its receiver to %+v", c, st)
		}
	}
}

// Candidates that stored and applied as much are promoted in the ini's
// order (the precedence the status shows), not by name.
func TestCandidateTiesByPrecedence(t *testing.T) {
	st, err := State{}.Apply(Change{Op: OpInit, Host: "east1", Hosts: []string{"east1", "east3", "east2"}})
	if err != nil {
		t.Fatal(err)
	}
	facts := map[string]Facts{}
	for _, h := range []string{"east2", "east3"} {
		facts[h] = Facts{Host: h, Alive: true, DB: DBUp, ReplKind: replicatorpb.ReplicatorState_REPLICATOR_STATE_ONLINE, Applied: 7, MaxStored: 7}
	}
	if got, err := Candidate(st, facts, ""); err != nil || got != "east3" {
		t.Fatalf("Candidate = %q, %v; want east3 (before east2 in the ini)", got, err)
	}
	if got := st.Clone().Hosts(); !slices.Equal(got, []string{"east1", "east3", "east2"}) {
		t.Errorf("Hosts() = %v, want the ini's order", got)
	}
	old := st.Clone()
	old.Precedence = nil // a state of an earlier release
	if got := old.Hosts(); !slices.Equal(got, []string{"east1", "east2", "east3"}) {
		t.Errorf("Hosts() without precedence = %v, want by name", got)
	}
}
