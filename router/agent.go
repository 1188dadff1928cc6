package router

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"google.golang.org/grpc"

	"github.com/carbidedb/carbide/internal/config"
	"github.com/carbidedb/carbide/internal/daemon"
	"github.com/carbidedb/carbide/internal/install"
	"github.com/carbidedb/carbide/internal/security"
	"github.com/carbidedb/carbide/router/datapath"
	"github.com/carbidedb/carbide/rpc/gen/managerpb"
)

// Config configures the connector process.
type Config struct {
	// Home is the cluster install directory (CARBIDE_HOME).
	Home   string
	Logger *slog.Logger
}

// Agent is a running connector.
type Agent struct {
	cfg   Config
	log   *slog.Logger
	bound *install.Bound
	site  *config.Service
	st    config.Settings
	proxy *Proxy
	dial  *net.Dialer // from this host's address
	sec   *security.Cluster

	mu      sync.Mutex
	coord   string                      // the site's coordinator, from the watch
	clients map[string]*grpc.ClientConn // to managers, by address

	hold hold // the operator's ONHOLD (hold.go)
}

// New opens the install.
func New(cfg Config) (*Agent, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if err := datapath.CheckEnv(); err != nil {
		return nil, err
	}
	b, err := install.Open(cfg.Home)
	if err != nil {
		return nil, err
	}
	if !b.Install.Connector {
		return nil, fmt.Errorf("the %s install of %s runs no connector (connectors= of [%s])", b.Install.Kind, b.Host.Name, b.Host.Site)
	}
	sec, err := security.ForInstall(b)
	if err != nil {
		return nil, err
	}
	st := b.Install.Settings
	a := &Agent{cfg: cfg, sec: sec, log: cfg.Logger, bound: b, site: b.Config.Service(b.Host.Site), st: st, clients: map[string]*grpc.ClientConn{}}
	local := net.ParseIP(b.Host.Address)
	d := &net.Dialer{Timeout: 5 * time.Second}
	if local != nil {
		d.LocalAddr = &net.TCPAddr{IP: local}
	}
	a.dial = d
	a.proxy = NewProxy(ProxyConfig{HoldTimeout: st.HoldTimeout, DisconnectTimeout: st.DisconnectTimeout, Logger: cfg.Logger,
		Dial: func(ctx context.Context, addr string) (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) }})
	return a, nil
}

// Addrs are the read-write and read-only listen addresses ("" none).
func (a *Agent) Addrs() (rw, ro string) {
	host := a.bound.Host.Bind("")
	rw = net.JoinHostPort(host, strconv.Itoa(a.st.ApplicationPort))
	if a.st.ReadOnlyPort > 0 {
		ro = net.JoinHostPort(host, strconv.Itoa(a.st.ReadOnlyPort))
	}
	return rw, ro
}

