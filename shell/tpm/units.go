package tpm

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/carbidedb/carbide/internal/config"
	"github.com/carbidedb/carbide/internal/daemon"
	"github.com/carbidedb/carbide/internal/install"
	"github.com/carbidedb/carbide/internal/systemd"
)

// unitTarget picks where this run writes the agents' systemd units
// (systemd.Host.Choose). --systemd-dir takes one host's units: every host
// has units of the same names.
func (r *runner) unitTarget(cfg *config.Config, o installOptions, jobs []installJob) (systemd.Target, error) {
	var hosts []string
	for _, j := range jobs {
		if !slices.Contains(hosts, j.host) {
			hosts = append(hosts, j.host)
		}
	}
	if o.systemdDir != "" && len(hosts) > 1 {
		return systemd.Target{}, fmt.Errorf("--systemd-dir takes the units of one host, and this run installs %d (%s) whose units have the same names; install one host at a time", len(hosts), strings.Join(hosts, ", "))
	}
	return r.env.Systemd.Choose(o.systemdDir, cfg.SandboxRoot != "", len(hosts)), nil
}

// writeUnits writes the systemd units of the installs ins into t, says
// where in one line per install, and removes the units of agents an
// install no longer runs. In the system's directory it disables and stops
// those first, has systemd read the units again and, when the ini's start
// (or start-and-report) is true, enables them: tpm install starts them too, except an agent that
// already runs without systemd (its restart moves it under the unit). A
// unit that cannot be written fails the run; a systemctl that fails is one
// sentence on the error output and the run goes on.
func (r *runner) writeUnits(ctx context.Context, t systemd.Target, ins []*config.Install, update bool) bool {
	if t.Skip {
		return true
	}
	for _, in := range ins {
		dir := t.Dir
		if dir == "" {
			dir = install.UnitDir(in.Dir)
		}
		var opts systemd.Options
		if in.Settings.UserNamed {
			opts.Group = r.env.Systemd.Group(in.Settings.User)
		}
		units := systemd.Units(in, opts)
		stale, err := systemd.Write(dir, in, units)
		if err != nil {
			r.errorf("cannot write the systemd units of the %s install of %s into %s: %v", in.Kind, in.Host, dir, err)
			return false
		}
		var names []string
		for _, u := range units {
			names = append(names, u.Name)
		}
		if len(names) > 0 {
			where := ""
			if t.Dir == "" {
				where = fmt.Sprintf(" (%s); to run the agents under systemd, copy them into %s as root and run systemctl daemon-reload", t.Why, systemd.SystemDir)
			}
			fmt.Fprintf(r.env.Out, "%s: wrote systemd units %s into %s%s\n", in.Host, strings.Join(names, ", "), dir, where)
		}
		for _, name := range stale {
			if t.System {
				r.systemctl(ctx, "disable", "--now", name)
			}
			if err := systemd.Remove(dir, name); err != nil {
				r.errorf("cannot remove the systemd unit %s from %s: %v", name, dir, err)
				return false
			}
			fmt.Fprintf(r.env.Out, "%s: removed systemd unit %s from %s: the %s install no longer runs its agent\n", in.Host, name, dir, in.Kind)
		}
		if t.System && r.systemctl(ctx, "daemon-reload") && starts(in.Settings) && len(units) > 0 {
			r.enable(ctx, in, units, update)
		}
	}
	return true
}

// enable enables the units of in; tpm install starts them as well. An
// agent that already runs without systemd is not started twice: the
// operator's PROGRAM restart moves it under its unit.
func (r *runner) enable(ctx context.Context, in *config.Install, units []systemd.Unit, update bool) {
	var now, later, outside []string
	for _, u := range units {
		spec := daemon.Spec{PIDFile: install.PIDFile(in.Dir, u.Agent), Mark: "--home=" + in.Dir}
		_, running := daemon.Running(spec)
		switch {
		case running && !r.active(ctx, u.Name):
			cmd := install.CommandName(in.Settings.ExecutablePrefix, u.Agent)
			outside = append(outside, fmt.Sprintf("its %s already runs without systemd, and %s restart moves it under the unit", u.Agent, cmd))
			later = append(later, u.Name)
		case update || running:
			later = append(later, u.Name)
		default:
			now = append(now, u.Name)
		}
	}
	if len(now) > 0 && r.systemctl(ctx, append([]string{"enable", "--now"}, now...)...) {
		fmt.Fprintf(r.env.Out, "%s: enabled and started %s\n", in.Host, strings.Join(now, ", "))
	}
	if len(later) > 0 && r.systemctl(ctx, append([]string{"enable"}, later...)...) {
		fmt.Fprintf(r.env.Out, "%s: enabled %s%s\n", in.Host, strings.Join(later, ", "), strings.Join(append([]string{""}, outside...), "; "))
	}
}

// active reports whether systemd runs the unit.
func (r *runner) active(ctx context.Context, unit string) bool {
	out, err := r.env.Systemd.Systemctl(ctx, "is-active", unit)
	return err == nil && strings.TrimSpace(out) == "active"
}

// systemctl runs systemctl; a failure is one sentence on the error output.
func (r *runner) systemctl(ctx context.Context, args ...string) bool {
	if err := r.runSystemctl(ctx, args...); err != nil {
		r.errorf("%v; the units are written, run it by hand", err)
		return false
	}
	return true
}

// runSystemctl runs systemctl; its error is a clause naming the command
// and the first line systemctl printed.
func (r *runner) runSystemctl(ctx context.Context, args ...string) error {
	if r.env.Systemd.Systemctl == nil {
		return fmt.Errorf("cannot run systemctl %s: this tpm has no systemctl", strings.Join(args, " "))
	}
	out, err := r.env.Systemd.Systemctl(ctx, args...)
	if err != nil {
		line, _, _ := strings.Cut(strings.TrimSpace(out), "\n")
		return fmt.Errorf("systemctl %s failed (%v: %s)", strings.Join(args, " "), err, line)
	}
	return nil
}
