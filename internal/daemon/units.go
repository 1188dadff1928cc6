package daemon

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/carbidedb/carbide/internal/install"
	"github.com/carbidedb/carbide/internal/systemd"
)

// unitAgent is an agent whose systemd unit tpm installed: start, stop and
// status go through systemctl. A process started without systemd (before
// the unit was installed) is still seen through its pid file: status
// reports it, stop stops it, start does not start a second one.
type unitAgent struct {
	host systemd.Host
	name string // the unit
}

// unit returns the agent's unit for the install at home, when systemd
// runs this machine and tpm installed the unit in the system's directory.
func (a Agent) unit(home string) (unitAgent, bool) {
	h := a.Systemd
	if h == nil {
		sys := systemd.System()
		h = &sys
	}
	if !h.Booted() {
		return unitAgent{}, false
	}
	m, err := install.ReadManifest(home)
	if err != nil {
		return unitAgent{}, false
	}
	name, ok := h.InstalledUnit(home, m.Kind, a.Program)
	return unitAgent{host: *h, name: name}, ok
}

// command runs start, stop, restart or status through the unit and
// returns the exit code, as Main does for a detached process.
func (u unitAgent) command(ctx context.Context, verb string, s Spec, timeout time.Duration, fail func(string, error) int) int {
	var err error
	switch verb {
	case "start":
		err = u.start(ctx, s)
	case "stop":
		err = u.stop(ctx, s, timeout)
	case "restart":
		if err = u.stop(ctx, s, timeout); err == nil {
			err = u.start(ctx, s)
		}
	case "status":
		return u.status(ctx, s)
	}
	if err != nil {
		return fail(verb, err)
	}
	return 0
}

// state is the unit's ActiveState as systemctl is-active prints it
// (active, inactive, failed, activating…), whatever its exit status.
func (u unitAgent) state(ctx context.Context) string {
	out, _ := u.host.Systemctl(ctx, "is-active", u.name)
	if st, _, _ := strings.Cut(strings.TrimSpace(out), "\n"); st != "" {
		return st
	}
	return "unknown"
}

// mainPID is the pid of the unit's process, 0 when none.
func (u unitAgent) mainPID(ctx context.Context) int {
	out, err := u.host.Systemctl(ctx, "show", "--property=MainPID", "--value", u.name)
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(out))
	return pid
}

// systemctl runs one systemctl command; its failure is one sentence with
// the first line systemctl printed.
func (u unitAgent) systemctl(ctx context.Context, verb string) error {
	out, err := u.host.Systemctl(ctx, verb, u.name)
	if err == nil {
		return nil
	}
	if line, _, _ := strings.Cut(strings.TrimSpace(out), "\n"); line != "" {
		err = fmt.Errorf("%v: %s", err, line)
	}
	return fmt.Errorf("systemctl %s %s failed (%v); see journalctl -u %s", verb, u.name, err, u.name)
}

func (u unitAgent) start(ctx context.Context, s Spec) error {
	out := orDiscard(s.Out)
	if pid, ok := Running(s); ok {
		fmt.Fprintf(out, "%s is already running (PID:%d).\n", s.Name, pid)
		return nil
	}
	fmt.Fprintf(out, "Starting %s (systemd unit %s)...\n", s.Name, u.name)
	if err := u.systemctl(ctx, "start"); err != nil {
		return err
	}
	fmt.Fprintf(out, "Waiting for %s.", s.Name)
	err := waitReady(ctx, s, out, func() error {
		if st := u.state(ctx); st == "failed" || st == "inactive" {
			return fmt.Errorf("%s exited at start (its unit %s is %s); see journalctl -u %s", s.Name, u.name, st, u.name)
		}
		return nil
	}, "journalctl -u "+u.name)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "\nrunning: PID:%d\n", u.mainPID(ctx))
	return nil
}

func (u unitAgent) stop(ctx context.Context, s Spec, timeout time.Duration) error {
	out := orDiscard(s.Out)
	switch u.state(ctx) {
	case "active", "activating", "reloading", "deactivating":
		fmt.Fprintf(out, "Stopping %s (systemd unit %s)...\n", s.Name, u.name)
		if err := u.systemctl(ctx, "stop"); err != nil {
			return err
		}
		if _, ok := Running(s); !ok {
			fmt.Fprintf(out, "Stopped %s.\n", s.Name)
			return nil
		}
	}
	return Stop(ctx, s, timeout)
}

func (u unitAgent) status(ctx context.Context, s Spec) int {
	out := orDiscard(s.Out)
	st := u.state(ctx)
	if st == "active" {
		fmt.Fprintf(out, "%s is running: PID:%d (systemd unit %s)\n", s.Name, u.mainPID(ctx), u.name)
		return 0
	}
	if pid, ok := Running(s); ok {
		fmt.Fprintf(out, "%s is running: PID:%d (not under its systemd unit %s)\n", s.Name, pid, u.name)
		return 0
	}
	fmt.Fprintf(out, "%s is not running (systemd unit %s is %s).\n", s.Name, u.name, st)
	return 1
}
