package manager

import (
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/carbidedb/carbide/internal/config"
	"github.com/carbidedb/carbide/manager/internal/fakesite"
	"github.com/carbidedb/carbide/manager/membership"
	"github.com/carbidedb/carbide/manager/policy"
	"github.com/carbidedb/carbide/rpc/replstate"
)

// fakeSite is a site of fakes behind the manager's seams (seams.go,
// manager/internal/fakesite), with the other managers' views.
type fakeSite struct {
	*fakesite.Site
	// mgrs are the other managers' views (confirm_test.go); a host
	// without one answers with the site's state as it is.
	mgrs map[string]*fakeView
}

func newFakeSite(t *testing.T, primary string, hosts ...string) *fakeSite {
	return &fakeSite{Site: fakesite.New(t, primary, hosts...)}
}

// agent is a coordinator (east2 when it exists) over the fakes, its
// facts what each replicator and database says now.
func (f *fakeSite) agent(t *testing.T, catchUp time.Duration) *Agent {
	t.Helper()
	hosts := f.St.Hosts()
	self := hosts[0]
	if slices.Contains(hosts, "east2") {
		self = "east2"
	}
	st := config.Settings{THLPort: 2112, FailoverCatchUp: catchUp, DisconnectTimeout: time.Second}
	a := &Agent{cfg: Config{FenceAfter: 3 * time.Second, Policy: policy.DefaultConfig()}, log: slog.New(slog.DiscardHandler),
		self: self, hosts: hosts, st: st, site: &config.Service{Name: "east", Members: hosts},
		dbs: f.Databases(), repls: f.Replicators(), views: fakeViews{f}, ledger: f.Ledger(),
		alerted: map[string]time.Time{}, grants: map[string]time.Time{}, reports: map[string]connectorReport{},
		leaderSince: time.Now().Add(-time.Hour)}
	a.pool = membership.NewStatic(self, time.Hour)
	f.Mu.Lock()
	for _, h := range hosts {
		r, db := f.Repls[h], f.DBs[h]
		facts := policy.Facts{Host: h, DB: policy.DBUp, ReadOnly: db.ReadOnly, ReplRole: r.Role, ReplState: r.State, ReplKind: replstate.Of(r.State),
			Applied: r.Applied, MaxStored: r.Stored, MasterURI: r.URI}
		if db.Down {
			facts.DB = policy.DBDown
		}
		if h == self {
			a.facts = facts
			continue
		}
		a.pool.Heard(h, facts, time.Now())
	}
	f.Mu.Unlock()
	a.wireActions()
	return a
}
