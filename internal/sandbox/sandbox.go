package sandbox

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/carbidedb/carbide/internal/config"
	"github.com/carbidedb/carbide/internal/fileutil"
	"github.com/carbidedb/carbide/internal/install"
	"github.com/carbidedb/carbide/internal/mysqld"
	"github.com/carbidedb/carbide/internal/wanlink"
)

// ININame is the sandbox's own ini inside DIR.
const ININame = "tungsten.ini"

// Config says which sandbox to act on.
type Config struct {
	// Dir is the sandbox directory.
	Dir string
	// INI is the topology to bring up on a fresh Dir; ignored once
	// Dir/tungsten.ini exists (that file is then the sandbox's truth).
	INI string
	// Staging is the release directory holding bin/.
	Staging string
	// Out receives progress lines; nil discards them.
	Out io.Writer
	// Logger receives debug logs; nil discards them.
	Logger *slog.Logger
	// StopTimeout bounds a clean shutdown of one process before SIGKILL.
	StopTimeout time.Duration
	// Net is the second octet of every address (127.Net.S.H); 0 by
	// default. Another value lets two sandboxes run side by side.
	Net int
	// Extend makes Up on an existing sandbox take INI as its new
	// topology, when INI only adds sites or hosts (every existing host
	// keeps its name, site and address): DIR/tungsten.ini, every host's
	// /etc/tungsten/tungsten.ini, is rewritten, every install rewritten
	// (running agents keep running), and the new hosts made and started.
	Extend bool
	// Restore, with Extend, makes each added host's datadir a copy of
	// this one (a prepared mariabackup, or a stopped server's datadir)
	// instead of an empty database: the guide's "restore on all nodes in
	// the new cluster".
	Restore string
	// NetNS makes a new sandbox put each host in a network namespace of
	// its own, joined by a bridge per site and a WAN link between sites
	// (netbed.go). It needs root.
	NetNS bool
	// WAN shapes the link between a --netns sandbox's sites.
	WAN config.WAN
}

// DefaultConfig returns the defaults of the sandbox command.
func DefaultConfig() Config {
	return Config{Dir: "sandbox", INI: "examples/msaa.ini", StopTimeout: 60 * time.Second}
}

