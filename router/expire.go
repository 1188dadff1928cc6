package router

import (
	"context"
	"fmt"
	"maps"
	"time"
)

const (
	// tableTTL is how long a connector routes by a table that no manager
	// with a coordinator has confirmed since. It stays below the
	// coordinator's fencing grace (4 s): a connector cut off from its
	// site, or watching a hung manager, stops sending writes to the
	// primary before the site can promote another.
	tableTTL = 3 * time.Second
	// watchStall gives up a watch that sent nothing for this long
	// (managers send their status at least every second).
	watchStall = 2 * time.Second
)

// Expired is t once no manager has confirmed it for ttl: new read-write
// connections wait (ONHOLD) and every connection to the primary closes,
// since another host may be the primary by now; reads go on to a replica.
func Expired(t Table, ttl time.Duration) Table {
	if t.State != StateOnline {
		return t // OFFLINE or ONHOLD: no writes routed already
	}
	out := t
	out.State = StateOnHold
	out.Why = fmt.Sprintf("no manager of the site has confirmed the routing for %v (the managers are out of reach)", ttl)
	out.Failed = maps.Clone(t.Failed)
	if out.Failed == nil {
		out.Failed = map[string]bool{}
	}
	if t.Primary.Host != "" {
		out.Failed[t.Primary.Host] = true
		if t.ReadOnly.Host == t.Primary.Host {
			out.ReadOnly = Target{}
		}
	}
	out.Primary, out.Drain = Target{}, ""
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
