package router

import (
	"sync"
	"time"
)

// hold is the operator's ONHOLD (POST /api/v2/connector/onhold): new
// connections wait, as while the site has no routable primary, until
// online releases them or connector-hold-timeout passes; open connections
// go on. It lives in this connector only; the managers' OFFLINE wins
// over it.
type hold struct {
	mu     sync.Mutex
	on     bool
	routed Table // the last table from the managers
	have   bool
	// confirmed is when a manager with a coordinator last sent routed;
	// expired is set once that is more than tableTTL ago (expire.go).
	confirmed time.Time
	expired   bool
}

// setTable installs t, the managers' table, with the operator's hold on top.
func (a *Agent) setTable(t Table) {
	a.hold.mu.Lock()
	defer a.hold.mu.Unlock()
	a.hold.routed, a.hold.have = t, true
	a.hold.confirmed, a.hold.expired = time.Now(), false
	a.proxy.SetTable(a.held(t))
}

// setHold turns the operator's hold on or off.
func (a *Agent) setHold(on bool) {
	a.hold.mu.Lock()
	defer a.hold.mu.Unlock()
	if a.hold.on == on {
		return
	}
	a.hold.on = on
	a.log.Info("operator hold", "on", on)
	if a.hold.have {
		a.proxy.SetTable(a.held(a.current()))
	}
}

func (a *Agent) onHold() bool {
	a.hold.mu.Lock()
	defer a.hold.mu.Unlock()
	return a.hold.on
}

// held is t under the hold (a.hold.mu held): ONHOLD with no target for
// new connections, the primary kept so that SetTable closes none of the
// open ones.
func (a *Agent) held(t Table) Table {
	if !a.hold.on || t.State == StateOffline {
		return t
	}
	t.State = StateOnHold
	t.Why = "connector " + a.bound.Host.Name + " is ONHOLD by the operator (POST /api/v2/connector/online releases it)"
	t.ReadOnly = Target{}
	return t
}