// Validate checks c and makes its paths absolute.
func (c *Config) Validate() error {
	if c.Dir == "" {
		return errors.New("sandbox: no directory given; pass --dir DIR")
	}
	abs, err := filepath.Abs(c.Dir)
	if err != nil {
		return fmt.Errorf("sandbox: directory %s: %w", c.Dir, err)
	}
	c.Dir = abs
	if c.INI != "" {
		if c.INI, err = filepath.Abs(c.INI); err != nil {
			return err
		}
	}
	if c.Out == nil {
		c.Out = io.Discard
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Restore != "" {
		if c.Restore, err = filepath.Abs(c.Restore); err != nil {
			return err
		}
		if fi, err := os.Stat(filepath.Join(c.Restore, "mysql")); err != nil || !fi.IsDir() {
			return fmt.Errorf("sandbox: --restore %s holds no MariaDB datadir (no mysql/ folder); give a prepared mariabackup directory", c.Restore)
		}
	}
	if c.Net < 0 || c.Net > 255 {
		return fmt.Errorf("sandbox: --net must be from 0 to 255, not %d", c.Net)
	}
	if c.WAN != (config.WAN{}) && !c.NetNS {
		return errors.New("sandbox: --wan-delay, --wan-jitter and --wan-loss shape the link between the sites of a --netns sandbox; add --netns")
	}
	if c.NetNS {
		if c.Net > 15 {
			return fmt.Errorf("sandbox: a --netns sandbox's --net is from 0 to 15 (its addresses are 198.18.16N+S.H), not %d", c.Net)
		}
		if _, err := wanlink.ParseShape(c.WAN.Delay, c.WAN.Jitter, c.WAN.Loss); err != nil {
			return fmt.Errorf("sandbox: %w", err)
		}
	}
	if c.StopTimeout <= 0 {
		c.StopTimeout = 60 * time.Second
	}
	return nil
}

// Sandbox is an opened sandbox directory.
type Sandbox struct {
	cfg    Config
	config *config.Config
	plan   *config.Plan
	lock   *os.File
	added  map[string]bool // hosts an extension added (Restore seeds them)
}

func (s *Sandbox) say(format string, args ...any) {
	fmt.Fprintf(s.cfg.Out, format+"\n", args...)
}

// iniPath is DIR/tungsten.ini.
func (s *Sandbox) iniPath() string { return filepath.Join(s.cfg.Dir, ININame) }

// open locks Dir and loads its ini. With create, a missing ini is made from
// cfg.INI first.
func open(cfg Config, create bool) (*Sandbox, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Sandbox{cfg: cfg}
	if cfg.Restore != "" && !cfg.Extend {
		return nil, errors.New("sandbox: --restore seeds the hosts a new --ini adds to an existing sandbox; give --ini too")
	}
	if _, err := os.Stat(s.iniPath()); err != nil {
		if cfg.Restore != "" {
			return nil, fmt.Errorf("sandbox: --restore seeds the hosts an --ini adds to an existing sandbox, and %s holds none yet", cfg.Dir)
		}
		if !create {
			return nil, fmt.Errorf("%s holds no sandbox (no %s); run sandbox up --dir %s first", cfg.Dir, ININame, cfg.Dir)
		}
		// Check the topology and its addresses before creating anything:
		// bad input changes nothing.
		src, err := s.sourceINI()
		if err != nil {
			return nil, err
		}
		if s.cfg.NetNS {
			if err := checkNetNS(); err != nil {
				return nil, err
			}
		}
		if err := checkPorts(src, s.cfg.Net, s.cfg.NetNS); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
			return nil, fmt.Errorf("sandbox: create %s: %w", cfg.Dir, err)
		}
	}
	if err := s.acquire(); err != nil {
		return nil, err
	}
	if _, err := os.Stat(s.iniPath()); err != nil {
		if err := s.writeINI(); err != nil {
			s.release()
			return nil, err
		}
	} else if create && cfg.Extend {
		if err := s.extend(); err != nil {
			s.release()
			return nil, err
		}
	} else if create && cfg.INI != "" {
		s.say("using %s of the existing sandbox (sandbox destroy --dir %s starts over)", s.iniPath(), cfg.Dir)
	}
	if err := s.load(); err != nil {
		s.release()
		return nil, err
	}
	if create && s.cfg.NetNS && s.config.SandboxNetNS == "" {
		s.release()
		return nil, fmt.Errorf("the sandbox in %s runs on loopback addresses; --netns is for a new sandbox (sandbox destroy --dir %s starts over)", s.cfg.Dir, s.cfg.Dir)
	}
	return s, nil
}

// openUnlocked loads an existing sandbox without taking its lock (for a
// process that a locked command starts).
func openUnlocked(cfg Config) (*Sandbox, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Sandbox{cfg: cfg}
	return s, s.load()
}

// load reads DIR/tungsten.ini.
func (s *Sandbox) load() error {
	c, err := config.Load(s.iniPath())
	if err != nil {
		return err
	}
	if c.SandboxRoot != s.cfg.Dir {
		return fmt.Errorf("%s belongs to a sandbox rooted at %s, not %s; move it back or run sandbox destroy", s.iniPath(), c.SandboxRoot, s.cfg.Dir)
	}
	s.config, s.plan = c, c.Plan()
	return nil
}

