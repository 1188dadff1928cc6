package cctrl

import (
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/carbidedb/carbide/internal/config"
	"github.com/carbidedb/carbide/internal/install"
)

// defaultManagerPort and defaultRMIPort are used without an install.
const (
	defaultManagerPort = 9997
	defaultRMIPort     = 10000
)

// endpoint is an agent: the host it runs on and its address:port.
type endpoint struct {
	host, addr string
}

// topology is what the session knows of the deployment: the installed
// configuration when cctrl runs from an install, else only the manager
// named by -host/-port (and what its status tells).
type topology struct {
	cfg    *config.Config // nil without an install
	plan   *config.Plan
	self   string // this host; "" without an install
	site   string // this host's site
	kind   config.InstallKind
	thlSSL bool
	// host and port are -host and -port.
	host string
	port int
}

func newTopology(b *install.Bound, host string, port int) *topology {
	t := &topology{host: host, port: port}
	if b == nil {
		return t
	}
	t.cfg, t.plan = b.Config, b.Config.Plan()
	t.self, t.site, t.kind = b.Host.Name, b.Host.Site, b.Install.Kind
	t.thlSSL = b.Install.Settings.THLSSL
	return t
}

// configured says whether the topology comes from an install.
func (t *topology) configured() bool { return t.cfg != nil }

// services lists the sites (clustered services) in configuration order.
func (t *topology) services() []string {
	if t.cfg == nil {
		return nil
	}
	var out []string
	for _, s := range t.cfg.Clustered() {
		out = append(out, s.Name)
	}
	return out
}

// hasService says whether site is a clustered service of the configuration.
func (t *topology) hasService(site string) bool { return slices.Contains(t.services(), site) }

// siteOf returns the site of a configured host, "" if unknown.
func (t *topology) siteOf(host string) string {
	if t.plan == nil {
		return ""
	}
	if h, ok := t.plan.Host(host); ok {
		return h.Site
	}
	return ""
}

// members lists a site's datasources (nil when unknown).
func (t *topology) members(site string) []string {
	if t.cfg == nil {
		return nil
	}
	if s := t.cfg.Service(site); s != nil {
		return s.Members
	}
	return nil
}

// connectors lists the hosts running a connector of site (nil when unknown).
func (t *topology) connectors(site string) []string {
	if t.cfg == nil {
		return nil
	}
	if s := t.cfg.Service(site); s != nil {
		return s.Connectors
	}
	return nil
}

// startService is the service a session starts in: -service, else the
// site of -host or of this host.
func (t *topology) startService(service string) string {
	switch {
	case service != "":
		return service
	case t.host != "" && t.siteOf(t.host) != "":
		return t.siteOf(t.host)
	}
	return t.site
}

// managers lists the managers of site in the order to try them: -host
// first, then this host's, then the other members and witnesses.
func (t *topology) managers(site string) []endpoint {
	var out []endpoint
	add := func(e endpoint) {
		for _, o := range out {
			if o.addr == e.addr {
				return
			}
		}
		out = append(out, e)
	}
	if t.host != "" && (t.cfg == nil || t.siteOf(t.host) == site || t.siteOf(t.host) == "") {
		port := t.port
		if port == 0 {
			port = defaultManagerPort
			if e, ok := t.managerOf(t.host); ok {
				port = e
			}
		}
		addr := t.host
		if t.cfg != nil {
			addr = t.cfg.Address(t.host)
		}
		add(endpoint{host: t.host, addr: joinHostPort(addr, port)})
	}
	if t.cfg == nil {
		return out
	}
	s := t.cfg.Service(site)
	if s == nil {
		return out
	}
	hosts := slices.Clone(s.Members)
	hosts = append(hosts, s.Witnesses...)
	if slices.Contains(hosts, t.self) {
		hosts = append([]string{t.self}, hosts...)
	}
	for _, h := range hosts {
		if port, ok := t.managerOf(h); ok {
			add(endpoint{host: h, addr: joinHostPort(t.cfg.Address(h), port)})
		}
	}
	return out
}

// managerOf returns the manager-rpc-port of a configured host's manager.
func (t *topology) managerOf(host string) (int, bool) {
	if t.plan == nil {
		return 0, false
	}
	h, ok := t.plan.Host(host)
	if !ok || h.Cluster == nil || !h.Cluster.Manager {
		return 0, false
	}
	return h.Cluster.Settings.ManagerRPCPort, true
}

// replicator returns the control address of host's cluster replicator;
// address is the datasource's address the manager reported, used without
// an install.
func (t *topology) replicator(host, address string) (string, bool) {
	if t.plan != nil {
		if h, ok := t.plan.Host(host); ok && h.Cluster != nil && h.Cluster.Replicator {
			return joinHostPort(h.Address, h.Cluster.Settings.RMIPort), true
		}
		return "", false
	}
	if address == "" {
		return "", false
	}
	return joinHostPort(address, defaultRMIPort), true
}

// crossSite returns host's cross-site replicator: its control address and
// the services it runs.
func (t *topology) crossSite(host string) (string, []string, bool) {
	if t.plan == nil {
		return "", nil, false
	}
	h, ok := t.plan.Host(host)
	if !ok || h.CrossSite == nil {
		return "", nil, false
	}
	var svcs []string
	for _, s := range h.CrossSite.Services {
		svcs = append(svcs, s.Name)
	}
	return joinHostPort(h.Address, h.CrossSite.Settings.RMIPort), svcs, true
}

// crossSiteHosts lists the hosts of site that run a cross-site replicator.
func (t *topology) crossSiteHosts(site string) []string {
	var out []string
	for _, h := range t.members(site) {
		if _, _, ok := t.crossSite(h); ok {
			out = append(out, h)
		}
	}
	return out
}

// hostName maps an address (or a host name) to the configured host name.
func (t *topology) hostName(addr string) string {
	if t.plan == nil {
		return addr
	}
	for _, h := range t.plan.Hosts {
		if h.Address == addr || h.Name == addr {
			return h.Name
		}
	}
	return addr
}

func joinHostPort(host string, port int) string {
	return net.JoinHostPort(host, strconv.Itoa(port))
}

// uriHost returns the host of a THL URI (thl://east1:2112/ → east1).
func uriHost(uri string) string {
	rest := uri
	if i := strings.Index(rest, "://"); i >= 0 {
		rest = rest[i+3:]
	}
	rest = strings.TrimSuffix(rest, "/")
	if h, _, err := net.SplitHostPort(rest); err == nil {
		return h
	}
	return rest
}
