package config

import (
	"fmt"
	"path"
	"sort"
	"strings"
)

// InstallKind tells the two installs a host may have apart.
type InstallKind string

// The installs: the cluster programs under install-directory, and the
// cross-site replicator under [defaults.replicator]'s home-directory.
const (
	ClusterInstall   InstallKind = "cluster"
	CrossSiteInstall InstallKind = "replicator"
)

// Replicator roles.
const (
	RoleMaster = "master"
	RoleSlave  = "slave"
)

// Plan is what every host of a Config runs.
type Plan struct {
	Hosts []*HostPlan
}

// Host returns the named host's plan.
func (p *Plan) Host(name string) (*HostPlan, bool) {
	for _, h := range p.Hosts {
		if h.Name == name {
			return h, true
		}
	}
	return nil, false
}

// HostNames returns every host name in plan order.
func (p *Plan) HostNames() []string {
	out := make([]string, len(p.Hosts))
	for i, h := range p.Hosts {
		out[i] = h.Name
	}
	return out
}

// HostPlan is one host's processes.
type HostPlan struct {
	Name    string
	Address string // where others reach it
	Site    string // the clustered service it belongs to
	Witness bool   // runs a manager only
	Sandbox bool   // listeners bind to Address, not 0.0.0.0

	Cluster   *Install // manager, cluster replicator, connector; nil for none
	CrossSite *Install // cross-site replicator; nil when no link writes into Site
}

// Installs returns the host's installs, cluster first.
func (h *HostPlan) Installs() []*Install {
	var out []*Install
	if h.Cluster != nil {
		out = append(out, h.Cluster)
	}
	if h.CrossSite != nil {
		out = append(out, h.CrossSite)
	}
	return out
}

// Install returns the host's install of the given kind, or nil.
func (h *HostPlan) Install(kind InstallKind) *Install {
	switch kind {
	case ClusterInstall:
		return h.Cluster
	case CrossSiteInstall:
		return h.CrossSite
	}
	return nil
}

// Bind returns the address a listener configured on addr should bind to:
// in a sandbox, 0.0.0.0 (or nothing) means the host's own address.
func (h *HostPlan) Bind(addr string) string {
	if h.Sandbox && (addr == "" || addr == "0.0.0.0" || addr == "::") {
		return h.Address
	}
	if addr == "" {
		return h.Address
	}
	return addr
}

// Install is one install directory on one host and the processes it runs.
type Install struct {
	Kind     InstallKind
	Host     string
	Dir      string
	Settings Settings

	Manager    bool
	Replicator bool
	Connector  bool

	// Services are the replicator's services, in ini order.
	Services []ServicePlan
}

// ServicePlan is one replication service of a replicator.
type ServicePlan struct {
	Name     string // the service name, which is the origin site's name
	Role     string // RoleMaster or RoleSlave
	Topology string // TopologyClustered or TopologyClusterSlave
	Link     string // the cluster-slave section, for cross-site services
	// Sources are the THL servers this service may read from, in order of
	// preference; empty for a master.
	Sources []Endpoint
	// ConflictPolicy and ConflictSiteOrder resolve the conflicts its
	// applier meets (conflicts.go): never empty.
	ConflictPolicy    string
	ConflictSiteOrder []string
}

// TrackingSchema is the schema holding the service's applied position.
func (s ServicePlan) TrackingSchema() string { return "tungsten_" + s.Name }

// Endpoint is a host and port.
type Endpoint struct {
	Host    string
	Address string
	Port    int
}

func (e Endpoint) String() string { return fmt.Sprintf("%s:%d", e.Address, e.Port) }

// Plan expands the configuration into per-host plans.
func (c *Config) Plan() *Plan {
	var probs Problems
	p, _ := c.plan(&probs)
	return p
}

// settingsFor overlays the sections named, in order, on the defaults.
// Load already validated every value, so setter errors cannot happen here.
func (c *Config) settingsFor(names ...string) Settings {
	s := DefaultSettings()
	for _, n := range names {
		sec := c.sections[n]
		if sec == nil {
			continue
		}
		for _, e := range sec.Entries {
			if d, ok := lookupKey(e.Key); ok && d.set != nil {
				_ = d.set(&s, e.Value)
			}
		}
	}
	return s
}

// ClusterSettings returns the settings of site's cluster install.
func (c *Config) ClusterSettings(site string) Settings {
	return c.settingsFor(SectionDefaults, SectionManagerDefaults, SectionConnectorDefaults, site)
}

