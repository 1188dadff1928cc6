package daemon

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/carbidedb/carbide/internal/config"
	"github.com/carbidedb/carbide/internal/install"
	"github.com/carbidedb/carbide/internal/systemd"
)

// fakeSystemd is a machine where systemd runs one unit: systemctl
// commands change its state and are recorded; none is run for real.
type fakeSystemd struct {
	state   string // is-active's answer
	failing string // a verb that fails
	calls   []string
}

func (f *fakeSystemd) systemctl(_ context.Context, args ...string) (string, error) {
	f.calls = append(f.calls, strings.Join(args, " "))
	if args[0] == f.failing {
		return "Failed to " + args[0] + " " + args[len(args)-1] + ": Access denied\n", errors.New("exit status 1")
	}
	switch args[0] {
	case "start":
		f.state = "active"
	case "stop":
		f.state = "inactive"
	case "is-active":
		if f.state != "active" {
			return f.state + "\n", errors.New("exit status 3")
		}
		return "active\n", nil
	case "show":
		if f.state == "active" {
			return "4242\n", nil
		}
		return "0\n", nil
	}
	return "", nil
}

// unitHome makes an install directory of kind cluster whose replicator's
// unit is in a fake system directory, and returns the home, the host and
// the fake.
func unitHome(t *testing.T) (string, *systemd.Host, *fakeSystemd) {
	t.Helper()
	home, sysDir := t.TempDir(), t.TempDir()
	os.MkdirAll(install.ConfDir(home), 0o755)
	manifest := `{"host": "east1", "kind": "cluster", "dir": "` + home + `"}`
	if err := os.WriteFile(install.ManifestPath(home), []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	in := &config.Install{Kind: config.ClusterInstall, Host: "east1", Dir: home, Replicator: true, Settings: config.DefaultSettings()}
	if _, err := systemd.Write(sysDir, in, systemd.Units(in, systemd.Options{})); err != nil {
		t.Fatal(err)
	}
	f := &fakeSystemd{state: "inactive"}
	h := &systemd.Host{Dir: sysDir, IsBooted: func() bool { return true }, Systemctl: f.systemctl}
	return home, h, f
}

// unitAgentSpec is the replicator's spec in home, ready when the fake
// unit is active.
func unitAgentSpec(home string, f *fakeSystemd, out *strings.Builder) Spec {
	return Spec{Name: "Tungsten Replicator Service", PIDFile: install.PIDFile(home, "replicator"), LogFile: filepath.Join(install.LogDir(home), "replicator.log"),
		Mark: "--home=" + home, Out: out,
		Ready: func(context.Context) error {
			if f.state != "active" {
				return errors.New("not listening")
			}
			return nil
		}}
}

// TestUnitCommands: with its unit installed, start, status, restart and
// stop go through systemctl.
func TestUnitCommands(t *testing.T) {
	home, h, f := unitHome(t)
	a := Agent{Program: "replicator", Systemd: h}
	u, ok := a.unit(home)
	if !ok || u.name != "carbide-cluster-replicator.service" {
		t.Fatalf("unit = %+v, %v", u, ok)
	}
	var out strings.Builder
	s := unitAgentSpec(home, f, &out)
	fail := func(verb string, err error) int { t.Errorf("%s: %v", verb, err); return 1 }
	ctx := context.Background()
	for _, step := range []struct {
		verb, want string
		code       int
		calls      []string
	}{
		{"status", "Tungsten Replicator Service is not running (systemd unit carbide-cluster-replicator.service is inactive).\n", 1,
			[]string{"is-active carbide-cluster-replicator.service"}},
		{"start", "Starting Tungsten Replicator Service (systemd unit carbide-cluster-replicator.service)...\nWaiting for Tungsten Replicator Service.\nrunning: PID:4242\n", 0,
			[]string{"start carbide-cluster-replicator.service", "show --property=MainPID --value carbide-cluster-replicator.service"}},
		{"status", "Tungsten Replicator Service is running: PID:4242 (systemd unit carbide-cluster-replicator.service)\n", 0,
			[]string{"is-active carbide-cluster-replicator.service", "show --property=MainPID --value carbide-cluster-replicator.service"}},
		{"restart", "Stopping Tungsten Replicator Service (systemd unit carbide-cluster-replicator.service)...\nStopped Tungsten Replicator Service.\nStarting Tungsten Replicator Service (systemd unit carbide-cluster-replicator.service)...\nWaiting for Tungsten Replicator Service.\nrunning: PID:4242\n", 0,
			[]string{"is-active carbide-cluster-replicator.service", "stop carbide-cluster-replicator.service", "start carbide-cluster-replicator.service", "show --property=MainPID --value carbide-cluster-replicator.service"}},
		{"stop", "Stopping Tungsten Replicator Service (systemd unit carbide-cluster-replicator.service)...\nStopped Tungsten Replicator Service.\n", 0,
			[]string{"is-active carbide-cluster-replicator.service", "stop carbide-cluster-replicator.service"}},
		{"stop", "Tungsten Replicator Service was not running.\n", 0,
			[]string{"is-active carbide-cluster-replicator.service"}},
	} {
		out.Reset()
		f.calls = nil
		if code := u.command(ctx, step.verb, s, time.Second, fail); code != step.code || out.String() != step.want || !slices.Equal(f.calls, step.calls) {
			t.Errorf("%s: exit %d, output\n%s\nsystemctl %q\nwant exit %d, output\n%s\nsystemctl %q", step.verb, code, out.String(), f.calls, step.code, step.want, step.calls)
		}
	}
}

// TestUnitStartFails: a refused systemctl start and a unit that fails at
// start are one sentence each, naming the unit and journalctl.
func TestUnitStartFails(t *testing.T) {
	home, h, f := unitHome(t)
	u, _ := Agent{Program: "replicator", Systemd: h}.unit(home)
	var out strings.Builder
	s := unitAgentSpec(home, f, &out)
	var got error
	fail := func(_ string, err error) int { got = err; return 1 }
	f.failing = "start"
	if code := u.command(context.Background(), "start", s, time.Second, fail); code != 1 || got == nil ||
		got.Error() != "systemctl start carbide-cluster-replicator.service failed (exit status 1: Failed to start carbide-cluster-replicator.service: Access denied); see journalctl -u carbide-cluster-replicator.service" {
		t.Errorf("refused start: exit %d, %v", code, got)
	}
	f.failing, got = "", nil
	s.Ready = func(context.Context) error { f.state = "failed"; return errors.New("connection refused") }
	if code := u.command(context.Background(), "start", s, time.Second, fail); code != 1 || got == nil ||
		got.Error() != "Tungsten Replicator Service exited at start (its unit carbide-cluster-replicator.service is failed); see journalctl -u carbide-cluster-replicator.service" {
		t.Errorf("failed unit: exit %d, %v", code, got)
	}
}

// TestUnitStopsProcessStartedWithout: an agent started without systemd
// before its unit was installed is reported and stopped through its pid
// file.
func TestUnitStopsProcessStartedWithout(t *testing.T) {
	home, h, f := unitHome(t)
	u, _ := Agent{Program: "replicator", Systemd: h}.unit(home)
	var out strings.Builder
	s := unitAgentSpec(home, f, &out)
	s.Mark = "" // sleep's command line does not carry the mark
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-done })
	os.MkdirAll(install.RunDir(home), 0o755)
	os.WriteFile(s.PIDFile, []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644)
	fail := func(verb string, err error) int { t.Errorf("%s: %v", verb, err); return 1 }
	if code := u.command(context.Background(), "status", s, 5*time.Second, fail); code != 0 || !strings.Contains(out.String(), "(not under its systemd unit carbide-cluster-replicator.service)") {
		t.Errorf("status: exit %d: %s", code, out.String())
	}
	out.Reset()
	if code := u.command(context.Background(), "start", s, 5*time.Second, fail); code != 0 || !strings.Contains(out.String(), "is already running") || slices.Contains(f.calls, "start carbide-cluster-replicator.service") {
		t.Errorf("start: exit %d: %s (systemctl %q)", code, out.String(), f.calls)
	}
	out.Reset()
	if code := u.command(context.Background(), "stop", s, 5*time.Second, fail); code != 0 || !strings.Contains(out.String(), "Stopped Tungsten Replicator Service.") {
		t.Errorf("stop: exit %d: %s", code, out.String())
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Error("the process started without systemd still runs")
	}
}

