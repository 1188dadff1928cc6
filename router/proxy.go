package router

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/carbidedb/carbide/router/datapath"
)

// ProxyConfig configures a Proxy.
type ProxyConfig struct {
	// HoldTimeout bounds how long a new connection waits for a routable
	// primary (connector-hold-timeout).
	HoldTimeout time.Duration
	// DisconnectTimeout is how long connections to a demoted primary may
	// finish after a switch (connector-disconnect-timeout); after a
	// failover they are closed at once.
	DisconnectTimeout time.Duration
	// DialTimeout bounds connecting to a database.
	DialTimeout time.Duration
	// Dial connects to a database; nil uses a net.Dialer.
	Dial   func(ctx context.Context, addr string) (net.Conn, error)
	Logger *slog.Logger
	// NoKernel keeps every bridge in the event loops (router/datapath).
	NoKernel bool
}

// Counters are a connector's connection counts.
type Counters struct {
	Created, Active int64
	// PerHost are the counts per datasource.
	PerHost map[string][2]int64
}

// Proxy accepts application connections and splices each to the target
// the current Table names.
type Proxy struct {
	cfg ProxyConfig

	path *datapath.Path

	mu      sync.Mutex
	table   Table
	changed chan struct{}
	conns   map[*bridge]struct{}
	perHost map[string]*[2]int64

	created, active atomic.Int64
	copied          [2]atomic.Uint64 // bytes the io.Copy fallback moved, by side read (counters.go)
	routeChanges    atomic.Uint64
}

// bridge is one application connection and its database connection.
type bridge struct {
	host     string
	readOnly bool
	closing  bool // scheduled to close (guarded by Proxy.mu)

	mu    sync.Mutex
	shut  bool             // close asked for
	pair  datapath.Conduit // in the data path
	conns []net.Conn       // or spliced by io.Copy when it cannot take them
}

// The sides of a bridge, as the io.Copy fallback counts its bytes.
const (
	clientSide = 0
	serverSide = 1
)

// close ends the connection, now or as soon as it is in the data path.
func (b *bridge) close() {
	b.mu.Lock()
	b.shut = true
	pr, conns := b.pair, b.conns
	b.mu.Unlock()
	if pr != nil {
		pr.Shutdown()
	}
	for _, c := range conns {
		c.Close()
	}
}

// finish ends the connection the way a switch's drain needs: the
// application's side now, the database's once the server closed the
// session (datapath.Conduit's Finish). Connections not in the data path
// close at once.
func (b *bridge) finish() {
	b.mu.Lock()
	pr := b.pair
	b.mu.Unlock()
	if pr == nil {
		b.close()
		return
	}
	pr.Finish()
}

// finishLimit bounds how long a drained connection waits for its server
// to end the session.
const finishLimit = 5 * time.Second

// NewProxy returns a proxy that holds every connection until SetTable.
func NewProxy(cfg ProxyConfig) *Proxy {
	if cfg.HoldTimeout <= 0 {
		cfg.HoldTimeout = 30 * time.Second
	}
	if cfg.DisconnectTimeout <= 0 {
		cfg.DisconnectTimeout = 5 * time.Second
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 5 * time.Second
	}
	if cfg.Dial == nil {
		d := &net.Dialer{Timeout: cfg.DialTimeout}
		cfg.Dial = func(ctx context.Context, addr string) (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) }
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	path := datapath.New(datapath.Config{NoKernel: cfg.NoKernel, GreetingTimeout: cfg.DialTimeout, Logger: cfg.Logger})
	return &Proxy{cfg: cfg, path: path, table: Table{State: StateOnHold, Why: "no routing table from a manager yet"},
		changed: make(chan struct{}), conns: map[*bridge]struct{}{}, perHost: map[string]*[2]int64{}}
}

