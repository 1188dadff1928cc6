package router

// Byte counting: the greeting the proxy passes on itself is counted when
// sent; then each event loop adds what it reads from either side of a
// pair to its own counters (one atomic add per read, on a counter no other
// loop writes), and the io.Copy fallback adds what each copy moved when it
// ends. Bytes a draining pair drops are not counted.

// Bytes are the bytes a connector moved since it started.
type Bytes struct {
	// FromClients went from applications to databases, FromServers back.
	FromClients, FromServers uint64
}

// bytes sums the loops' counters, stopped loops included.
func (p *pump) bytes() Bytes {
	p.mu.Lock()
	defer p.mu.Unlock()
	b := Bytes{FromClients: p.gone[clientSide], FromServers: p.gone[serverSide]}
	for _, l := range p.loops {
		b.FromClients += l.moved[clientSide].Load()
		b.FromServers += l.moved[serverSide].Load()
	}
	return b
}

// retire keeps the counts of loops being stopped.
func (p *pump) retire(loops []*loop) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range loops {
		p.gone[clientSide] += l.moved[clientSide].Load()
		p.gone[serverSide] += l.moved[serverSide].Load()
	}
}

// Bytes returns the bytes moved through the proxy since it started.
func (p *Proxy) Bytes() Bytes {
	b := p.pump.bytes()
	if p.kernel != nil {
		c, s := p.kernel.bytes()
		b.FromClients += c
		b.FromServers += s
	}
	b.FromClients += p.copied[clientSide].Load()
	b.FromServers += p.copied[serverSide].Load()
	return b
}

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
