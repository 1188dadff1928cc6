package manager

import (
	"log/slog"
	"testing"
	"time"

	"github.com/carbidedb/carbide/manager/policy"
)

// A manager that starts while its host is the primary holds no lease
// until the coordinator grants one (or the lease file carries one over);
// a host it sees promoted holds one from that moment.
func TestLeaseFromPromotionOnly(t *testing.T) {
	a := &Agent{self: "east2", cfg: Config{FenceAfter: 3 * time.Second, Home: t.TempDir()}, grants: map[string]time.Time{}, log: slog.New(slog.DiscardHandler)}
	now := time.Now()
	st := policy.State{Initialized: true, Primary: "east2"}
	a.sawPrimary(now, st)
	if a.leaseHeld(now) {
		t.Fatal("a manager that starts on the primary holds a lease before any grant")
	}
	a.renewLease(now)
	if !a.leaseHeld(now.Add(2*time.Second)) || a.leaseHeld(now.Add(3*time.Second)) {
		t.Fatal("a granted lease must run FenceAfter from when it was asked")
	}

	b := &Agent{self: "east2", cfg: Config{FenceAfter: 3 * time.Second, Home: t.TempDir()}, grants: map[string]time.Time{}, log: slog.New(slog.DiscardHandler)}
	b.sawPrimary(now, policy.State{Initialized: true, Primary: "east1"})
	b.sawPrimary(now.Add(time.Second), st)
	if !b.leaseHeld(now.Add(3*time.Second)) || b.leaseHeld(now.Add(4*time.Second)) {
		t.Fatal("a promotion seen live must give a lease of FenceAfter from then")
	}
}

// The coordinator promotes only once any lease the old primary may hold
// has run out: its own last grant, or (new in office) one its predecessor
// may have given.
func TestLeaseEnd(t *testing.T) {
	now := time.Now()
	a := &Agent{cfg: Config{FenceAfter: 3 * time.Second}, grants: map[string]time.Time{}, leaderSince: now}
	if got, want := a.leaseEnd("east1"), now.Add(leaderLease+3*time.Second+leaseMargin); !got.Equal(want) {
		t.Errorf("new coordinator: lease end %v, want %v", got.Sub(now), want.Sub(now))
	}
	a.grants["east1"] = now.Add(10 * time.Second)
	if got, want := a.leaseEnd("east1"), now.Add(13*time.Second+leaseMargin); !got.Equal(want) {
		t.Errorf("after a grant: lease end %v, want %v", got.Sub(now), want.Sub(now))
	}
}