// SetTable installs a new routing table. Connections to a datasource now
// FAILED close at once; read-write connections to a primary a switch
// drains, or that is no longer the primary, close after DisconnectTimeout.
func (p *Proxy) SetTable(t Table) {
	p.mu.Lock()
	old := p.table
	p.table = t
	if !sameRoute(old, t) {
		p.routeChanges.Add(1)
	}
	p.signal()
	var now, later []*bridge
	for b := range p.conns {
		switch {
		case t.Failed[b.host]:
			now = append(now, b)
		case b.readOnly || b.closing:
		case t.Drain == b.host,
			// A primary that is no longer the primary (whatever tables
			// came between, such as a hold during the switch).
			t.Primary.Host != "" && t.Primary.Host != b.host:
			b.closing = true
			later = append(later, b)
		}
	}
	p.mu.Unlock()
	if t.State != old.State || t.Primary != old.Primary || t.Drain != old.Drain {
		p.cfg.Logger.Info("routing", "state", t.State, "primary", t.Primary.Host, "read_only", t.ReadOnly.Host, "drain", t.Drain, "why", t.Why)
	}
	for _, b := range now {
		b.close()
	}
	if len(later) > 0 {
		time.AfterFunc(p.cfg.DisconnectTimeout, func() {
			for _, b := range later {
				b.finish()
			}
		})
		// A server busy with a long statement does not hold the
		// connection for ever.
		time.AfterFunc(p.cfg.DisconnectTimeout+finishLimit, func() {
			for _, b := range later {
				b.close()
			}
		})
	}
}

// signal wakes whoever waits on Changed (p.mu held).
func (p *Proxy) signal() {
	close(p.changed)
	p.changed = make(chan struct{})
}

// Draining is the host the table drains and how many read-write
// connections to it are still open.
func (p *Proxy) Draining() (string, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for b := range p.conns {
		if !b.readOnly && b.host == p.table.Drain {
			n++
		}
	}
	return p.table.Drain, n
}

// Close ends every connection and releases the proxy's data path.
func (p *Proxy) Close() {
	p.closeAll()
	p.path.Close()
}

func (p *Proxy) closeAll() {
	p.mu.Lock()
	all := slices.Collect(maps.Keys(p.conns))
	p.mu.Unlock()
	for _, b := range all {
		b.close()
	}
}

// Changed is closed at the next SetTable, and when a drained read-write
// connection ends.
func (p *Proxy) Changed() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.changed
}

// Table returns the routing table in use.
func (p *Proxy) Table() Table {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.table
}

// Counters returns the connection counts.
func (p *Proxy) Counters() Counters {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := Counters{Created: p.created.Load(), Active: p.active.Load(), PerHost: map[string][2]int64{}}
	for h, v := range p.perHost {
		c.PerHost[h] = *v
	}
	return c
}

// Serve accepts connections on l until ctx ends, then closes the
// connections it made; readOnly sends them to the table's read-only target.
func (p *Proxy) Serve(ctx context.Context, l net.Listener, readOnly bool) error {
	go func() {
		<-ctx.Done()
		l.Close()
	}()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer p.closeAll()
	for {
		c, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.handle(ctx, c, readOnly)
		}()
	}
}

// dial connects to target and reads the server's greeting: a database
// whose process was just killed may still complete TCP handshakes (its
// sockets close only when the process is reaped) but never greets.
func (p *Proxy) dial(ctx context.Context, target Target) (net.Conn, []byte, error) {
	dctx, cancel := context.WithTimeout(ctx, p.cfg.DialTimeout)
	defer cancel()
	c, err := p.cfg.Dial(dctx, target.Addr)
	if err != nil {
		return nil, nil, err
	}
	c.SetReadDeadline(time.Now().Add(p.cfg.DialTimeout))
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil {
		c.Close()
		return nil, nil, fmt.Errorf("no greeting from the server: %w", err)
	}
	c.SetReadDeadline(time.Time{})
	return c, buf[:n], nil
}

// routes reports whether a new connection of the kind may go to host
// under the table in use (p.mu held): read-write ones only to the
// routable primary, read-only ones to any datasource not FAILED (the
// least-lagged replica changes often, and SetTable closes no other).
func (p *Proxy) routes(readOnly bool, host string) bool {
	t := p.table
	switch {
	case t.State == StateOffline || t.Failed[host]:
		return false
	case readOnly:
		return true
	}
	return t.State == StateOnline && t.Primary.Host == host
}

