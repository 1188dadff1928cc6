package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	"google.golang.org/grpc"

	"github.com/carbidedb/carbide/internal/config"
	"github.com/carbidedb/carbide/internal/daemon"
	"github.com/carbidedb/carbide/internal/install"
	"github.com/carbidedb/carbide/internal/security"
	"github.com/carbidedb/carbide/replicator/apply"
	"github.com/carbidedb/carbide/replicator/service"
	"github.com/carbidedb/carbide/replicator/stream"
	"github.com/carbidedb/carbide/replicator/thl"
	"github.com/carbidedb/carbide/rpc/gen/replicatorpb"
	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

// Config configures the replicator process.
type Config struct {
	// Home is the install directory (CARBIDE_HOME).
	Home string
	// AutoOnline brings every service online at start (Tungsten's
	// auto_enable); default true through DefaultConfig.
	AutoOnline bool
	Logger     *slog.Logger
}

// Agent is a running replicator.
type Agent struct {
	cfg      Config
	bound    *install.Bound
	log      *slog.Logger
	services []*service.Service
	byName   map[string]*service.Service
	thl      *stream.Server
	origins  []*originOrder
	sec      *security.Cluster
	shutdown chan struct{}
	once     sync.Once
	sibs     siblings // this host's other replicators (deleted.go)
}

// New opens the install and its services' THL stores.
func New(cfg Config) (*Agent, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	b, err := install.Open(cfg.Home)
	if err != nil {
		return nil, err
	}
	in := b.Install
	if !in.Replicator || len(in.Services) == 0 {
		return nil, fmt.Errorf("the %s install of %s runs no replicator", in.Kind, b.Host.Name)
	}
	sec, err := security.ForInstall(b)
	if err != nil {
		return nil, err
	}
	a := &Agent{cfg: cfg, bound: b, log: cfg.Logger, byName: map[string]*service.Service{}, shutdown: make(chan struct{}), sec: sec}
	thlDial := sec.THLDialOptions(nil)
	a.thl = stream.NewServer(time.Second, cfg.Logger)
	st := in.Settings
	if os.Getenv("GOMEMLIMIT") == "" && st.ReplicatorMemoryMB > 0 {
		// What goes through the pipeline is bounded in bytes; the limit
		// keeps the garbage between collections from doubling it.
		debug.SetMemoryLimit(int64(st.ReplicatorMemoryMB) << 20)
	}
	for _, sp := range in.Services {
		var sources []string
		for _, e := range sp.Sources {
			sources = append(sources, net.JoinHostPort(e.Host, strconv.Itoa(e.Port)))
		}
		// A cluster slave reads its site's primary, the first source,
		// whenever it answers: a slave that moved to another replica while
		// the primary's replicator was down would otherwise stay there
		// (two replicas reading each other, ONLINE, nothing moving).
		order := preferFirst(resolver(b))
		if sp.Topology == config.TopologyClusterSlave {
			if origin := b.Config.Service(sp.Name); origin != nil {
				o := newOriginOrder(b.Config, origin, sec.ControlDialOptions(nil))
				a.origins = append(a.origins, o)
				order = o.Order
			}
		}
		svc, err := service.New(service.Config{
			SourceOrder: order,
			Name:        sp.Name, Host: b.Host.Name, Site: b.Host.Site, Role: sp.Role, Topology: sp.Topology, Sources: sources,
			ListenAddr: net.JoinHostPort(b.Host.Name, strconv.Itoa(st.THLPort)), SSL: st.THLSSL, Resolve: resolver(b),
			DBAddr: net.JoinHostPort(b.Host.Address, strconv.Itoa(st.ReplicationPort)), DBUser: st.ReplicationUser, DBPassword: st.ReplicationPassword,
			THLDir: thl.DirFor(b.Home, sp.Name), Retention: st.THLRetention, RMIPort: st.RMIPort, Channels: st.Channels,
			BlockSize: st.BlockCommitRows, BlockTime: st.BlockCommitInterval,
			ConflictPolicy: apply.Policy(sp.ConflictPolicy), ConflictSiteOrder: sp.ConflictSiteOrder, Deleted: a.deletedCheck(sp.ConflictSiteOrder), Positions: a.positionsCheck(sp.ConflictSiteOrder),
			RoleFile:    filepath.Join(b.Home, "var", "role-"+sp.Name+".json"),
			SpillDir:    filepath.Join(b.Home, "var", "spill", sp.Name),
			DialOptions: thlDial,
			Logger:      cfg.Logger,
		})
		if err != nil {
			a.closeServices()
			return nil, err
		}
		a.services = append(a.services, svc)
		a.byName[sp.Name] = svc
		a.thl.Serve(sp.Name, storeLog{svc}, svc.Role)
	}
	return a, nil
}

