package manager

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/carbidedb/carbide/internal/config"
	"github.com/carbidedb/carbide/internal/install"
	"github.com/carbidedb/carbide/internal/lease"
	"github.com/carbidedb/carbide/internal/security"
	"github.com/carbidedb/carbide/manager/actions"
	"github.com/carbidedb/carbide/manager/consensus"
	"github.com/carbidedb/carbide/manager/fencing"
	"github.com/carbidedb/carbide/manager/health"
	"github.com/carbidedb/carbide/manager/membership"
	"github.com/carbidedb/carbide/manager/netbind"
	"github.com/carbidedb/carbide/manager/policy"
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

	node   *consensus.Node
	sec    *security.Cluster
	pool   *membership.Pool
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
	prober *health.Prober

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
	local := netbind.IP(b.Host.Address)
	a.remote = newRemotes(a.st, b.Config.Address, local, sec)
	dial := netbind.DialContext(local)
	a.fences = fencing.New(fencing.Config{User: a.st.ReplicationUser, Password: a.st.ReplicationPassword, Port: a.st.ReplicationPort,
		Address: b.Config.Address, Dial: dial})
	a.dbs, a.repls, a.views = a.fences, a.remote, a.remote
	src := health.Sources{Database: a.dbs, Replicator: a.repls, Connector: a.connectorFacts}
	if x := b.Host.CrossSite; x != nil {
		src.Cross = func(ctx context.Context) health.Cross { return a.crossStates(ctx, x) }
	}
	a.prober = health.New(health.Config{Host: a.self, Site: site.Name, Witness: a.witness, Marker: install.ProvisionMarker(b.Home)}, src)
	a.facts = policy.Facts{Host: a.self, DB: policy.DBUnknown, Witness: a.witness, Applied: -1, MaxStored: -1}
	return a, nil
}

// Dir is where the manager keeps its raft state.
func Dir(home string) string { return filepath.Join(home, "var", "manager") }

// PIDFile is where `manager start` records the process.
func PIDFile(home string) string { return install.PIDFile(home, "manager") }

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

// openConsensus opens the raft stores and joins (or bootstraps) the
// site's raft.
func (a *Agent) openConsensus() error {
	voters := map[string]string{}
	for _, h := range a.voters {
		voters[h] = net.JoinHostPort(a.bound.Config.Address(h), strconv.Itoa(a.st.RaftPort))
	}
	n, err := consensus.Open(consensus.Config{Dir: Dir(a.cfg.Home), ID: a.self,
		Bind:      net.JoinHostPort(a.bound.Host.Bind(""), strconv.Itoa(a.st.RaftPort)),
		Advertise: net.JoinHostPort(a.bound.Host.Address, strconv.Itoa(a.st.RaftPort)), Voters: voters,
		Listen:    func(l net.Listener) net.Listener { return a.sec.Listener(l, a.refusedPeer) },
		Handshake: a.sec.ClientMember, Local: netbind.IP(a.bound.Host.Address), Logger: a.log, Notify: a.notify})
	if err != nil {
		return err
	}
	a.node = n
	a.ledger = n
	a.wireActions()
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

// coordinator returns the coordinator's host name ("" none).
func (a *Agent) coordinator() string { return a.node.Leader() }

// refusedPeer logs a connection to the raft port that failed the
// membership handshake.
func (a *Agent) refusedPeer(remote net.Addr, err error) {
	a.log.Warn("raft: refused a connection", "remote", remote.String(), "error", err)
}