// Run serves until ctx ends: the listeners, the manager watch, the
// reports to the managers.
func (a *Agent) Run(ctx context.Context) error {
	rwAddr, roAddr := a.Addrs()
	rw, err := daemon.Listen(ctx, rwAddr)
	if err != nil {
		return fmt.Errorf("listen for applications on %s (application-port): %w", rwAddr, err)
	}
	var ro net.Listener
	if roAddr != "" {
		if ro, err = daemon.Listen(ctx, roAddr); err != nil {
			rw.Close()
			return fmt.Errorf("listen for read-only applications on %s (connector-readonly-listen-port): %w", roAddr, err)
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer a.proxy.Close()
	defer a.closeClients()
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	serve := func(l net.Listener, readOnly bool) {
		defer wg.Done()
		if err := a.proxy.Serve(ctx, l, readOnly); err != nil {
			errs <- err
		}
	}
	wg.Add(1)
	go serve(rw, false)
	if ro != nil {
		wg.Add(1)
		go serve(ro, true)
	}
	a.startMetrics(ctx, &wg)
	wg.Add(3)
	go func() { defer wg.Done(); a.watch(ctx) }()
	go func() { defer wg.Done(); a.expireLoop(ctx) }()
	go func() { defer wg.Done(); a.report(ctx) }()
	a.startREST(ctx, &wg)
	if err := install.WriteConnectorReady(a.cfg.Home, os.Getpid()); err != nil {
		a.log.Warn("connector ready file", "error", err)
	}
	a.log.Info("connector running", "host", a.bound.Host.Name, "read_write", rwAddr, "read_only", roAddr)
	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errs:
	}
	cancel()
	wg.Wait()
	os.Remove(install.ConnectorReadyFile(a.cfg.Home))
	return runErr
}

// managers lists the site's managers, this host's first.
func (a *Agent) managers() []string {
	out := []string{a.bound.Host.Name}
	for _, h := range append(append([]string(nil), a.site.Members...), a.site.Witnesses...) {
		if h != a.bound.Host.Name {
			out = append(out, h)
		}
	}
	return out
}

// watch follows a manager's status stream, moving to the next manager
// when one fails; the routing table follows every update.
func (a *Agent) watch(ctx context.Context) {
	for i := 0; ctx.Err() == nil; i++ {
		h := a.managers()[i%len(a.managers())]
		err := a.follow(ctx, a.managerAddr(h))
		if ctx.Err() != nil {
			return
		}
		a.log.Warn("manager watch ended; trying the next manager", "manager", h, "error", err)
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// client returns a connection to the manager at addr, made once.
func (a *Agent) client(addr string) (*grpc.ClientConn, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if c := a.clients[addr]; c != nil {
		return c, nil
	}
	c, err := grpc.NewClient(addr, a.sec.ControlDialOptions(func(ctx context.Context, addr string) (net.Conn, error) { return a.dial.DialContext(ctx, "tcp", addr) })...)
	if err != nil {
		return nil, err
	}
	a.clients[addr] = c
	return c, nil
}

func (a *Agent) closeClients() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for addr, c := range a.clients {
		c.Close()
		delete(a.clients, addr)
	}
}

func (a *Agent) managerAddr(host string) string {
	return net.JoinHostPort(a.bound.Config.Address(host), strconv.Itoa(a.bound.Config.ClusterSettings(a.site.Name).ManagerRPCPort))
}

func (a *Agent) follow(ctx context.Context, addr string) error {
	conn, err := a.client(addr)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := managerpb.NewManagerClient(conn).Watch(ctx, &managerpb.WatchRequest{})
	if err != nil {
		return err
	}
	// A hung manager's stream stays open and silent: give it up.
	stalled := time.AfterFunc(watchStall, cancel)
	defer stalled.Stop()
	for {
		r, err := stream.Recv()
		if err != nil {
			if !stalled.Stop() {
				return fmt.Errorf("the manager sent nothing for %v", watchStall)
			}
			return err
		}
		stalled.Reset(watchStall)
		if r.GetCoordinator() == "" {
			// A manager without a coordinator may be the cut-off one: its
			// word confirms nothing (the table expires unless another
			// manager confirms it); look for one that has a coordinator.
			return errors.New("this manager has no coordinator")
		}
		a.mu.Lock()
		a.coord = r.GetCoordinator()
		a.mu.Unlock()
		a.setTable(Route(r, a.bound.Host.Name, a.bound.Config.ClusterSettings(a.site.Name).ReplicationPort, a.bound.Config.Address))
	}
}

// tell sends this connector's state and counters to the coordinator (a
// switch waits for it, and so does every command that changes the
// routing: the index says which of the managers' decisions the routing in
// use follows) and to this host's manager (which gossips the counters).
func (a *Agent) tell(ctx context.Context) {
	a.mu.Lock()
	coord := a.coord
	a.mu.Unlock()
	t := a.proxy.Table()
	drain, n := a.proxy.Draining()
	c := a.proxy.Counters()
	r := &managerpb.ConnectorReport{Host: a.bound.Host.Name, Pid: int64(os.Getpid()),
		State: t.State, StateKind: stateKinds[t.State], Transition: t.Transition, Draining: drain, DrainingActive: int64(n),
		Index: t.Index, Primary: t.Primary.Host, ReadOnly: t.ReadOnly.Host, Created: c.Created, Active: c.Active}
	if len(c.PerHost) > 0 {
		r.PerHost = make(map[string]*managerpb.Connections, len(c.PerHost))
		for h, v := range c.PerHost {
			r.PerHost[h] = &managerpb.Connections{Created: v[0], Active: v[1]}
		}
	}
	to := []string{a.bound.Host.Name}
	if coord != "" && coord != a.bound.Host.Name {
		to = append(to, coord)
	}
	ctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	for _, h := range to {
		conn, err := a.client(a.managerAddr(h))
		if err != nil {
			continue
		}
		if _, err := managerpb.NewManagerClient(conn).Report(ctx, r); err != nil && ctx.Err() == nil {
			a.log.Debug("report to a manager", "manager", h, "error", err)
		}
	}
}

func (a *Agent) report(ctx context.Context) {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		changed := a.proxy.Changed()
		a.tell(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-changed: // a new state (ONHOLD during a switch) goes out at once
		}
	}
}