// resolver maps "host:port" to the host's address from the install's
// configuration ([hosts], else the name for DNS).
func resolver(b *install.Bound) func(string) string {
	return func(hp string) string {
		host, port, err := net.SplitHostPort(hp)
		if err != nil {
			return hp
		}
		return net.JoinHostPort(b.Config.Address(host), port)
	}
}

func (a *Agent) closeServices() {
	for _, o := range a.origins {
		o.close()
	}
	a.sibs.close()
	for _, s := range a.services {
		if err := s.Close(); err != nil {
			a.log.Error("close service", "service", s.Name(), "error", err)
		}
	}
}

// Addrs are the control and THL listen addresses.
func (a *Agent) Addrs() (control, thlAddr string) {
	st := a.bound.Install.Settings
	host := a.bound.Host.Bind("")
	return net.JoinHostPort(host, strconv.Itoa(st.RMIPort)), net.JoinHostPort(host, strconv.Itoa(st.THLPort))
}

// Run serves until ctx ends or Shutdown is called, then stops in order:
// services offline, servers stopped, stores closed.
func (a *Agent) Run(ctx context.Context) error {
	controlAddr, thlAddr := a.Addrs()
	cl, err := daemon.Listen(ctx, controlAddr)
	if err != nil {
		a.closeServices()
		return fmt.Errorf("listen for control on %s (rmi-port): %w", controlAddr, err)
	}
	tl, err := daemon.Listen(ctx, thlAddr)
	if err != nil {
		cl.Close()
		a.closeServices()
		return fmt.Errorf("listen for THL on %s (thl-port): %w", thlAddr, err)
	}
	control := grpc.NewServer(a.sec.ControlServerOptions()...)
	replicatorpb.RegisterReplicatorServer(control, &controlServer{a: a})
	thlSrv := grpc.NewServer(append(a.sec.THLServerOptions(), stream.ServerOptions()...)...)
	thlpb.RegisterTHLServer(thlSrv, a.thl)

	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for _, s := range []struct {
		srv *grpc.Server
		l   net.Listener
	}{{control, cl}, {thlSrv, tl}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.srv.Serve(s.l); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
				errs <- err
			}
		}()
	}
	maintainCtx, stopMaintain := context.WithCancel(ctx)
	if addr := a.metricsAddr(); addr != "" {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := a.serveMetrics(maintainCtx, addr); err != nil {
				a.log.Error("metrics", "address", addr, "error", err)
			}
		}()
	}
	a.startREST(maintainCtx, &wg)
	if f := a.newFencer(); f != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f.run(maintainCtx)
		}()
	}
	a.log.Info("replicator running", "home", a.cfg.Home, "control", controlAddr, "thl", thlAddr, "ssl", a.sec.SSL(), "metrics", a.metricsAddr())
	for _, s := range a.services {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.Maintain(maintainCtx, 10*time.Minute)
		}()
	}
	if a.cfg.AutoOnline {
		for _, s := range a.services {
			if err := s.Online(service.OnlineOptions{}); err != nil {
				a.log.Error("online at start", "service", s.Name(), "error", err)
			}
		}
	}
	var runErr error
	select {
	case <-ctx.Done():
	case <-a.shutdown:
	case runErr = <-errs:
	}
	a.log.Info("replicator stopping")
	stopMaintain()
	offCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	for _, s := range a.services {
		_ = s.Offline(offCtx)
	}
	cancel()
	thlSrv.Stop()
	stopped := make(chan struct{})
	go func() { control.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		control.Stop()
	}
	wg.Wait()
	a.closeServices()
	return runErr
}

// Shutdown asks Run to stop.
func (a *Agent) Shutdown() { a.once.Do(func() { close(a.shutdown) }) }

// PIDFile is where `replicator start` records the process.
func PIDFile(home string) string { return install.PIDFile(home, "replicator") }

// LogFile is the process's log.
func LogFile(home string) string { return filepath.Join(install.LogDir(home), "replicator.log") }
