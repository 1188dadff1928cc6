package sandbox

import (
	"fmt"
	"strings"

	"github.com/carbidedb/carbide/internal/config"
	"github.com/carbidedb/carbide/internal/mysqld"
)

// extend takes cfg.INI as the sandbox's new topology when it only adds to
// the current one, and rewrites DIR/tungsten.ini from it (lock held).
func (s *Sandbox) extend() error {
	cur, err := config.Load(s.iniPath())
	if err != nil {
		return err
	}
	// The sandbox's octet: from any host's address (127.NET.S.H).
	for _, a := range cur.Hosts {
		var n, x, y int
		if _, err := fmt.Sscanf(a, "127.%d.%d.%d", &n, &x, &y); err == nil {
			s.cfg.Net = n
			break
		}
	}
	// A --netns sandbox stays one, on its net, with its WAN link's shape.
	if cur.SandboxNetNS != "" {
		if _, err := fmt.Sscanf(cur.SandboxNetNS, "carbide%d", &s.cfg.Net); err != nil {
			return fmt.Errorf("%s: [sandbox] netns=%s is not one the sandbox writes (carbideN)", s.iniPath(), cur.SandboxNetNS)
		}
		s.cfg.NetNS, s.cfg.WAN = true, cur.SandboxWAN
	}
	src, err := s.sourceINI()
	if err != nil {
		return err
	}
	addrs, err := Addresses(src, s.cfg.Net, s.cfg.NetNS)
	if err != nil {
		return err
	}
	newPlan := src.Plan()
	s.added = map[string]bool{}
	for _, h := range newPlan.Hosts {
		s.added[h.Name] = true
	}
	var moved []string
	for _, h := range cur.Plan().Hosts {
		delete(s.added, h.Name)
		nh, ok := newPlan.Host(h.Name)
		switch {
		case !ok:
			moved = append(moved, h.Name+" is gone")
		case nh.Site != h.Site:
			moved = append(moved, fmt.Sprintf("%s moves from %s to %s", h.Name, h.Site, nh.Site))
		case addrs[h.Name] != cur.Hosts[h.Name]:
			moved = append(moved, fmt.Sprintf("%s would be %s, not %s", h.Name, addrs[h.Name], cur.Hosts[h.Name]))
		}
	}
	if len(moved) > 0 {
		return fmt.Errorf("sandbox: %s does not only add to the sandbox's topology (%s); sites and hosts can be added, not moved or removed: keep the existing sections and their members in order, or sandbox destroy first",
			s.cfg.INI, strings.Join(moved, "; "))
	}
	if len(s.added) == 0 {
		if s.cfg.Restore != "" {
			return fmt.Errorf("sandbox: --restore seeds added hosts, and %s adds none", s.cfg.INI)
		}
		s.say("using %s of the existing sandbox: %s adds no site or host (sandbox destroy --dir %s starts over)", s.iniPath(), s.cfg.INI, s.cfg.Dir)
		return nil
	}
	for _, h := range newPlan.Hosts {
		if !s.added[h.Name] || h.Cluster == nil || !h.Cluster.Replicator || s.cfg.NetNS {
			continue // an added host's namespace is new: nothing listens there
		}
		if err := portFree(mysqld.Config{Address: addrs[h.Name], Port: h.Cluster.Settings.ReplicationPort}); err != nil {
			return fmt.Errorf("%s: %w", h.Name, err)
		}
	}
	if err := s.writeINI(); err != nil {
		return err
	}
	var names []string
	for _, h := range newPlan.Hosts {
		if s.added[h.Name] {
			names = append(names, h.Name)
		}
	}
	s.say("extended the sandbox with %s (every host's tungsten.ini now has the new topology)", strings.Join(names, ", "))
	return nil
}
