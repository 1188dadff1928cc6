package router

import (
	"context"
	"fmt"
	"time"
)

const (
	// tableTTL is how long a connector routes new read-write connections
	// by a table that no manager with a coordinator has confirmed since.
	// It stays below the coordinator's fencing grace (5 s): a connector
	// cut off from its site, or watching a hung manager, sends no new
	// writes to the primary by the time the site can promote another.
	tableTTL = 3 * time.Second
	// watchStall gives up a watch that sent nothing for this long
	// (managers send their status at least every second).
	watchStall = 2 * time.Second
)

// Expired is t once no manager has confirmed it for ttl: new read-write
// connections wait (ONHOLD) until a manager confirms a table again; reads
// go on to a replica. Open connections stay: if the site did demote the
// primary, its database is fenced (its manager's or its replicator's
// lease, docs/manager.md) and kills them; if this was only a slow
// coordinator election, nothing is lost.
func Expired(t Table, ttl time.Duration) Table {
	if t.State != StateOnline {
		return t // OFFLINE or ONHOLD: no writes routed already
	}
	out := t
	out.State = StateOnHold
	out.Why = fmt.Sprintf("no manager of the site has confirmed the routing for %v (the managers are out of reach)", ttl)
	if t.ReadOnly.Host == t.Primary.Host {
		out.ReadOnly = Target{}
	}
	out.Primary = Target{}
	return out
}

// current is the managers' table as this connector may use it now
// (a.hold.mu held).
func (a *Agent) current() Table {
	if a.hold.expired {
		return Expired(a.hold.routed, tableTTL)
	}
	return a.hold.routed
}

// expireLoop takes the routing table out of use once no manager has
// confirmed it for tableTTL; the next confirmed table puts routing back.
func (a *Agent) expireLoop(ctx context.Context) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		a.hold.mu.Lock()
		if a.hold.have && !a.hold.expired && time.Since(a.hold.confirmed) >= tableTTL {
			a.hold.expired = true
			a.log.Warn("routing table expired: no manager with a coordinator confirmed it", "for", tableTTL, "primary", a.hold.routed.Primary.Host)
			a.proxy.SetTable(a.held(a.current()))
		}
		a.hold.mu.Unlock()
	}
}
