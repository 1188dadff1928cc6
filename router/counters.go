package router

// Bytes are the bytes a connector moved since it started.
type Bytes struct {
	// FromClients went from applications to databases, FromServers back.
	FromClients, FromServers uint64
}

// Bytes returns the bytes moved through the proxy since it started: what
// its data path moved (router/datapath) and what the io.Copy fallback
// did.
func (p *Proxy) Bytes() Bytes {
	b := p.path.Bytes()
	return Bytes{
		FromClients: b.FromClients + p.copied[clientSide].Load(),
		FromServers: b.FromServers + p.copied[serverSide].Load(),
	}
}

// Stalls counts the connections the kernel path's watcher moved to the
// event loops because their bytes stopped moving in the kernel.
func (p *Proxy) Stalls() uint64 { return p.path.Stalls() }

// RoutingChanges counts the routing tables that changed where new
// connections go or which close (sameRoute).
func (p *Proxy) RoutingChanges() uint64 { return p.routeChanges.Load() }

// sameRoute tells whether two tables route alike: same state, targets,
// term, drain and failed datasources.
func sameRoute(a, b Table) bool {
	if a.State != b.State || a.Primary != b.Primary || a.ReadOnly != b.ReadOnly || a.Term != b.Term || a.Drain != b.Drain || len(a.Failed) != len(b.Failed) {
		return false
	}
	for h := range a.Failed {
		if !b.Failed[h] {
			return false
		}
	}
	return true
}
