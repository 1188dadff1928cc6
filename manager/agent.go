package manager

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/carbidedb/carbide/internal/config"
	"github.com/carbidedb/carbide/internal/install"
	"github.com/carbidedb/carbide/internal/lease"
	"github.com/carbidedb/carbide/internal/security"
	"github.com/carbidedb/carbide/manager/actions"
	"github.com/carbidedb/carbide/manager/fencing"
	"github.com/carbidedb/carbide/manager/policy"
	"github.com/carbidedb/carbide/manager/raftstore"
)

// Config configures the manager process.
type Config struct {
	// Home is the cluster install directory (CARBIDE_HOME).
	Home   string
	Logger *slog.Logger
	Policy policy.Config
	// ProbeEvery is how often the local database and replicator are
	// probed and the coordinator steps the monitor.
	ProbeEvery time.Duration
	// FenceAfter is the primary's lease (lease.go): how long its manager
	// keeps the database writable without a grant from the coordinator.
	// Must stay below Policy.FenceGrace.
	FenceAfter time.Duration
	// BootScript overrides the install's datasource-boot-script.
	BootScript []string
}

// DefaultConfig returns the settings managers run with.
func DefaultConfig(home string) Config {
	return Config{Home: home, Policy: policy.DefaultConfig(), ProbeEvery: 250 * time.Millisecond, FenceAfter: lease.Duration}
}

// Validate checks the timings against each other.
func (c *Config) Validate() error {
	if c.Home == "" {
		return errors.New("manager: no install directory (CARBIDE_HOME)")
	}
	if c.ProbeEvery <= 0 {
		return errors.New("manager: the probe interval must be positive")
	}
	if c.FenceAfter+leaderLease > c.Policy.FenceGrace {
		return fmt.Errorf("manager: fencing after %v plus %v must not exceed the coordinator's grace of %v", c.FenceAfter, leaderLease, c.Policy.FenceGrace)
	}
	return nil
}

// Agent is a running manager.
type Agent struct {
	cfg     Config
	log     *slog.Logger
	bound   *install.Bound
	site    *config.Service
	self    string
	hosts   []string // datasources: the site's members
	voters  []string // members and witnesses
	witness bool
	st      config.Settings

	fsm    *fsm
	raft   *raft.Raft
	store  *raftstore.Store
	sec    *security.Cluster
	trans  *raft.NetworkTransport
	pool   *pool
	mon    *policy.Monitor
	remote *remotes
	fences *fencing.Databases
	// The seams (seams.go): fencing, remote and raft behind the
	// interfaces the actions and loops use.
	dbs    actions.Databases
	repls  actions.Replicators
	views  managerViews
	ledger ledger
	act    *actions.Actions

	// ops serialises operations on the coordinator.
	ops sync.Mutex

	mu         sync.Mutex
	facts      policy.Facts // this host's
	seq        uint64
	lastQuorum time.Time
	hadQuorum  bool
	// leaseAt is when this host's lease was last asked for and granted
	// (lease.go); grants is when this coordinator last granted each host's,
	// leaderSince when it took office (zero while not the coordinator).
	leaseAt     time.Time
	leaseFiled  time.Time // when renewLease last wrote the lease file
	grants      map[string]time.Time
	leaderSince time.Time
	// primarySince is when this manager saw its host become the primary
	// (zero if it already was when the manager started); seenState and
	// wasPrimary track that.
	primarySince          time.Time
	seenState, wasPrimary bool
	// readers are the other sites' hosts reading this site (readers.go).
	readers  map[string]string
	alerted  map[string]time.Time
	changed  chan struct{}              // closed and replaced on every change
	reports  map[string]connectorReport // connectors' own word, by host
	warnings []string                   // offsetWarnings' last findings

	transitions transitionCounts // switches and failovers run here (metrics.go)

	started  time.Time
	shutdown chan struct{}
	once     sync.Once
}

// New opens the install and the manager's raft state; Run starts it.
func New(cfg Config) (*Agent, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	b, err := install.Open(cfg.Home)
	if err != nil {
		return nil, err
	}
	if !b.Install.Manager {
		return nil, fmt.Errorf("the %s install of %s runs no manager", b.Install.Kind, b.Host.Name)
	}
	sec, err := security.ForInstall(b)
	if err != nil {
		return nil, err
	}
	site := b.Config.Service(b.Host.Site)
	a := &Agent{cfg: cfg, sec: sec, log: cfg.Logger, bound: b, site: site, self: b.Host.Name, witness: b.Host.Witness,
		st: b.Install.Settings, mon: policy.NewMonitor(cfg.Policy), changed: make(chan struct{}), shutdown: make(chan struct{}), alerted: map[string]time.Time{},
		reports: map[string]connectorReport{}, grants: map[string]time.Time{}}
	a.hosts = append(a.hosts, site.Members...)
	a.voters = append(append([]string(nil), site.Members...), site.Witnesses...)
	a.remote = newRemotes(a.st, b.Config.Address, localIP(b.Host.Address), sec)
	dial := dialContext(localIP(b.Host.Address))
	a.fences = fencing.New(fencing.Config{User: a.st.ReplicationUser, Password: a.st.ReplicationPassword, Port: a.st.ReplicationPort,
		Address: b.Config.Address, Dial: dial})
	a.dbs, a.repls, a.views, a.ledger = a.fences, a.remote, a.remote, raftLedger{a}
	a.wireActions()
	a.facts = policy.Facts{Host: a.self, DB: policy.DBUnknown, Witness: a.witness, Applied: -1, MaxStored: -1}
	return a, nil
}

