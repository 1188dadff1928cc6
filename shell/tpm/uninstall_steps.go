package tpm

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/carbidedb/carbide/internal/config"
	"github.com/carbidedb/carbide/internal/daemon"
	"github.com/carbidedb/carbide/internal/install"
	"github.com/carbidedb/carbide/internal/systemd"
)

// stopOrder is the order tpm uninstall stops an install's agents in:
// the connector first, so that applications stop coming, the replicator
// last.
var stopOrder = []string{systemd.Connector, systemd.Manager, systemd.Replicator}

// remove stops the agents of each install of goes, disables and deletes
// its units, has systemd read its units again (once), then deletes the
// install directories. An install whose agent did not stop, or whose
// units could not be removed, is left as it is from there on, and the
// others go on. It reports whether every step succeeded.
func (r *runner) remove(ctx context.Context, cfg *config.Config, goes []*removal) bool {
	ok := true
	cleared := map[string]*removal{} // by directory: agents stopped, units removed
	reload := false
	for _, rm := range goes {
		if rm.exists && !r.stopAgents(ctx, rm) {
			ok = false
			continue
		}
		removed, done := r.removeUnits(ctx, rm)
		reload = reload || removed
		if !done {
			ok = false
			continue
		}
		cleared[rm.dir] = rm
	}
	if reload {
		if err := r.runSystemctl(ctx, "daemon-reload"); err != nil {
			r.errorf("%v; systemd still lists the removed units until it runs", err)
			ok = false
		} else {
			fmt.Fprintf(r.env.Out, "ran systemctl daemon-reload: systemd no longer knows the removed units\n")
		}
	}
	gone := map[string]bool{}
	for _, rm := range goes {
		if cleared[rm.dir] == rm && rm.exists && !r.removeDir(cfg, rm, cleared, gone) {
			ok = false
		}
	}
	return ok
}

// stopAgents stops the install's agents through its wrappers, which go
// through systemctl when the agent's unit is installed and through the
// pid file otherwise. It stops at the first agent that does not stop.
func (r *runner) stopAgents(ctx context.Context, rm *removal) bool {
	programs := install.Programs(rm.kind)
	for _, agent := range stopOrder {
		if !slices.Contains(programs, agent) {
			continue
		}
		spec := daemon.Spec{PIDFile: install.PIDFile(rm.dir, agent), Mark: "--home=" + rm.dir}
		wrapper := filepath.Join(install.BinDir(rm.dir), install.CommandName(rm.manifest.Prefix, agent))
		if !exists(wrapper) {
			if pid, running := daemon.Running(spec); running {
				r.errorf("%s: its %s runs (PID %d) and its wrapper %s is gone; leaving %s as it is: stop that process, then run tpm uninstall again", rm.host, agent, pid, wrapper, rm.what())
				return false
			}
			fmt.Fprintf(r.env.Out, "%s: %s: not running (no wrapper %s)\n", rm.host, agent, wrapper)
			continue
		}
		line, err := runWrapper(ctx, wrapper, "stop")
		if err != nil {
			r.errorf("%s: %s stop failed (%v: %s); leaving %s as it is: stop its %s, then run tpm uninstall again", rm.host, wrapper, err, line, rm.what(), agent)
			return false
		}
		if pid, running := daemon.Running(spec); running {
			r.errorf("%s: %s stop returned, but its %s still runs (PID %d); leaving %s as it is: stop that process, then run tpm uninstall again", rm.host, wrapper, agent, pid, rm.what())
			return false
		}
		fmt.Fprintf(r.env.Out, "%s: %s stop: %s\n", rm.host, wrapper, line)
	}
	return true
}

// removeUnits disables (in the system's directory, when systemd runs the
// machine) and deletes the install's units outside its directory. It
// returns whether it removed a unit from the system's directory and
// whether it removed them all.
func (r *runner) removeUnits(ctx context.Context, rm *removal) (reload, done bool) {
	for _, p := range rm.units {
		verb := "removed"
		if p.system && r.env.Systemd.Booted() {
			if err := r.runSystemctl(ctx, append([]string{"disable", "--now"}, p.names...)...); err != nil {
				r.errorf("%s: %v; leaving its units in %s and %s as they are: run tpm uninstall again once systemctl works", rm.host, err, p.dir, rm.what())
				return reload, false
			}
			verb = "disabled and removed"
		}
		for _, name := range p.names {
			if err := systemd.Remove(p.dir, name); err != nil {
				r.errorf("%s: cannot remove the systemd unit %s from %s (%v); leaving %s as it is: remove the unit, then run tpm uninstall again", rm.host, name, p.dir, err, rm.what())
				return reload, false
			}
		}
		reload = reload || (p.system && r.env.Systemd.Booted())
		fmt.Fprintf(r.env.Out, "%s: %s systemd units %s from %s\n", rm.host, verb, strings.Join(p.names, ", "), p.dir)
	}
	return reload, true
}

// removeDir deletes the install directory once every install inside it
// that this run removes is gone, and refuses while another install is
// left there (its agent did not stop).
func (r *runner) removeDir(cfg *config.Config, rm *removal, cleared map[string]*removal, gone map[string]bool) bool {
	if gone[rm.dir] {
		return true
	}
	for _, other := range installDirs(cfg) {
		if other == rm.dir || !within(other, rm.dir) || gone[other] || !exists(install.ManifestPath(other)) {
			continue
		}
		inner, ok := cleared[other]
		if !ok {
			r.errorf("%s: %s holds the install in %s, which is still there; leaving %s as it is", rm.host, rm.dir, other, rm.what())
			return false
		}
		if !r.removeDir(cfg, inner, cleared, gone) {
			return false
		}
	}
	with := ""
	if entries, err := os.ReadDir(install.UnitDir(rm.dir)); err == nil && len(entries) > 0 {
		with = " (its systemd units in share/systemd with it)"
	}
	if err := os.RemoveAll(rm.dir); err != nil {
		r.errorf("%s: cannot delete %s (%v); its agents are stopped and its units removed: delete it by hand", rm.host, rm.dir, err)
		return false
	}
	gone[rm.dir] = true
	fmt.Fprintf(r.env.Out, "%s: deleted the %s install directory %s%s\n", rm.host, kindLabel(rm.kind), rm.dir, with)
	if profile := sourcingProfile(rm); profile != "" {
		fmt.Fprintf(r.env.Out, "%s: %s still sources %s: remove that line by hand (tpm uninstall changes nothing outside the install directory)\n", rm.host, profile, install.EnvPath(rm.dir))
	}
	return true
}

// sourcingProfile returns the install's profile-script when tpm install
// added a line sourcing its share/env.sh to it, else "".
func sourcingProfile(rm *removal) string {
	profile := rm.settings.ProfileScript
	if profile == "" {
		return ""
	}
	file := profile
	if rest, ok := strings.CutPrefix(profile, "~/"); ok {
		home, err := os.UserHomeDir()
		if err != nil {
			return ""
		}
		file = filepath.Join(home, rest)
	}
	data, err := os.ReadFile(file)
	if err != nil || !bytes.Contains(data, []byte(install.EnvPath(rm.dir))) {
		return ""
	}
	return profile
}

// runWrapper runs an install's wrapper with verb (start, stop, status)
// and returns the last line it printed.
func runWrapper(ctx context.Context, wrapper, verb string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, wrapper, verb).CombinedOutput()
	return lastLine(string(out)), err
}

// lastLine is the last line of s that is not blank.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}
