package policy

import (
	"testing"
	"time"

	"github.com/carbidedb/carbide/rpc/gen/replicatorpb"
)

// A monitor alert's condition is reported on every step it holds, even
// when the alert itself is not repeated, and is gone from the first step
// it no longer holds: the coordinator clears the alert then.
func TestConditions(t *testing.T) {
	m := NewMonitor(DefaultConfig())
	st, err := State{}.Apply(Change{Op: OpInit, Host: "east1", Hosts: []string{"east1", "east2"}})
	if err != nil {
		t.Fatal(err)
	}
	facts := map[string]Facts{
		"east1": {Host: "east1", Alive: true, DB: DBUp, ReplRole: RoleMaster, ReplState: ReplOnline, ReplKind: replicatorpb.ReplicatorState_REPLICATOR_STATE_ONLINE},
		"east2": {Host: "east2", Alive: true, DB: DBUp, ReplRole: RoleSlave, ReplState: "OFFLINE:ERROR", ReplKind: replicatorpb.ReplicatorState_REPLICATOR_STATE_OFFLINE_ERROR},
	}
	now := time.Now()
	key := MonitorAlerts + "replicator-error/east2"
	for i := range 3 {
		d := m.Step(Input{Now: now.Add(time.Duration(i) * time.Second), State: st, Facts: facts})
		cur, ok := m.Conditions()
		if !ok || cur[key] == "" {
			t.Fatalf("step %d: conditions %v (%t), want %s", i, cur, ok, key)
		}
		if (i == 0) != (len(d) == 1 && d[0].Key == key) {
			t.Fatalf("step %d: decisions %v: want the alert raised once", i, d)
		}
	}
	f := facts["east2"]
	f.ReplState, f.ReplKind = ReplOnline, replicatorpb.ReplicatorState_REPLICATOR_STATE_ONLINE
	facts["east2"] = f
	m.Step(Input{Now: now.Add(5 * time.Second), State: st, Facts: facts})
	if cur, ok := m.Conditions(); !ok || len(cur) != 0 {
		t.Fatalf("conditions %v (%t) once the replicator is back", cur, ok)
	}
	// During a transition nothing is assessed: nothing may clear.
	st.Transition = &Transition{Kind: Switch, From: "east1", To: "east2"}
	m.Step(Input{Now: now.Add(6 * time.Second), State: st, Facts: facts})
	if _, ok := m.Conditions(); ok {
		t.Fatal("a step during a transition claims to have assessed the site")
	}
}

func TestRaiseAndClear(t *testing.T) {
	st, _ := State{}.Apply(Change{Op: OpInit, Host: "east1", Hosts: []string{"east1"}})
	at := time.Date(2026, 12, 6, 4, 0, 0, 0, time.UTC)
	st, _ = st.Apply(Change{Op: OpRaise, Key: "k", Value: "one", At: at})
	st, _ = st.Apply(Change{Op: OpRaise, Key: "k", Value: "two", At: at.Add(time.Minute)})
	if al, ok := st.ActiveAlert("k"); !ok || al.Text != "two" || !al.Since.Equal(at) || len(st.Active) != 1 {
		t.Fatalf("active %+v", st.Active)
	}
	st, _ = st.Apply(Change{Op: OpClear, Key: "k"})
	if len(st.Active) != 0 {
		t.Fatalf("active %+v after clear", st.Active)
	}
	if _, err := st.Apply(Change{Op: OpRaise, Value: "no key"}); err == nil {
		t.Fatal("an alert without a key was raised")
	}
}
