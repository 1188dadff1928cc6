package router

import (
	"testing"
	"time"
)

func TestExpired(t *testing.T) {
	online := Table{State: StateOnline, Primary: Target{Host: "east1", Addr: "a:1"}, ReadOnly: Target{Host: "east2", Addr: "b:1"},
		Failed: map[string]bool{"east3": true}, Term: 4}
	got := Expired(online, 3*time.Second)
	if got.State != StateOnHold || got.Primary.Addr != "" || got.Why == "" {
		t.Fatalf("expired table %+v: want ONHOLD with no primary and a reason", got)
	}
	if got.Failed["east1"] || !got.Failed["east3"] {
		t.Errorf("expired table fails %v: open connections to the primary stay (its database is fenced if it was demoted)", got.Failed)
	}
	if got.ReadOnly.Host != "east2" {
		t.Errorf("reads go to %q, want east2 (a replica keeps serving reads)", got.ReadOnly.Host)
	}
	alone := Table{State: StateOnline, Primary: Target{Host: "east1", Addr: "a:1"}, ReadOnly: Target{Host: "east1", Addr: "a:1"}}
	if got := Expired(alone, time.Second); got.ReadOnly.Addr != "" {
		t.Errorf("reads still go to the expired primary: %+v", got.ReadOnly)
	}
	for _, st := range []string{StateOffline, StateOnHold} {
		in := Table{State: st, Why: "why"}
		if got := Expired(in, time.Second); got.State != st || got.Why != "why" {
			t.Errorf("Expired(%s) = %+v, want it unchanged", st, got)
		}
	}
}
