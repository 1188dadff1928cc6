package config

import (
	"fmt"
	"net"
	"path"
	"regexp"
	"strings"
)

// Topologies a service section may declare.
const (
	TopologyClustered    = "clustered"
	TopologyClusterSlave = "cluster-slave"
)

// Names of the sections that are not services.
const (
	SectionDefaults           = "defaults"
	SectionReplicatorDefaults = "defaults.replicator"
	SectionManagerDefaults    = "defaults.manager"
	SectionConnectorDefaults  = "defaults.connector"
	SectionHosts              = "hosts"
	SectionSandbox            = "sandbox"
)

// Config is a validated tungsten.ini.
type Config struct {
	// Files are the ini files it was read from, in order.
	Files []string
	// Sections are every section as written, merged across files, in order
	// of first appearance; tpm reverse prints them back.
	Sections []*Section
	// Services are the service sections in file order.
	Services []*Service
	// Hosts maps host names to addresses ([hosts]); hosts not in it are
	// resolved by DNS.
	Hosts map[string]string
	// SandboxRoot, when set ([sandbox] root=DIR), re-roots every install
	// directory of host H under DIR/H/ and makes listeners bind to the
	// host's own address instead of 0.0.0.0.
	SandboxRoot string
	// SandboxNetNS, when set ([sandbox] netns=PREFIX), puts every host of
	// the sandbox in a network namespace of its own, PREFIX-HOST, where its
	// database and agents run (sandbox up --netns).
	SandboxNetNS string
	// SandboxWAN is how the link between a --netns sandbox's sites is
	// shaped ([sandbox] wan-delay, wan-jitter, wan-loss, as written).
	SandboxWAN WAN

	sections map[string]*Section
}

// Service is one service section.
type Service struct {
	Name     string
	Topology string

	// clustered
	Members    []string
	Master     string
	Connectors []string
	Witnesses  []string

	// cluster-slave: replicate MasterService's writes into SlaveService.
	MasterService string
	SlaveService  string
}

// Section returns the named section, or nil.
func (c *Config) Section(name string) *Section { return c.sections[name] }

