package manager

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"google.golang.org/grpc"

	"github.com/carbidedb/carbide/internal/daemon"
	"github.com/carbidedb/carbide/manager/fencing"
	"github.com/carbidedb/carbide/manager/health"
	"github.com/carbidedb/carbide/manager/membership"
	"github.com/carbidedb/carbide/manager/policy"
	"github.com/carbidedb/carbide/rpc/gen/managerpb"
	"github.com/carbidedb/carbide/rpc/gen/replicatorpb"
	"github.com/carbidedb/carbide/rpc/replstate"
)

// Run serves until ctx ends or Shutdown is called. Shutdown order: leave
// gossip, stop raft, stop the API, close the store.
func (a *Agent) Run(ctx context.Context) error {
	a.started = time.Now()
	if err := a.openConsensus(); err != nil {
		return err
	}
	var peers []string
	for _, h := range a.voters {
		if h != a.self {
			peers = append(peers, net.JoinHostPort(a.bound.Config.Address(h), strconv.Itoa(a.st.GossipPort)))
		}
	}
	p, err := membership.New(membership.Config{Name: a.self, Addr: a.bound.Host.Address, Port: a.st.GossipPort,
		Key: a.sec.GossipKey(a.site.Name), Peers: peers, Stale: 2500 * time.Millisecond,
		Logger: a.log.With("lib", "memberlist"), OnChange: a.notify})
	if err != nil {
		a.node.Close(a.log)
		return err
	}
	a.pool = p
	l, err := daemon.Listen(ctx, a.ControlAddr())
	if err != nil {
		a.pool.Leave()
		a.node.Close(a.log)
		return fmt.Errorf("listen for control on %s (manager-rpc-port): %w", a.ControlAddr(), err)
	}
	srv := grpc.NewServer(a.sec.ControlServerOptions()...)
	managerpb.RegisterManagerServer(srv, &server{a: a})
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	errs := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := srv.Serve(l); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			errs <- err
		}
	}()
	a.loadLease()
	a.startMetrics(ctx, &wg)
	for _, loop := range []func(context.Context){a.joinLoop, a.probeLoop, a.enforceLoop, a.leaseLoop, a.strayLoop, a.readersLoop, a.coordinateLoop, a.offsetLoop} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			loop(ctx)
		}()
	}
	a.startREST(ctx, &wg)
	a.log.Info("manager running", "host", a.self, "site", a.site.Name, "control", a.ControlAddr(),
		"gossip", a.st.GossipPort, "raft", a.st.RaftPort, "voters", a.voters)
	var runErr error
	select {
	case <-ctx.Done():
	case <-a.shutdown:
	case runErr = <-errs:
	}
	a.log.Info("manager stopping")
	cancel()
	a.pool.Leave()
	a.node.Close(a.log)
	stopped := make(chan struct{})
	go func() { srv.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(3 * time.Second):
		srv.Stop()
	}
	wg.Wait()
	a.remote.close()
	a.fences.Close()
	return runErr
}

// Shutdown asks Run to stop.
func (a *Agent) Shutdown() { a.once.Do(func() { close(a.shutdown) }) }