// CrossSiteSettings returns the settings of the cross-site replicator on
// the hosts of site.
func (c *Config) CrossSiteSettings(site string) Settings {
	return c.settingsFor(SectionDefaults, site, SectionReplicatorDefaults)
}

func (c *Config) reroot(host, dir string) string {
	if c.SandboxRoot == "" {
		return dir
	}
	return path.Join(c.SandboxRoot, host, path.Base(dir))
}

// plan builds the plan and adds to probs what only a per-host view shows.
func (c *Config) plan(probs *Problems) (*Plan, error) {
	p := &Plan{}
	add := func(h *HostPlan) *HostPlan {
		if have, ok := p.Host(h.Name); ok {
			return have
		}
		p.Hosts = append(p.Hosts, h)
		return h
	}
	for _, site := range c.Clustered() {
		cs := c.ClusterSettings(site.Name)
		newHost := func(name string) *HostPlan {
			return &HostPlan{Name: name, Address: c.Address(name), Site: site.Name, Sandbox: c.SandboxRoot != ""}
		}
		clusterInstall := func(name string) *Install {
			return &Install{Kind: ClusterInstall, Host: name, Dir: c.reroot(name, cs.InstallDirectory), Settings: cs.clone()}
		}
		for _, m := range site.Members {
			h := add(newHost(m))
			h.Cluster = clusterInstall(m)
			h.Cluster.Manager, h.Cluster.Replicator = true, true
			h.Cluster.Connector = contains(site.Connectors, m)
			svc := ServicePlan{Name: site.Name, Role: RoleSlave, Topology: TopologyClustered}
			svc.ConflictPolicy, svc.ConflictSiteOrder = c.conflictSettings(cs)
			if m == site.Master {
				svc.Role = RoleMaster
			} else {
				svc.Sources = c.thlSources(site, cs.THLPort, m, true)
			}
			h.Cluster.Services = []ServicePlan{svc}
		}
		for _, w := range site.Witnesses {
			h := add(newHost(w))
			h.Witness = true
			h.Cluster = clusterInstall(w)
			h.Cluster.Manager = true
		}
		for _, name := range site.Connectors {
			h := add(newHost(name))
			if h.Cluster == nil {
				h.Cluster = clusterInstall(name)
			}
			h.Cluster.Connector = true
		}
	}
	// Cross-site replicators: on every member of each link's slave site, a
	// service named after the origin site, reading the origin's THL, and
	// last the same service's THL on the other members of its own site:
	// cut off from the origin, a host gets from a neighbour what that one
	// got before the cut (a transaction of its own site that depends on
	// it waits for it: replicator/apply/after.go).
	for _, link := range c.Services {
		if link.Topology != TopologyClusterSlave {
			continue
		}
		origin, target := c.Service(link.MasterService), c.Service(link.SlaveService)
		originTHL := c.ClusterSettings(origin.Name).THLPort
		xs := c.CrossSiteSettings(target.Name)
		for _, m := range target.Members {
			h, _ := p.Host(m)
			if h.CrossSite == nil {
				h.CrossSite = &Install{Kind: CrossSiteInstall, Host: m, Dir: c.reroot(m, xs.InstallDirectory), Settings: xs.clone(), Replicator: true}
			}
			sources := c.thlSources(origin, originTHL, "", false)
			for _, peer := range target.Members {
				if peer != m {
					sources = append(sources, Endpoint{Host: peer, Address: c.Address(peer), Port: xs.THLPort})
				}
			}
			svc := ServicePlan{
				Name: origin.Name, Role: RoleSlave, Topology: TopologyClusterSlave, Link: link.Name,
				Sources: sources,
			}
			// The link's own section may set its conflict keys.
			svc.ConflictPolicy, svc.ConflictSiteOrder = c.conflictSettings(c.settingsFor(SectionDefaults, target.Name, SectionReplicatorDefaults, link.Name))
			h.CrossSite.Services = append(h.CrossSite.Services, svc)
		}
	}
	c.checkHosts(probs, p)
	checkConvergeOrder(probs, p)
	if len(*probs) > 0 {
		return nil, *probs
	}
	return p, nil
}

