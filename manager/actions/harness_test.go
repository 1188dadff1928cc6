package actions

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/carbidedb/carbide/manager/internal/fakesite"
	"github.com/carbidedb/carbide/manager/policy"
	"github.com/carbidedb/carbide/rpc/replstate"
)

var east = []string{"east1", "east2", "east3"}

// joined is an operation's reply as one string, for matching.
func joined(lines []string) string { return strings.Join(lines, " | ") }

// harness is a site of fakes (manager/internal/fakesite) with the
// manager's side of the seams: the leases it granted, the alerts it
// raised, the connectors it waited for.
type harness struct {
	*fakesite.Site
	mu       sync.Mutex
	granted  map[string]time.Time
	leaseEnd map[string]time.Time
	active   map[string]string // raised alerts, by key
	history  []string          // added, raised and cleared alerts
	drained  []string          // the transitions AwaitDrained was asked for
	facts    map[string]policy.Facts
}

func newHarness(t *testing.T, primary string, hosts ...string) *harness {
	return &harness{Site: fakesite.New(t, primary, hosts...), granted: map[string]time.Time{}, leaseEnd: map[string]time.Time{},
		active: map[string]string{}}
}

// actions are the coordinator's actions over the fakes, the facts what
// each replicator and database says now (later changes make them stale,
// as gossip's are).
func (h *harness) actions(catchUp time.Duration) *Actions {
	h.Mu.Lock()
	h.facts = map[string]policy.Facts{}
	for _, host := range h.St.Hosts() {
		r, db := h.Repls[host], h.DBs[host]
		f := policy.Facts{Host: host, Alive: true, DB: policy.DBUp, ReadOnly: db.ReadOnly, ReplRole: r.Role, ReplState: r.State, ReplKind: replstate.Of(r.State),
			Applied: r.Applied, MaxStored: r.Stored, MasterURI: r.URI}
		if db.Down {
			f.DB = policy.DBDown
		}
		h.facts[host] = f
	}
	h.Mu.Unlock()
	return New(Config{Site: "east", Hosts: h.St.Hosts(), THLPort: 2112, CatchUp: catchUp, DisconnectTimeout: time.Second, SwitchCatchUp: catchUp},
		Seams{Ledger: h.Ledger(), Databases: h.Databases(), Replicators: h.Replicators(), Connectors: h, Leases: h, Alerts: h,
			Facts: h.currentFacts})
}

func (h *harness) currentFacts() map[string]policy.Facts {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := map[string]policy.Facts{}
	for k, v := range h.facts {
		out[k] = v
	}
	return out
}

func (h *harness) setFacts(host string, f func(*policy.Facts)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	v := h.facts[host]
	f(&v)
	h.facts[host] = v
}

func (h *harness) AwaitDrained(_ context.Context, from, transition string, _ time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.drained = append(h.drained, transition)
}

func (h *harness) Granted(host string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.granted[host] = time.Now()
}

func (h *harness) End(host string) time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.leaseEnd[host]
}

func (h *harness) AwaitEnd(ctx context.Context, host string) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(time.Until(h.End(host))):
		return nil
	}
}

func (h *harness) Add(text string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.history = append(h.history, text)
}

func (h *harness) Raise(key, text string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.active[key] == text {
		return
	}
	h.active[key] = text
	h.history = append(h.history, text)
}

func (h *harness) Clear(key string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if t, ok := h.active[key]; ok {
		delete(h.active, key)
		h.history = append(h.history, "cleared: "+t)
	}
}

func (h *harness) alert(key string) (string, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	t, ok := h.active[key]
	return t, ok
}

func (h *harness) state() policy.State { return h.Ledger().State() }
