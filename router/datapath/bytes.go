package datapath

// Byte counting: the greeting Add passes on itself is counted when it is
// handed over; then each event loop adds what it reads from either side
// of a pair to its own counters (one atomic add per read, on a counter no
// other loop writes), and the kernel path counts what its program passed
// on. Bytes a draining pair drops are not counted.

// Bytes are the bytes a Path moved since New.
type Bytes struct {
	// FromClients went from clients to servers, FromServers back.
	FromClients, FromServers uint64
}

// Bytes returns the bytes moved since New, greetings included.
func (p *Path) Bytes() Bytes {
	b := p.pump.bytes()
	if p.kernel != nil {
		c, s := p.kernel.bytes()
		b.FromClients += c
		b.FromServers += s
	}
	b.FromServers += p.greeted.Load()
	return b
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