// thlSources lists site's members other than self as THL servers. A
// site's own replicas read from the master first (it has everything
// first); cross-site replicators read the replicas first, to spare the
// primary, and the master last.
func (c *Config) thlSources(site *Service, port int, self string, masterFirst bool) []Endpoint {
	var replicas []Endpoint
	for _, m := range site.Members {
		if m != self && m != site.Master {
			replicas = append(replicas, Endpoint{Host: m, Address: c.Address(m), Port: port})
		}
	}
	if site.Master == self {
		return replicas
	}
	master := Endpoint{Host: site.Master, Address: c.Address(site.Master), Port: port}
	if masterFirst {
		return append([]Endpoint{master}, replicas...)
	}
	return append(replicas, master)
}

// listener is one port an install listens on.
type listener struct {
	port  int
	what  string // "thl-port of the cluster replicator"
	key   string
	where string // the section to change it in
}

func (in *Install) listeners(site string) []listener {
	s := in.Settings
	var out []listener
	add := func(port int, key, who string) {
		where := "[defaults] or [" + site + "]"
		if in.Kind == CrossSiteInstall {
			where = "[" + SectionReplicatorDefaults + "]"
		}
		out = append(out, listener{port: port, key: key, what: key + " of " + who, where: where})
	}
	who := map[InstallKind]string{ClusterInstall: "the cluster replicator", CrossSiteInstall: "the cross-site replicator"}[in.Kind]
	if in.Kind == ClusterInstall && in.Replicator {
		add(s.ReplicationPort, "replication-port", "the database")
	}
	if in.Replicator {
		add(s.THLPort, "thl-port", who)
		add(s.RMIPort, "rmi-port", who)
		if s.ReplicatorREST {
			add(s.ReplicatorRESTPort, "replicator-rest-api-port", who)
		}
		if s.PrometheusEnabled {
			add(s.PrometheusPort, "property="+PropPrometheusPort, who)
		}
	}
	if in.Manager {
		add(s.ManagerRPCPort, "manager-rpc-port", "the manager")
		add(s.GossipPort, "manager-gossip-port", "the manager")
		add(s.RaftPort, "manager-raft-port", "the manager")
		add(s.ManagerRESTPort, "manager-rest-api-port", "the manager")
		if s.ManagerPrometheusEnabled {
			add(s.ManagerPrometheusPort, "property="+PropManagerPrometheusPort, "the manager")
		}
	}
	if in.Connector {
		add(s.ApplicationPort, "application-port", "the connector")
		if s.ReadOnlyPort != 0 {
			add(s.ReadOnlyPort, "connector-readonly-listen-port", "the connector")
		}
		add(s.ConnectorRESTPort, "connector-rest-api-port", "the connector")
		if s.ConnectorPrometheusEnabled {
			add(s.ConnectorPrometheusPort, "property="+PropConnectorPrometheusPort, "the connector")
		}
	}
	return out
}

// checkHosts finds two listeners on one port of one host, and two installs
// in one directory. Problems common to many hosts are reported once.
func (c *Config) checkHosts(probs *Problems, p *Plan) {
	type problem struct{ head, tail string }
	hostsOf := map[problem][]string{}
	var order []problem
	note := func(host, head, tail string) {
		k := problem{head, tail}
		if _, ok := hostsOf[k]; !ok {
			order = append(order, k)
		}
		hostsOf[k] = append(hostsOf[k], host)
	}
	for _, h := range p.Hosts {
		used := map[int]listener{}
		for _, in := range h.Installs() {
			for _, l := range in.listeners(h.Site) {
				if first, dup := used[l.port]; dup {
					note(h.Name, fmt.Sprintf("port %d is used twice", l.port),
						fmt.Sprintf("by %s and by %s; set a different %s in %s", first.what, l.what, l.key, l.where))
					continue
				}
				used[l.port] = l
			}
		}
		if h.Cluster != nil && h.CrossSite != nil && h.Cluster.Dir == h.CrossSite.Dir {
			note(h.Name, "the cross-site replicator would install into the cluster's install directory",
				fmt.Sprintf("%s; set home-directory in [%s] to another directory, like /opt/replicator", h.Cluster.Dir, SectionReplicatorDefaults))
		}
	}
	for _, k := range order {
		hosts := hostsOf[k]
		sort.Strings(hosts)
		on := "host " + hosts[0]
		if len(hosts) > 1 {
			on = "hosts " + strings.Join(hosts, ", ")
		}
		probs.addf("%s on %s: %s", k.head, on, k.tail)
	}
}