// Dir is where the manager keeps its raft state.
func Dir(home string) string { return filepath.Join(home, "var", "manager") }

// PIDFile is where `manager start` records the process.
func PIDFile(home string) string { return filepath.Join(install.RunDir(home), "manager.pid") }

// LogFile is the process's log.
func LogFile(home string) string { return filepath.Join(install.LogDir(home), "manager.log") }

// ControlAddr is where the manager's gRPC API listens.
func (a *Agent) ControlAddr() string {
	return net.JoinHostPort(a.bound.Host.Bind(""), strconv.Itoa(a.st.ManagerRPCPort))
}

func (a *Agent) notify() {
	a.mu.Lock()
	close(a.changed)
	a.changed = make(chan struct{})
	a.mu.Unlock()
}

func (a *Agent) changes() <-chan struct{} {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.changed
}

// startRaft opens the store and joins (or bootstraps) the site's raft.
func (a *Agent) startRaft() error {
	dir := Dir(a.cfg.Home)
	store, err := raftstore.Open(filepath.Join(dir, "raft"))
	if err != nil {
		return err
	}
	a.store = store
	logw := slogWriter{a.log.With("lib", "raft")}
	snaps, err := raft.NewFileSnapshotStore(dir, 2, logw)
	if err != nil {
		return err
	}
	bind := net.JoinHostPort(a.bound.Host.Bind(""), strconv.Itoa(a.st.RaftPort))
	adv, err := net.ResolveTCPAddr("tcp", net.JoinHostPort(a.bound.Host.Address, strconv.Itoa(a.st.RaftPort)))
	if err != nil {
		return err
	}
	var l net.Listener
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		// A manager killed a moment ago may still hold the port.
		l, err = net.Listen("tcp", bind)
		if err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("raft on %s (manager-raft-port): %w", bind, err)
	}
	trans := raft.NewNetworkTransport(&streamLayer{Listener: a.sec.Listener(l, a.refusedPeer), advertise: adv, local: localIP(a.bound.Host.Address), sec: a.sec}, 3, 2*time.Second, logw)
	a.trans = trans
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(a.self)
	rc.HeartbeatTimeout = time.Second
	rc.ElectionTimeout = time.Second
	rc.LeaderLeaseTimeout = 500 * time.Millisecond
	rc.CommitTimeout = 20 * time.Millisecond
	rc.SnapshotThreshold = 256
	rc.TrailingLogs = 256
	rc.Logger = hclog.New(&hclog.LoggerOptions{Name: "raft", Output: logw, Level: hclog.Warn})
	a.fsm = &fsm{notify: a.notify, log: a.log}
	r, err := raft.NewRaft(rc, a.fsm, store, store, snaps, trans)
	if err != nil {
		return err
	}
	a.raft = r
	has, err := raft.HasExistingState(store, store, snaps)
	if err != nil {
		return err
	}
	if !has {
		var servers []raft.Server
		for _, h := range a.voters {
			addr := net.JoinHostPort(a.bound.Config.Address(h), strconv.Itoa(a.st.RaftPort))
			servers = append(servers, raft.Server{ID: raft.ServerID(h), Address: raft.ServerAddress(addr)})
		}
		if err := r.BootstrapCluster(raft.Configuration{Servers: servers}).Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
			return err
		}
	}
	return nil
}

// wireActions makes the agent's actions over its seams.
func (a *Agent) wireActions() {
	a.act = actions.New(actions.Config{Site: a.site.Name, Hosts: a.hosts, THLPort: a.st.THLPort, CatchUp: a.st.FailoverCatchUp,
		DisconnectTimeout: a.st.DisconnectTimeout}, actions.Seams{Ledger: a.ledger, Databases: a.dbs, Replicators: a.repls,
		Connectors: agentSeams{a}, Leases: agentSeams{a}, Alerts: agentSeams{a}, Facts: a.allFacts, Log: a.log})
}

// apply commits changes through raft, in order; only the coordinator can.
func (a *Agent) apply(changes ...policy.Change) error { return a.ledger.Apply(changes...) }

// raftLedger is the ledger of a running manager: its raft log.
type raftLedger struct{ a *Agent }

func (l raftLedger) State() policy.State { return l.a.fsm.state() }

func (l raftLedger) Leading() bool { return l.a.raft.State() == raft.Leader }

func (l raftLedger) Index() uint64 { return l.a.fsm.applied() }

func (l raftLedger) Apply(changes ...policy.Change) error {
	for _, c := range changes {
		c.At = time.Now().UTC()
		b, err := json.Marshal(c)
		if err != nil {
			return err
		}
		f := l.a.raft.Apply(b, 5*time.Second)
		if err := f.Error(); err != nil {
			if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
				return fmt.Errorf("this manager stopped being the coordinator: %w", err)
			}
			return err
		}
		if err, ok := f.Response().(error); ok && err != nil {
			return err
		}
	}
	return nil
}

// coordinator returns the current raft leader's host name ("" none).
func (a *Agent) coordinator() string {
	_, id := a.raft.LeaderWithID()
	return string(id)
}

// hasQuorum tells whether this manager is in touch with a coordinator
// (or is one that still holds its lease).
func (a *Agent) hasQuorum() bool {
	switch a.raft.State() {
	case raft.Leader:
		return true
	case raft.Follower:
		_, id := a.raft.LeaderWithID()
		return id != "" && time.Since(a.raft.LastContact()) < time.Second
	}
	return false
}