func every(ctx context.Context, d time.Duration, f func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		f()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// joinLoop keeps contacting the site's other managers that are not in
// the pool.
func (a *Agent) joinLoop(ctx context.Context) {
	every(ctx, time.Second, func() { a.pool.Join() })
}

// probeLoop probes this host's database and replicator and publishes the
// facts: at once when they change, else every 500 ms.
func (a *Agent) probeLoop(ctx context.Context) {
	var last time.Time
	every(ctx, a.cfg.ProbeEvery, func() {
		f := a.prober.Probe(ctx)
		a.mu.Lock()
		prev := a.facts
		f.Fenced = prev.Fenced
		same := health.Same(prev, f)
		if !same || time.Since(last) >= 500*time.Millisecond {
			a.seq++
			f.Seq = a.seq
			a.facts = f
			a.mu.Unlock()
			a.pool.Publish(f)
			last = time.Now()
			if !same {
				a.notify()
			}
			return
		}
		a.mu.Unlock()
	})
}

// localFacts returns this host's last facts.
func (a *Agent) localFacts() policy.Facts {
	a.mu.Lock()
	defer a.mu.Unlock()
	f := a.facts
	f.Alive = true
	return f
}

// allFacts returns every host's facts, this one's included.
func (a *Agent) allFacts() map[string]policy.Facts {
	facts, _ := a.pool.View(time.Now())
	facts[a.self] = a.localFacts()
	return facts
}

// enforceLoop keeps this host's database read-only unless the agreed
// state makes it the writable primary and this manager holds the primary's
// lease (lease.go); a primary whose lease runs out fences itself.
func (a *Agent) enforceLoop(ctx context.Context) {
	every(ctx, 100*time.Millisecond, func() {
		now := time.Now()
		st := a.ledger.State()
		// In touch with the coordinator through raft; the primary needs
		// more: a lease, which only a round trip to the coordinator renews
		// (raft and gossip both still arrive at a host whose outbound
		// traffic is cut).
		a.sawPrimary(now, st)
		raftOK := a.node.InTouch()
		quorum := raftOK
		if st.Initialized && st.Primary == a.self {
			quorum = a.leaseHeld(now)
		}
		a.mu.Lock()
		if quorum != a.hadQuorum {
			a.log.Info("quorum view", append([]any{"quorum", quorum, "raft", raftOK, "lease_at", a.leaseAt.Format(time.RFC3339Nano)}, a.node.Describe()...)...)
			a.hadQuorum = quorum
		}
		if quorum {
			a.lastQuorum = now
		}
		lastQuorum := a.lastQuorum
		fenced := a.facts.Fenced
		a.mu.Unlock()
		if a.witness {
			return
		}
		if !st.Initialized {
			// No state yet (a fresh site, or a restarted manager whose raft
			// has not heard what is committed): change nothing while in
			// touch with a quorum; cut off, never leave a writable database.
			if policy.SelfFence(now, lastQuorum, a.cfg.FenceAfter) {
				if f := a.localFacts(); f.DB == policy.DBUp && !f.ReadOnly {
					if err := a.dbs.SetReadOnly(ctx, a.self, true, 2*time.Second); err == nil {
						a.mu.Lock()
						a.facts.ReadOnly, a.facts.Fenced = true, true
						a.mu.Unlock()
						a.log.Warn("fencing: no quorum and no site state yet; database made read-only")
					}
				}
			}
			return
		}
		cut := policy.SelfFence(now, lastQuorum, a.cfg.FenceAfter)
		if st.Primary == a.self {
			cut = !quorum // the lease already counts FenceAfter
		}
		if fenced && !cut && !(raftOK && a.node.CaughtUp()) {
			// Once fenced, only the coordinator's current state may make
			// this host writable again: gossip alone does not tell whether
			// another primary was promoted meanwhile.
			cut = true
		}
		want := st.Writable(a.self) && !cut
		f := a.localFacts()
		if st.Primary == a.self && cut != f.Fenced {
			a.mu.Lock()
			a.facts.Fenced = cut
			a.mu.Unlock()
			if cut {
				a.log.Warn("fencing: no quorum; making the primary's database read-only", "last_quorum", lastQuorum.Format(time.RFC3339Nano))
			} else {
				a.log.Info("quorum regained", "primary", st.Primary, "applied_index", a.node.AppliedIndex())
			}
		}
		if st.Primary != a.self && f.Fenced {
			a.mu.Lock()
			a.facts.Fenced = false
			a.mu.Unlock()
		}
		if f.DB != policy.DBUp || f.ReadOnly == !want {
			return
		}
		if want && !a.confirmWritable(ctx) {
			return
		}
		if cut && st.Primary == a.self {
			// Kill the application's sessions first: SET GLOBAL read_only
			// waits for running writes, which would commit after the site
			// promotes another primary.
			killed, err := a.dbs.Fence(ctx, a.self, 2*time.Second)
			if err != nil {
				a.log.Warn("fencing", "error", err)
				return
			}
			a.mu.Lock()
			a.facts.ReadOnly = true
			a.mu.Unlock()
			a.log.Warn("fencing: the primary's lease ran out; database made read-only", "sessions_killed", killed)
			return
		}
		if err := a.dbs.SetReadOnly(ctx, a.self, !want, 2*time.Second); err != nil {
			a.log.Warn("enforce read_only", "read_only", !want, "error", err)
			return
		}
		a.mu.Lock()
		a.facts.ReadOnly = !want
		a.mu.Unlock()
		a.log.Info("database read_only set", "read_only", !want, "primary", st.Primary)
	})
}

// confirmWritable asks the coordinator whether this host is the writable
// primary: a manager's own copy of the state may lag (after a partition
// heals, raft heartbeats arrive before the entries it missed), so only the
// coordinator's word makes a database writable.
func (a *Agent) confirmWritable(ctx context.Context) bool {
	if a.ledger.Leading() {
		return a.ledger.State().Writable(a.self)
	}
	coord := a.coordinator()
	if coord == "" {
		return false
	}
	c, err := a.remote.manager(coord)
	if err != nil {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	r, err := c.Status(ctx, &managerpb.StatusRequest{})
	if err != nil || r.GetCoordinator() != coord || !r.GetInitialized() || r.GetPrimary() != a.self || r.GetTransitionKind() != managerpb.TransitionKind_TRANSITION_KIND_NONE && !r.GetTransitionDrain() {
		return false
	}
	for _, d := range r.GetDatasources() {
		if d.GetHost() == a.self {
			return d.GetState() == policy.Online
		}
	}
	return false
}

// coordinateLoop runs the monitor while this manager is the coordinator.
func (a *Agent) coordinateLoop(ctx context.Context) {
	leading := false
	every(ctx, a.cfg.ProbeEvery, func() {
		if !a.ledger.Leading() {
			if leading {
				a.log.Info("no longer the coordinator")
				a.mu.Lock()
				a.leaderSince = time.Time{}
				a.mu.Unlock()
			}
			leading = false
			return
		}
		if !leading {
			leading = true
			a.log.Info("coordinator", "site", a.site.Name)
			a.mon.Reset()
			if err := a.node.Barrier(5 * time.Second); err != nil {
				leading = false
				return
			}
			a.mu.Lock()
			a.leaderSince = time.Now()
			clear(a.grants)
			a.mu.Unlock()
			a.notify()
		}
		if !a.ops.TryLock() {
			return // an operation is under way
		}
		defer a.ops.Unlock()
		st := a.ledger.State()
		if !st.Initialized {
			a.initialize()
			return
		}
		if st.Transition != nil {
			a.finishTransition(ctx, st)
			return
		}
		now := time.Now()
		facts, unreach := a.pool.View(now)
		facts[a.self] = a.localFacts()
		for _, h := range a.hosts {
			if _, ok := facts[h]; !ok {
				// Never heard from since this manager started.
				facts[h] = policy.Facts{Host: h, DB: policy.DBUnknown, Applied: -1, MaxStored: -1}
				unreach[h] = now.Sub(a.started)
			}
		}
		in := policy.Input{Now: now, State: st, Facts: facts, Unreachable: unreach}
		if st.Primary != "" {
			_, err := a.dbs.ReadOnly(ctx, st.Primary, 700*time.Millisecond)
			ok := err == nil
			in.PrimaryProbe, in.PrimaryRefused = &ok, fencing.IsRefused(err)
		}
		for _, d := range a.mon.Step(in) {
			a.execute(ctx, d)
		}
		if current, ok := a.mon.Conditions(); ok {
			a.clearAlertsNotIn(policy.MonitorAlerts, current)
		}
		a.reconcile(ctx, a.ledger.State(), facts)
	})
}

// reconcile takes offline any replicator running as master on a host that
// is not the primary (a restarted failed primary, whose replicator came
// back in its last role), or makes it a slave again if the host is an
// ONLINE replica: one site, one master. Under MAINTENANCE it leaves roles
// alone: the operator changes them by hand (trepctl setrole), as the guide's
// procedures do.
func (a *Agent) reconcile(ctx context.Context, st policy.State, facts map[string]policy.Facts) {
	if st.Transition != nil || st.Policy != policy.Automatic {
		return
	}
	for _, h := range a.hosts {
		f := facts[h]
		if h == st.Primary || !f.Alive || f.ReplRole != policy.RoleMaster ||
			!replstate.Healthy(f.ReplKind) {
			continue
		}
		if st.Datasources[h].State == policy.Online {
			a.log.Warn("a replica's replicator runs as master; making it a slave of the primary", "host", h, "primary", st.Primary)
			if err := a.act.ReplicatorTo(ctx, h, policy.RoleSlave, a.act.THLURI(st.Primary)); err != nil {
				a.log.Error("re-point replica", "host", h, "error", err)
			}
			continue
		}
		a.log.Warn("taking offline a master replicator on a host that is not the primary", "host", h, "state", st.Datasources[h].String())
		if rc, err := a.repls.Replicator(h); err == nil {
			octx, cancel := context.WithTimeout(ctx, 5*time.Second)
			_, err = rc.Offline(octx, &replicatorpb.OfflineRequest{Service: a.site.Name})
			cancel()
			if err != nil {
				a.log.Error("offline", "host", h, "error", err)
			}
		}
	}
}

// initialize writes the site's first state: the ini's master is primary.
func (a *Agent) initialize() {
	err := a.apply(policy.Change{Op: policy.OpInit, Host: a.site.Master, Hosts: a.hosts, Routers: a.site.Connectors})
	if err != nil {
		a.log.Error("initialize site state", "error", err)
		return
	}
	a.log.Info("site state initialized", "primary", a.site.Master, "policy", policy.Automatic)
}

// finishTransition settles a switch or failover a previous coordinator
// left half done: the candidate is promoted if it already runs as master,
// else the transition is dropped and the old primary stays.
func (a *Agent) finishTransition(ctx context.Context, st policy.State) {
	t := st.Transition
	s, err := a.repls.ServiceStatus(ctx, t.To, a.site.Name, time.Second)
	if err == nil && s.GetRole() == policy.RoleMaster && s.GetStateKind() == replicatorpb.ReplicatorState_REPLICATOR_STATE_ONLINE {
		a.log.Warn("completing a transition left by the previous coordinator", "transition", t.String())
		if err := a.apply(policy.Change{Op: policy.OpPromote, Host: t.To}); err == nil {
			a.granted(t.To)
			a.act.Repoint(ctx, t.To, a.act.Others(t.To, t.From))
		}
		return
	}
	a.log.Warn("dropping a transition left by the previous coordinator", "transition", t.String())
	_ = a.apply(policy.Change{Op: policy.OpEnd})
}

// execute carries out one decision of the monitor.
func (a *Agent) execute(ctx context.Context, d policy.Decision) {
	a.log.Warn("decision", "decision", d.String())
	var lines []string
	var err error
	switch d.Kind {
	case policy.DecideAlert:
		if d.Key != "" {
			a.raise(d.Key, d.Reason)
		} else {
			a.addAlert(d.Reason)
		}
		return
	case policy.DecideFail:
		st := a.ledger.State()
		err = a.apply(policy.Change{Op: policy.OpDatasource, Host: d.Host, Value: policy.Failed, Reason: d.Reason, Auto: d.Host != st.Primary})
		if err == nil && d.Host == st.Primary {
			_, _ = a.dbs.Fence(ctx, d.Host, time.Second)
		}
		lines = []string{fmt.Sprintf("datasource %s FAILED (%s)", d.Host, d.Reason)}
	case policy.DecideFailover:
		// d.To is the monitor's pick on reports up to 500 ms old (a
		// replica that applied everything may not have said so yet):
		// doFailover ranks the replicas again on what they say now.
		lines, err = a.doFailover(ctx, "", d.Reason, false)
	case policy.DecideRecover:
		lines, err = a.act.Recover(ctx, d.Host, false)
	}
	if err != nil {
		a.log.Error("decision failed", "decision", d.String(), "error", err)
		a.addAlert(fmt.Sprintf("%s failed: %v", d, err))
		return
	}
	for _, l := range lines {
		a.log.Info(l)
	}
	if d.Kind != policy.DecideFailover { // a failover records its own alert
		for _, l := range lines {
			a.addAlert(l)
		}
	}
}