func (s *Sandbox) acquire() error {
	f, err := os.OpenFile(filepath.Join(s.cfg.Dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return fmt.Errorf("sandbox: lock %s: %w", s.cfg.Dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return fmt.Errorf("another sandbox command is running on %s; wait for it to finish", s.cfg.Dir)
	}
	s.lock = f
	return nil
}

func (s *Sandbox) release() {
	if s.lock != nil {
		s.lock.Close()
		s.lock = nil
	}
}

// writeINI makes DIR/tungsten.ini: the source ini, validated, plus the
// sandbox's [hosts] map and [sandbox] root.
func (s *Sandbox) writeINI() error {
	src, err := s.sourceINI()
	if err != nil {
		return err
	}
	data, err := os.ReadFile(s.cfg.INI)
	if err != nil {
		return err
	}
	addrs, err := Addresses(src, s.cfg.Net, s.cfg.NetNS)
	if err != nil {
		return err
	}
	var b bytes.Buffer
	b.Write(bytes.TrimRight(data, "\n"))
	kind := "loopback address"
	if s.cfg.NetNS {
		kind = "address in its network namespace"
	}
	fmt.Fprintf(&b, "\n\n# Written by sandbox up from %s: each host's %s.\n[hosts]\n", s.cfg.INI, kind)
	for _, h := range src.Plan().Hosts {
		fmt.Fprintf(&b, "%s=%s\n", h.Name, addrs[h.Name])
	}
	fmt.Fprintf(&b, "\n[sandbox]\nroot=%s\n", s.cfg.Dir)
	if s.cfg.NetNS {
		fmt.Fprintf(&b, "netns=%s\n", netnsPrefix(s.cfg.Net))
		for _, kv := range [][2]string{{"wan-delay", s.cfg.WAN.Delay}, {"wan-jitter", s.cfg.WAN.Jitter}, {"wan-loss", s.cfg.WAN.Loss}} {
			if kv[1] != "" {
				fmt.Fprintf(&b, "%s=%s\n", kv[0], kv[1])
			}
		}
	}
	if err := fileutil.WriteAtomic(s.iniPath(), b.Bytes(), 0o600); err != nil {
		return err
	}
	s.say("wrote %s from %s", s.iniPath(), s.cfg.INI)
	return nil
}

// sourceINI loads and checks the topology a new sandbox is made from.
func (s *Sandbox) sourceINI() (*config.Config, error) {
	if s.cfg.INI == "" {
		return nil, errors.New("sandbox: no ini given; pass --ini FILE")
	}
	src, err := config.Load(s.cfg.INI)
	if err != nil {
		return nil, err
	}
	if src.Section(config.SectionHosts) != nil || src.Section(config.SectionSandbox) != nil {
		return nil, fmt.Errorf("%s already has a [hosts] or [sandbox] section; the sandbox writes its own, remove them", s.cfg.INI)
	}
	if _, err := Addresses(src, s.cfg.Net, s.cfg.NetNS); err != nil {
		return nil, err
	}
	return src, nil
}

// checkPorts fails when another process listens where a new sandbox's
// databases would (for --netns: when its namespaces or bridges exist).
func checkPorts(src *config.Config, net int, inNetNS bool) error {
	addrs, err := Addresses(src, net, inNetNS)
	if err != nil {
		return err
	}
	if inNetNS {
		src.SandboxNetNS, src.Hosts = netnsPrefix(net), addrs
		b, err := (&Sandbox{config: src}).bed()
		if err != nil {
			return err
		}
		return b.inUse()
	}
	for _, h := range src.Plan().Hosts {
		if h.Cluster == nil || !h.Cluster.Replicator {
			continue
		}
		if err := portFree(mysqld.Config{Address: addrs[h.Name], Port: h.Cluster.Settings.ReplicationPort}); err != nil {
			return fmt.Errorf("%s: %w", h.Name, err)
		}
	}
	return nil
}

// Addresses gives every host of cfg its sandbox address: 127.net.S.H, S
// the position of its site among the clustered services, H its position in
// members= (witnesses and connector-only hosts follow the members); in a
// --netns sandbox 198.18.(16·net+S).H.
func Addresses(cfg *config.Config, net int, inNetNS bool) (map[string]string, error) {
	out := map[string]string{}
	sites := cfg.Clustered()
	maxSites, maxHosts := 254, 254
	if inNetNS {
		maxSites, maxHosts = netnsSites, 253
	}
	if len(sites) > maxSites {
		return nil, fmt.Errorf("the sandbox gives each site an address block and has room for %d sites, not %d", maxSites, len(sites))
	}
	for si, site := range sites {
		hosts := siteHosts(site)
		if len(hosts) > maxHosts {
			return nil, fmt.Errorf("the sandbox has room for %d hosts per site; [%s] has %d", maxHosts, site.Name, len(hosts))
		}
		for hi, h := range hosts {
			out[h] = fmt.Sprintf("127.%d.%d.%d", net, si+1, hi+1)
			if inNetNS {
				out[h] = netnsAddr(net, si+1, hi+1)
			}
		}
	}
	return out, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// hostDir is DIR/<host>.
func (s *Sandbox) hostDir(host string) string { return filepath.Join(s.cfg.Dir, host) }

// mysqlDir is DIR/<host>/mysql.
func (s *Sandbox) mysqlDir(host string) string { return filepath.Join(s.hostDir(host), "mysql") }

// AppPrivileges are the application user's: everything an application
// and sysbench need, nothing that bypasses read_only.
const AppPrivileges = mysqld.AppPrivileges

// dbConfig is the mariadbd instance of a host with a database.
func (s *Sandbox) dbConfig(h *config.HostPlan) (mysqld.Config, bool) {
	if h.Cluster == nil || !h.Cluster.Replicator {
		return mysqld.Config{}, false
	}
	sites := s.config.Clustered()
	si, hi := 0, 0
	for i, site := range sites {
		if site.Name == h.Site {
			si = i + 1
			for j, m := range site.Members {
				if m == h.Name {
					hi = j + 1
				}
			}
		}
	}
	st := h.Cluster.Settings
	users := []mysqld.User{{Name: st.ReplicationUser, Password: st.ReplicationPassword}}
	if st.ApplicationUser != "" && st.ApplicationUser != st.ReplicationUser {
		// No SUPER: applications must be held off by read_only on replicas
		// and on a demoted primary.
		users = append(users, mysqld.User{Name: st.ApplicationUser, Password: st.ApplicationPassword, Privileges: AppPrivileges})
	}
	if s.config.SandboxNetNS != "" {
		// This machine reaches the host's database from its address on the
		// site's bridge (198.18.x.254), as root over TCP does on loopback.
		for _, net := range []string{"198.18.%", "198.19.%"} {
			users = append(users, mysqld.User{Name: "root", Host: net, Privileges: "ALL PRIVILEGES ON *.* WITH GRANT OPTION"})
		}
	}
	return mysqld.Config{
		Dir:                    s.mysqlDir(h.Name),
		Address:                h.Address,
		Hostname:               h.Name,
		Port:                   st.ReplicationPort,
		ServerID:               uint32(si*100 + hi),
		AutoIncrementIncrement: max(4, len(sites)),
		AutoIncrementOffset:    si,
		Users:                  users,
		// Every database starts read-only; the site's manager makes the
		// primary writable once it knows it is the primary.
		Options:     []string{"read_only=ON"},
		Detached:    true,
		NetNS:       s.config.NetNS(h.Name),
		StopTimeout: s.cfg.StopTimeout,
		Logger:      s.cfg.Logger.With("host", h.Name),
	}, true
}

// dbHosts are the plan's hosts that have a database.
func (s *Sandbox) dbHosts() []*config.HostPlan {
	var out []*config.HostPlan
	for _, h := range s.plan.Hosts {
		if _, ok := s.dbConfig(h); ok {
			out = append(out, h)
		}
	}
	return out
}

// EnvLine returns the shell line that binds a shell to host's installs, as
// the guide's step 6 does.
func EnvLine(cfg Config, host string) (string, error) {
	s, err := open(cfg, false)
	if err != nil {
		return "", err
	}
	defer s.release()
	h, ok := s.plan.Host(host)
	if !ok {
		return "", fmt.Errorf("host %s is not in the sandbox (hosts: %s)", host, strings.Join(s.plan.HostNames(), ", "))
	}
	var parts []string
	for _, in := range h.Installs() {
		parts = append(parts, "source "+install.EnvPath(in.Dir))
	}
	return strings.Join(parts, "; "), nil
}

// hasProgram reports whether the release has program.
func (s *Sandbox) hasProgram(program string) bool {
	st, err := os.Stat(filepath.Join(s.cfg.Staging, "bin", program))
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}
