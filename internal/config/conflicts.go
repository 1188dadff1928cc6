package config

import (
	"fmt"
	"slices"
	"strings"
)

// Conflict keys: how a service's applier resolves a row change that does
// not find the row its source changed (docs/replicator.md, "Conflicts").
// Besides the sections every replicator key may be in, they may be set in
// a cluster-slave section, for the one cross-site service it makes.
const (
	KeyConflictPolicy    = "repl-conflict-policy"
	KeyConflictSiteOrder = "repl-conflict-site-order"
)

// Conflict policies (replicator/apply's, which this package may not
// import).
const (
	ConflictStop     = "stop"
	ConflictLog      = "log"
	ConflictSkip     = "skip"
	ConflictConverge = "converge"
)

var conflictKeys = []keyDef{
	{name: KeyConflictPolicy, comp: replicatorKey, link: true, set: func(s *Settings, v string) error {
		switch v {
		case ConflictStop, ConflictLog, ConflictSkip, ConflictConverge:
			s.ConflictPolicy = v
			return nil
		}
		return fmt.Errorf("must be stop, log, skip or converge, not %q", v)
	}},
	{name: KeyConflictSiteOrder, comp: replicatorKey, link: true, set: func(s *Settings, v string) error {
		sites := splitList(v)
		seen := map[string]bool{}
		for _, site := range sites {
			if !serviceRE.MatchString(site) || seen[site] {
				sites = nil
				break
			}
			seen[site] = true
		}
		if len(sites) < 2 {
			return fmt.Errorf("must list the sites once each, the one whose writes win first, like east,west, not %q", v)
		}
		s.ConflictSiteOrder = sites
		return nil
	}},
}

// multiSite reports whether sites replicate into each other: any
// cluster-slave service.
func (c *Config) multiSite() bool {
	for _, s := range c.Services {
		if s.Topology == TopologyClusterSlave {
			return true
		}
	}
	return false
}

// conflictSettings resolves a service's policy and site order from the
// settings that apply to it: unset, the policy is converge in a multi-site
// topology (the cluster stream of a replica meets the same conflicts as a
// cross-site service, in another order) and stop in a single site; the
// order, the sites in ini order.
func (c *Config) conflictSettings(s Settings) (string, []string) {
	policy := s.ConflictPolicy
	if policy == "" {
		policy = ConflictStop
		if c.multiSite() {
			policy = ConflictConverge
		}
	}
	order := slices.Clone(s.ConflictSiteOrder)
	if len(order) == 0 {
		order = c.siteNames()
	}
	return policy, order
}

// checkConvergeOrder finds services that converge by different site
// orders: each host would then keep another site's row, and the sites
// would never hold the same data.
func checkConvergeOrder(probs *Problems, p *Plan) {
	first, firstWhere := "", ""
	for _, h := range p.Hosts {
		for _, in := range h.Installs() {
			for _, s := range in.Services {
				if s.ConflictPolicy != ConflictConverge {
					continue
				}
				order, where := strings.Join(s.ConflictSiteOrder, ","), fmt.Sprintf("service %s on %s", s.Name, h.Name)
				if first == "" {
					first, firstWhere = order, where
					continue
				}
				if order != first {
					probs.addf("%s converges by %s=%s and %s by %s: every converging service needs the same order, or the sites keep each other's rows; set it once, in [defaults]",
						firstWhere, KeyConflictSiteOrder, first, where, order)
					return
				}
			}
		}
	}
}

// checkConflicts finds conflict keys that the topology makes wrong: a site
// order naming other than every site once, converge without sites to
// converge.
func (c *Config) checkConflicts(probs *Problems) {
	sites := c.siteNames()
	for _, sec := range c.Sections {
		for _, e := range sec.Entries {
			switch e.Key {
			case KeyConflictSiteOrder:
				order := splitList(e.Value)
				var unknown []string
				for _, s := range order {
					if !slices.Contains(sites, s) {
						unknown = append(unknown, s)
					}
				}
				switch {
				case len(unknown) > 0:
					probs.addf("%s: [%s] %s names %s, which is not a site; list the sites (%s) in the order their writes win", e.File, sec.Name, e.Key, strings.Join(unknown, ", "), strings.Join(sites, ", "))
				case len(order) != len(sites):
					probs.addf("%s: [%s] %s must list every site once (%s), the one whose writes win first", e.File, sec.Name, e.Key, strings.Join(sites, ", "))
				}
			case KeyConflictPolicy:
				if e.Value == ConflictConverge && !c.multiSite() {
					probs.addf("%s: [%s] %s=converge needs sites that replicate into each other (cluster-slave services), and this configuration has none; use stop, log or skip", e.File, sec.Name, e.Key)
				}
			}
		}
	}
}