// pick waits (up to the hold timeout) for a target, or says why none.
func (p *Proxy) pick(ctx context.Context, readOnly bool, until time.Time) (Target, uint16, string) {
	deadline := time.NewTimer(time.Until(until))
	defer deadline.Stop()
	for {
		p.mu.Lock()
		t, ch := p.table, p.changed
		p.mu.Unlock()
		if t.State == StateOffline {
			return Target{}, ErrConnectorOffline, t.Why
		}
		// Reads go on to a replica while the primary is held.
		if readOnly && t.ReadOnly.Addr != "" {
			return t.ReadOnly, 0, ""
		}
		if !readOnly && t.Primary.Addr != "" && t.State == StateOnline {
			return t.Primary, 0, ""
		}
		select {
		case <-ch:
		case <-deadline.C:
			return Target{}, ErrNoPrimary, "no datasource to route to after waiting " + p.cfg.HoldTimeout.String() + ": " + t.Why
		case <-ctx.Done():
			return Target{}, ErrNoPrimary, "the connector is stopping"
		}
	}
}

func (p *Proxy) handle(ctx context.Context, client net.Conn, readOnly bool) {
	refuse := func(code uint16, state, why string) {
		client.SetWriteDeadline(time.Now().Add(time.Second))
		client.Write(errorPacket(code, state, "Carbide connector: "+why))
		client.Close()
	}
	// The hold covers both waiting for a table and a target that does not
	// answer: a primary that just died is routed to until the managers
	// fail it over, so the connection waits for the next table.
	until := time.Now().Add(p.cfg.HoldTimeout)
	var target Target
	var server net.Conn
	var greeting []byte
	b := &bridge{readOnly: readOnly}
	var hc *[2]int64
	for {
		changed := p.Changed()
		t, code, why := p.pick(ctx, readOnly, until)
		if code != 0 {
			refuse(code, "08004", why)
			return
		}
		target = t
		c, g, err := p.dial(ctx, target)
		if err == nil {
			// Registered only if the table still routes there: a table
			// installed while this connection was being made (a switch's
			// drain) did not see it, and must not miss it.
			p.mu.Lock()
			if p.routes(readOnly, target.Host) {
				b.host = target.Host
				p.conns[b] = struct{}{}
				if hc = p.perHost[target.Host]; hc == nil {
					hc = &[2]int64{}
					p.perHost[target.Host] = hc
				}
				hc[0]++
				hc[1]++
				p.created.Add(1)
				p.active.Add(1)
				p.mu.Unlock()
				server, greeting = c, g
				break
			}
			p.mu.Unlock()
			c.Close()
			continue
		}
		select {
		case <-changed:
			// The table changed since the pick: try again (a pause so
			// that a table naming the same dead target does not spin).
			time.Sleep(20 * time.Millisecond)
		case <-time.After(time.Until(until)):
			refuse(ErrNoPrimary, "08S01", "cannot reach "+target.Host+": "+err.Error())
			return
		case <-ctx.Done():
			refuse(ErrNoPrimary, "08S01", "the connector is stopping")
			return
		}
	}
	release := func() {
		p.mu.Lock()
		delete(p.conns, b)
		hc[1]--
		p.active.Add(-1)
		if !b.readOnly && b.host == p.table.Drain {
			p.signal()
		}
		p.mu.Unlock()
	}
	if c, err := p.path.Add(client, server, greeting, release); err == nil {
		p.hand(b, c)
		return
	}
	// Not sockets the data path can take (or no epoll): the client has
	// the greeting, two copies do the rest.
	b.mu.Lock()
	b.conns = []net.Conn{client, server}
	shut := b.shut
	b.mu.Unlock()
	if shut {
		b.close()
	}
	defer release()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn, side int) {
		n, _ := io.Copy(dst, src)
		p.copied[side].Add(uint64(n))
		b.close()
		done <- struct{}{}
	}
	go pipe(server, client, clientSide)
	go pipe(client, server, serverSide)
	<-done
	<-done
}

// hand records the bridge's conduit and closes it if that was asked for
// meanwhile.
func (p *Proxy) hand(b *bridge, c datapath.Conduit) {
	b.mu.Lock()
	b.pair = c
	shut := b.shut
	b.mu.Unlock()
	if shut {
		c.Shutdown()
	}
}
