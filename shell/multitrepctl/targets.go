package multitrepctl

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/carbidedb/carbide/internal/config"
	"github.com/carbidedb/carbide/internal/install"
)

// target is one replicator: a host's cluster or cross-site install.
type target struct {
	host    *config.HostPlan
	hostPos int // the host's place in the plan
	in      *config.Install
	addr    string // control API, address:rmi-port
}

// what names the replicator in messages.
func (t target) what() string {
	if t.in.Kind == config.CrossSiteInstall {
		return "cross-site replicator of " + t.host.Name
	}
	return "replicator of " + t.host.Name
}

// startCommand is how an operator starts the replicator (mm_replicator start).
func (t target) startCommand() string {
	return install.CommandName(t.in.Settings.ExecutablePrefix, "replicator") + " start"
}

// wants says whether the selection keeps service svc.
func (m *multi) wants(svc string) bool {
	return len(m.cfg.Services) == 0 || slices.Contains(m.cfg.Services, svc)
}

// loadConfig reads the configuration: --ini, else the install CARBIDE_HOME
// binds, else the ini files CARBIDE_INI names (share/env.sh sets it).
func (m *multi) loadConfig() (*config.Config, error) {
	if m.cfg.INI != "" {
		return config.Load(m.cfg.INI)
	}
	if home := m.env.Getenv(install.EnvHome); home != "" {
		b, err := install.Open(home)
		if err != nil {
			return nil, err
		}
		return b.Config, nil
	}
	if ini := m.env.Getenv(install.EnvINI); ini != "" {
		return config.Load(ini)
	}
	return nil, errors.New("no configuration to read the hosts from: run it from an install's bin/, source its share/env.sh, or give --ini FILE")
}

// targets lists the selected hosts' replicators in plan order, cluster
// install first, and the sites in ini order. It checks --hosts and
// --services against the configuration.
func (m *multi) targets(cfg *config.Config) ([]target, []string, error) {
	plan := cfg.Plan()
	var sites []string
	for _, s := range cfg.Clustered() {
		sites = append(sites, s.Name)
	}
	for _, h := range m.cfg.Hosts {
		if _, ok := plan.Host(h); !ok {
			return nil, nil, usagef("host %s is not in the configuration (hosts: %s)", h, strings.Join(plan.HostNames(), ", "))
		}
	}
	for _, s := range m.cfg.Services {
		if !slices.Contains(sites, s) {
			return nil, nil, usagef("service %s is not in the configuration (services: %s)", s, strings.Join(sites, ", "))
		}
	}
	var out []target
	for i, h := range plan.Hosts {
		if len(m.cfg.Hosts) > 0 && !slices.Contains(m.cfg.Hosts, h.Name) {
			continue
		}
		for _, in := range h.Installs() {
			if !in.Replicator {
				continue
			}
			addr := net.JoinHostPort(cfg.Address(h.Name), strconv.Itoa(in.Settings.RMIPort))
			out = append(out, target{host: h, hostPos: i, in: in, addr: addr})
		}
	}
	if len(out) == 0 {
		return nil, nil, fmt.Errorf("the selected hosts run no replicator (hosts: %s)", strings.Join(plan.HostNames(), ", "))
	}
	return out, sites, nil
}