// TestNoUnit: without systemd, without the unit file, or with a unit of
// another install directory, an agent's commands use its pid file.
func TestNoUnit(t *testing.T) {
	home, h, _ := unitHome(t)
	booted := *h
	booted.IsBooted = func() bool { return false }
	if _, ok := (Agent{Program: "replicator", Systemd: &booted}).unit(home); ok {
		t.Error("a unit on a machine systemd does not run")
	}
	if _, ok := (Agent{Program: "connector", Systemd: h}).unit(home); ok {
		t.Error("a unit for an agent tpm wrote none for")
	}
	if _, ok := (Agent{Program: "replicator", Systemd: h}).unit(t.TempDir()); ok {
		t.Error("a unit for a directory that holds no install")
	}
	other := t.TempDir()
	os.MkdirAll(install.ConfDir(other), 0o755)
	os.WriteFile(install.ManifestPath(other), []byte(`{"host": "east1", "kind": "cluster", "dir": "`+other+`"}`), 0o644)
	if _, ok := (Agent{Program: "replicator", Systemd: h}).unit(other); ok {
		t.Error("another install directory's agent took this install's unit")
	}
}

// TestMainUsesUnit: Main sends status through the unit when there is one.
func TestMainUsesUnit(t *testing.T) {
	home, h, f := unitHome(t)
	t.Setenv(install.EnvHome, home)
	var out, errOut strings.Builder
	a := Agent{Program: "replicator", Systemd: h, Spec: func(home string, out io.Writer) Spec {
		s := unitAgentSpec(home, f, nil)
		s.Out = out
		return s
	}}
	if code := Main(context.Background(), a, []string{"status"}, &out, &errOut); code != 1 || !strings.Contains(out.String(), "(systemd unit carbide-cluster-replicator.service is inactive)") {
		t.Errorf("status: exit %d\n%s%s", code, out.String(), errOut.String())
	}
}