// Service returns the named service, or nil.
func (c *Config) Service(name string) *Service {
	for _, s := range c.Services {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// Clustered returns the clustered services (sites) in file order.
func (c *Config) Clustered() []*Service {
	var out []*Service
	for _, s := range c.Services {
		if s.Topology == TopologyClustered {
			out = append(out, s)
		}
	}
	return out
}

// Address returns where host can be reached: its [hosts] entry, else its name.
func (c *Config) Address(host string) string {
	if a, ok := c.Hosts[host]; ok {
		return a
	}
	return host
}

// allowed says which components' keys an options section accepts.
var allowed = map[string][]component{
	SectionDefaults:           {general, replicatorKey, managerKey, connectorKey},
	SectionReplicatorDefaults: {general, replicatorKey},
	SectionManagerDefaults:    {managerKey},
	SectionConnectorDefaults:  {connectorKey},
}

func build(files []string, sections []*Section) (*Config, error) {
	c := &Config{Files: files, Sections: sections, Hosts: map[string]string{}, sections: map[string]*Section{}}
	var probs Problems
	for _, s := range sections {
		if len(probs) > maxProblems {
			break
		}
		c.sections[s.Name] = s
		switch {
		case allowed[s.Name] != nil:
			checkOptions(&probs, s, allowed[s.Name])
		case s.Name == SectionHosts:
			c.parseHosts(&probs, s)
		case s.Name == SectionSandbox:
			c.parseSandbox(&probs, s)
		case strings.HasPrefix(s.Name, "defaults"):
			probs.addf("%s: unknown section [%s]; use [defaults], [defaults.replicator], [defaults.manager] or [defaults.connector]", fileOf(s), s.Name)
		default:
			if svc := parseService(&probs, s); svc != nil {
				c.Services = append(c.Services, svc)
			}
		}
	}
	if len(probs) == 0 {
		c.crossCheck(&probs)
	}
	if len(probs) == 0 {
		// Building the plan finds what only a per-host view shows: port
		// clashes and install directories shared by two installs.
		if _, err := c.plan(&probs); err != nil {
			return nil, err
		}
	}
	if len(probs) > 0 {
		return nil, probs
	}
	return c, nil
}

func fileOf(s *Section) string {
	if len(s.Entries) > 0 {
		return s.Entries[0].File
	}
	return "tungsten.ini"
}

// checkOptions validates every key and value of an options section (a
// defaults section, or the option keys of a clustered service).
func checkOptions(probs *Problems, s *Section, comps []component) {
	scratch := DefaultSettings()
	once := map[string]string{}
	for _, e := range s.Entries {
		if len(*probs) > maxProblems {
			return
		}
		d, ok := lookupKey(e.Key)
		if !ok {
			unknownKey(probs, s, e)
			continue
		}
		if d.comp == serviceKey {
			probs.addf("%s: [%s] %s belongs in a service section like [east], not in [%s]", e.File, s.Name, e.Key, s.Name)
			continue
		}
		if !hasComp(comps, d.comp) {
			probs.addf("%s: [%s] %s configures %s and does not belong in [%s]; move it to [defaults]", e.File, s.Name, e.Key, d.comp, s.Name)
			continue
		}
		if !d.repeat {
			if f, dup := once[d.name]; dup && f == e.File {
				probs.addf("%s: [%s] %s is set twice; keep one", e.File, s.Name, e.Key)
				continue
			}
			once[d.name] = e.File
		}
		if err := d.set(&scratch, e.Value); err != nil {
			probs.addf("%s: [%s] %s %v", e.File, s.Name, e.Key, err)
		}
	}
}

func unknownKey(probs *Problems, s *Section, e Entry) {
	if sug := suggest(e.Key); sug != "" {
		probs.addf("%s: [%s] has an unknown key %q; did you mean %s?", e.File, s.Name, e.Key, sug)
		return
	}
	probs.addf("%s: [%s] has an unknown key %q; remove it or check its spelling", e.File, s.Name, e.Key)
}

func hasComp(comps []component, c component) bool {
	for _, x := range comps {
		if x == c {
			return true
		}
	}
	return false
}

func (c *Config) parseHosts(probs *Problems, s *Section) {
	for _, e := range s.Entries {
		if !hostRE.MatchString(e.Key) {
			probs.addf("%s: [hosts] %q is not a valid host name", e.File, e.Key)
			continue
		}
		if net.ParseIP(e.Value) == nil && !hostRE.MatchString(e.Value) {
			probs.addf("%s: [hosts] %s=%q is not an IP address or host name", e.File, e.Key, e.Value)
			continue
		}
		c.Hosts[e.Key] = e.Value
	}
}

func (c *Config) parseSandbox(probs *Problems, s *Section) {
	for _, e := range s.Entries {
		switch e.Key {
		case "netns":
			if !netnsRE.MatchString(e.Value) {
				probs.addf("%s: [sandbox] netns must be a short name of letters, digits and dashes, not %q", e.File, e.Value)
				continue
			}
			c.SandboxNetNS = e.Value
		case "wan-delay":
			c.SandboxWAN.Delay = e.Value
		case "wan-jitter":
			c.SandboxWAN.Jitter = e.Value
		case "wan-loss":
			c.SandboxWAN.Loss = e.Value
		case "root":
			if !path.IsAbs(e.Value) {
				probs.addf("%s: [sandbox] root must be an absolute path, not %q", e.File, e.Value)
				continue
			}
			c.SandboxRoot = path.Clean(e.Value)
		default:
			probs.addf("%s: [sandbox] has an unknown key %q; it takes root, netns, wan-delay, wan-jitter and wan-loss", e.File, e.Key)
		}
	}
}

// netnsRE is a namespace prefix: short, so that PREFIX-HOST stays readable.
var netnsRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,15}$`)

// WAN is the shape of a --netns sandbox's link between sites, as the
// sandbox's flags wrote it (internal/wanlink parses it).
type WAN struct {
	Delay, Jitter, Loss string
}

// NetNS is the network namespace host runs in ("" outside a --netns
// sandbox).
func (c *Config) NetNS(host string) string {
	if c.SandboxNetNS == "" {
		return ""
	}
	return c.SandboxNetNS + "-" + host
}

func parseService(probs *Problems, s *Section) *Service {
	file := fileOf(s)
	if !serviceRE.MatchString(s.Name) {
		probs.addf("%s: [%s] is not a valid service name; use letters, digits and underscores, starting with a letter", file, s.Name)
		return nil
	}
	svc := &Service{Name: s.Name, Topology: s.Value("topology")}
	n := len(*probs)
	for _, k := range []string{"topology", "members", "master", "connectors", "witnesses", "master-dataservice", "slave-dataservice"} {
		if v := s.Values(k); len(v) > 1 {
			probs.addf("%s: [%s] %s is set %d times; keep one", file, s.Name, k, len(v))
		}
	}
	switch svc.Topology {
	case TopologyClustered:
		svc.Members = hostList(probs, s, "members")
		svc.Master = s.Value("master")
		svc.Connectors = hostList(probs, s, "connectors")
		svc.Witnesses = hostList(probs, s, "witnesses")
		if len(svc.Members) == 0 {
			probs.addf("%s: [%s] has no members; list its hosts, like members=%s1,%s2,%s3", file, s.Name, s.Name, s.Name, s.Name)
		}
		switch {
		case svc.Master == "":
			probs.addf("%s: [%s] has no master; set master= to one of its members", file, s.Name)
		case !contains(svc.Members, svc.Master):
			probs.addf("%s: [%s] master %s is not a member of %s (members: %s); set master= to one of them", file, s.Name, svc.Master, s.Name, strings.Join(svc.Members, ", "))
		}
		for _, w := range svc.Witnesses {
			if contains(svc.Members, w) {
				probs.addf("%s: [%s] %s is both a member and a witness; a witness runs a manager only, remove it from one list", file, s.Name, w)
			}
		}
		opts := &Section{Name: s.Name}
		for _, e := range s.Entries {
			if d, ok := lookupKey(e.Key); ok && d.comp == serviceKey {
				if e.Key == "master-dataservice" || e.Key == "slave-dataservice" {
					probs.addf("%s: [%s] %s belongs to a topology=cluster-slave service, not a clustered one", file, s.Name, e.Key)
				}
				continue
			}
			opts.Entries = append(opts.Entries, e)
		}
		checkOptions(probs, opts, []component{general, replicatorKey, managerKey, connectorKey})
	case TopologyClusterSlave:
		svc.MasterService = s.Value("master-dataservice")
		svc.SlaveService = s.Value("slave-dataservice")
		if svc.MasterService == "" {
			probs.addf("%s: [%s] has no master-dataservice; name the site whose writes it carries, like master-dataservice=east", file, s.Name)
		}
		if svc.SlaveService == "" {
			probs.addf("%s: [%s] has no slave-dataservice; name the site it writes into, like slave-dataservice=west", file, s.Name)
		}
		opts := &Section{Name: s.Name}
		for _, e := range s.Entries {
			switch e.Key {
			case "topology", "master-dataservice", "slave-dataservice":
			default:
				if d, ok := lookupKey(e.Key); !ok {
					unknownKey(probs, s, e)
				} else if d.link {
					opts.Entries = append(opts.Entries, e)
				} else {
					probs.addf("%s: [%s] %s is not allowed in a cluster-slave service; set it in [defaults.replicator] or in the site's section", e.File, s.Name, e.Key)
				}
			}
		}
		checkOptions(probs, opts, []component{replicatorKey})
	case "":
		probs.addf("%s: [%s] has no topology; add topology=clustered or topology=cluster-slave", file, s.Name)
	default:
		probs.addf("%s: [%s] topology %q is not supported; use clustered or cluster-slave", file, s.Name, svc.Topology)
	}
	if len(*probs) > n {
		return nil
	}
	return svc
}

func hostList(probs *Problems, s *Section, key string) []string {
	v := s.Value(key)
	hosts := splitList(v)
	seen := map[string]bool{}
	for _, h := range hosts {
		if !hostRE.MatchString(h) {
			probs.addf("%s: [%s] %s names %q, which is not a valid host name", fileOf(s), s.Name, key, h)
			continue
		}
		if seen[h] {
			probs.addf("%s: [%s] %s lists %s twice; list each host once", fileOf(s), s.Name, key, h)
		}
		seen[h] = true
	}
	return hosts
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// crossCheck finds what spans sections: hosts in two sites, links naming
// unknown or non-clustered services, duplicate links.
func (c *Config) crossCheck(probs *Problems) {
	site := map[string]string{} // host -> service it belongs to
	role := map[string]string{} // host -> "member" or "witness"
	for _, s := range c.Clustered() {
		for _, list := range []struct {
			hosts []string
			role  string
		}{{s.Members, "member"}, {s.Witnesses, "witness"}} {
			for _, h := range list.hosts {
				if other, ok := site[h]; ok {
					probs.addf("host %s is a %s of both [%s] and [%s]; a host belongs to one site, remove it from one of them", h, role[h], other, s.Name)
					continue
				}
				site[h], role[h] = s.Name, list.role
			}
		}
	}
	for _, s := range c.Clustered() {
		for _, h := range s.Connectors {
			if other, ok := site[h]; ok && other != s.Name {
				probs.addf("[%s] connectors names %s, a host of [%s]; a connector serves its own site's applications", s.Name, h, other)
			}
		}
	}
	if len(c.Clustered()) == 0 {
		probs.addf("%s defines no clustered service; add a section like [east] with topology=clustered, members= and master=", strings.Join(c.Files, ","))
	}
	c.checkConflicts(probs)
	links := map[[2]string]string{}
	for _, s := range c.Services {
		if s.Topology != TopologyClusterSlave {
			continue
		}
		ok := true
		for _, ref := range []struct{ key, name string }{{"master-dataservice", s.MasterService}, {"slave-dataservice", s.SlaveService}} {
			target := c.Service(ref.name)
			switch {
			case target == nil:
				probs.addf("[%s] %s=%s names an unknown service; define [%s] with topology=clustered or fix the name (sites: %s)", s.Name, ref.key, ref.name, ref.name, strings.Join(c.siteNames(), ", "))
				ok = false
			case target.Topology != TopologyClustered:
				probs.addf("[%s] %s=%s names a %s service; it must name a topology=clustered site", s.Name, ref.key, ref.name, target.Topology)
				ok = false
			}
		}
		if !ok {
			continue
		}
		if s.MasterService == s.SlaveService {
			probs.addf("[%s] replicates %s into itself; master-dataservice and slave-dataservice must name two different sites", s.Name, s.MasterService)
			continue
		}
		pair := [2]string{s.MasterService, s.SlaveService}
		if other, dup := links[pair]; dup {
			probs.addf("[%s] and [%s] both replicate %s into %s; remove one", other, s.Name, s.MasterService, s.SlaveService)
			continue
		}
		links[pair] = s.Name
	}
}

func (c *Config) siteNames() []string {
	var out []string
	for _, s := range c.Clustered() {
		out = append(out, s.Name)
	}
	return out
}

// String is for debugging; tpm reverse prints the configuration.
func (s *Service) String() string { return fmt.Sprintf("[%s] topology=%s", s.Name, s.Topology) }
