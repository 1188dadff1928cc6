package tpm

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/carbidedb/carbide/internal/install"
	"github.com/carbidedb/carbide/internal/systemd"
	"github.com/carbidedb/carbide/internal/testutil"
)

var clusterUnits = []string{"carbide-cluster-manager.service", "carbide-cluster-replicator.service", "carbide-cluster-connector.service"}

const xsiteUnit = "carbide-cross-site-replicator.service"

// unitFiles lists the unit files in dir.
func unitFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// recorder is a systemctl that records its calls and runs nothing.
type recorder struct {
	calls   []string
	failing string // a verb that fails
}

func (r *recorder) systemctl(_ context.Context, args ...string) (string, error) {
	r.calls = append(r.calls, strings.Join(args, " "))
	if args[0] == r.failing {
		return "Failed to " + args[0] + ": Access denied\n", errors.New("exit status 1")
	}
	if args[0] == "is-active" {
		return "inactive\n", errors.New("exit status 3")
	}
	return "", nil
}

// TestInstallWritesUnits: with --systemd-dir, install and update write a
// host's units there, one line per install, and run no systemctl.
func TestInstallWritesUnits(t *testing.T) {
	f := newFixture(t)
	rec := &recorder{}
	yes := func() bool { return true }
	f.systemd = systemd.Host{Dir: t.TempDir(), IsBooted: yes, IsRoot: yes, Systemctl: rec.systemctl}
	dir := filepath.Join(t.TempDir(), "units")
	for _, cmd := range []string{"install", "update"} {
		args := []string{cmd, "--ini", f.ini, "--host", "east1", "--no-profile", "--systemd-dir", dir}
		if cmd == "update" {
			args = append(args, "--no-restart")
		}
		r := f.mustRun(args...)
		for _, want := range []string{
			"east1: wrote systemd units " + strings.Join(clusterUnits, ", ") + " into " + dir + "\n",
			"east1: wrote systemd units " + xsiteUnit + " into " + dir + "\n",
		} {
			if !strings.Contains(r.out, want) {
				t.Errorf("%s: output lacks %q:\n%s", cmd, want, r.out)
			}
		}
	}
	if got, want := unitFiles(t, dir), []string{"carbide-cluster-connector.service", "carbide-cluster-manager.service", "carbide-cluster-replicator.service", xsiteUnit}; !slices.Equal(got, want) {
		t.Errorf("units %v, want %v", got, want)
	}
	text := readFile(t, filepath.Join(dir, xsiteUnit))
	home := f.xsiteDir("east1")
	if !strings.Contains(text, "\nExecStart="+filepath.Join(home, "bin", "mm_replicator")+" run --home="+home+"\n") || systemd.HomeOf(text) != home {
		t.Errorf("the cross-site replicator's unit:\n%s", text)
	}
	if len(rec.calls) != 0 {
		t.Errorf("tpm ran systemctl %q for units written into --systemd-dir", rec.calls)
	}
}

// TestSandboxWritesNoUnits: a sandbox's agents never run under systemd:
// without --systemd-dir tpm writes no unit for it.
func TestSandboxWritesNoUnits(t *testing.T) {
	f := newFixture(t)
	r := f.mustRun("install", "--ini", f.ini, "--host", "east1", "--no-profile")
	if strings.Contains(r.out, "systemd") {
		t.Errorf("output speaks of systemd:\n%s", r.out)
	}
	if _, err := os.Stat(install.UnitDir(f.clusterDir("east1"))); err == nil {
		t.Errorf("a sandbox install has %s", install.UnitDir(f.clusterDir("east1")))
	}
}

// TestSystemdDirTakesOneHost: every host's units have the same names, so
// --systemd-dir with several hosts is refused before anything is written.
func TestSystemdDirTakesOneHost(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	r := f.run("install", "--ini", f.ini, "--host", "east1,east2", "--systemd-dir", dir)
	want := "tpm install: --systemd-dir takes the units of one host, and this run installs 2 (east1, east2) whose units have the same names; install one host at a time\n"
	if r.code != ExitUsage || r.err != want || r.out != "" {
		t.Errorf("got %s\nwant exit 2 and %s", r, want)
	}
	f.requireEmptyRoot()
	if names := unitFiles(t, dir); len(names) != 0 {
		t.Errorf("a refused install wrote %v", names)
	}
}

// realFixture is the sample without a sandbox: its install directories
// are temporary ones (the cluster install's is returned), the host has a
// fake systemd.
func realFixture(t *testing.T, booted, root bool) (*fixture, *recorder, string) {
	t.Helper()
	f := &fixture{t: t, staging: fakeStaging(t), vars: map[string]string{}, hostname: "east1"}
	cluster, xsite := filepath.Join(t.TempDir(), "continuent"), filepath.Join(t.TempDir(), "replicator")
	ini := strings.Replace(sample(t), "install-directory=/opt/continuent", "install-directory="+cluster, 1)
	f.writeINI(strings.Replace(ini, "home-directory=/opt/replicator", "home-directory="+xsite, 1))
	rec := &recorder{}
	f.systemd = systemd.Host{Dir: t.TempDir(), IsBooted: func() bool { return booted }, IsRoot: func() bool { return root },
		Systemctl: rec.systemctl, PrimaryGroup: func(string) (string, error) { return "carbide", nil }}
	return f, rec, cluster
}

// TestUnitsInSystemDir: as root on a systemd host, install writes the
// units into the system's directory, reloads systemd and enables and
// starts them; update enables without starting; an agent the
// configuration drops loses its unit; start=false enables nothing; a
// failing systemctl is one sentence and the install goes on.
func TestUnitsInSystemDir(t *testing.T) {
	f, rec, _ := realFixture(t, true, true)
	sys := f.systemd.Dir
	r := f.mustRun("install", "--ini", f.ini, "--no-profile")
	wantCalls := []string{"daemon-reload", "enable --now " + strings.Join(clusterUnits, " "), "daemon-reload", "enable --now " + xsiteUnit}
	if !slices.Equal(rec.calls, wantCalls) {
		t.Errorf("install ran systemctl %q, want %q", rec.calls, wantCalls)
	}
	for _, want := range []string{
		"east1: wrote systemd units " + strings.Join(clusterUnits, ", ") + " into " + sys + "\n",
		"east1: enabled and started " + strings.Join(clusterUnits, ", ") + "\n",
		"east1: enabled and started " + xsiteUnit + "\n",
	} {
		if !strings.Contains(r.out, want) {
			t.Errorf("install output lacks %q:\n%s", want, r.out)
		}
	}
	if text := readFile(t, filepath.Join(sys, "carbide-cluster-replicator.service")); !strings.Contains(text, "\nUser=tungsten\nGroup=carbide\n") {
		t.Errorf("the unit does not run as the ini's user and its group:\n%s", text)
	}

	rec.calls = nil
	f.editINI("connectors=east1,east2,east3", "connectors=east2,east3")
	f.mustRun("update", "--ini", f.ini, "--no-profile", "--no-restart")
	wantCalls = []string{"disable --now carbide-cluster-connector.service", "daemon-reload", "enable carbide-cluster-manager.service carbide-cluster-replicator.service", "daemon-reload", "enable " + xsiteUnit}
	if !slices.Equal(rec.calls, wantCalls) {
		t.Errorf("update ran systemctl %q, want %q", rec.calls, wantCalls)
	}
	if slices.Contains(unitFiles(t, sys), "carbide-cluster-connector.service") {
		t.Error("the unit of the connector east1 no longer runs is still there")
	}

	rec.calls, rec.failing = nil, "enable"
	f.editINI("[defaults]\n", "[defaults]\nstart=false\n")
	r = f.mustRun("update", "--ini", f.ini, "--no-profile", "--no-restart")
	if !slices.Equal(rec.calls, []string{"daemon-reload", "daemon-reload"}) || r.err != "" {
		t.Errorf("with start=false update ran systemctl %q (errors %q), want daemon-reload only", rec.calls, r.err)
	}
	f.editINI("start=false\n", "")
	r = f.mustRun("install", "--ini", f.ini, "--no-profile")
	if lines := r.errLines(); len(lines) != 2 || !strings.HasPrefix(lines[0], "tpm install: systemctl enable --now carbide-cluster-manager.service carbide-cluster-replicator.service failed (exit status 1: Failed to enable: Access denied); the units are written, run it by hand") {
		t.Errorf("a failing systemctl enable: %s", r)
	}
}

// TestUnitsInInstallDir: not root, or without systemd, tpm writes the
// units into each install's share/systemd, says why in one line, and runs
// no systemctl.
func TestUnitsInInstallDir(t *testing.T) {
	for _, tc := range []struct {
		booted, root bool
		why          string
	}{{true, false, "tpm is not running as root"}, {false, true, "this host does not run systemd"}} {
		f, rec, cluster := realFixture(t, tc.booted, tc.root)
		r := f.mustRun("install", "--ini", f.ini, "--no-profile", "--only", "cluster")
		dir := install.UnitDir(cluster)
		want := "east1: wrote systemd units " + strings.Join(clusterUnits, ", ") + " into " + dir + " (" + tc.why + "); to run the agents under systemd, copy them into /etc/systemd/system as root and run systemctl daemon-reload\n"
		if !strings.Contains(r.out, want) || len(rec.calls) != 0 {
			t.Errorf("got %s\nsystemctl %q\nwant the line %s", r, rec.calls, want)
		}
		if got := unitFiles(t, dir); len(got) != 3 {
			t.Errorf("%s holds %v", dir, got)
		}
	}
}

// TestUnitsVerify writes the units of every host of the guide's sample
// (its sandbox form, whose install directories are temporary) and has
// systemd-analyze verify each: syntax, known keys, and an ExecStart that
// is an executable file (the install's wrapper).
func TestUnitsVerify(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	testutil.Require(t, err == nil, "systemd-analyze not found; install systemd (scripts/install-deps.sh)")
	f := newFixture(t)
	verified, root := 0, t.TempDir()
	for _, host := range sampleHosts {
		dir := filepath.Join(root, host)
		f.mustRun("install", "--ini", f.ini, "--host", host, "--no-profile", "--systemd-dir", dir)
		for _, name := range unitFiles(t, dir) {
			out, err := exec.Command(analyze, "verify", filepath.Join(dir, name)).CombinedOutput()
			t.Logf("systemd-analyze verify %s/%s: exit %v, output %q", host, name, err, out)
			if err != nil || strings.Contains(string(out), name) {
				t.Errorf("systemd-analyze verify %s of %s: %v\n%s", name, host, err, out)
			}
			verified++
		}
	}
	if verified != 4*len(sampleHosts) {
		t.Errorf("verified %d units, want 4 for each of the %d hosts", verified, len(sampleHosts))
	}
	// The check checks: a unit whose program is missing fails it.
	dir := t.TempDir()
	bad := strings.ReplaceAll(readFile(t, filepath.Join(root, "east1", xsiteUnit)), "/bin/mm_replicator", "/bin/missing")
	os.WriteFile(filepath.Join(dir, xsiteUnit), []byte(bad), 0o644)
	if out, err := exec.Command(analyze, "verify", filepath.Join(dir, xsiteUnit)).CombinedOutput(); err == nil || !strings.Contains(string(out), "missing") {
		t.Errorf("systemd-analyze verify passed a unit whose program is missing: %v\n%s", err, out)
	}
}

// TestUnitsEnableRunningAgent: install enables, without starting it, the
// unit of an agent that already runs without systemd, and says how to move
// it under the unit.
func TestUnitsEnableRunningAgent(t *testing.T) {
	f, rec, cluster := realFixture(t, true, true)
	// A process that carries the install's mark, as a started agent does.
	agent := exec.Command("sh", "-c", "sleep 60; :", "sh", "--home="+cluster)
	agent.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(-agent.Process.Pid, syscall.SIGKILL); agent.Wait() })
	os.MkdirAll(install.RunDir(cluster), 0o755)
	os.WriteFile(install.PIDFile(cluster, "connector"), []byte(strconv.Itoa(agent.Process.Pid)+"\n"), 0o644)
	r := f.mustRun("install", "--ini", f.ini, "--no-profile", "--only", "cluster")
	wantCalls := []string{"daemon-reload", "is-active carbide-cluster-connector.service",
		"enable --now carbide-cluster-manager.service carbide-cluster-replicator.service", "enable carbide-cluster-connector.service"}
	if !slices.Equal(rec.calls, wantCalls) {
		t.Errorf("systemctl %q, want %q", rec.calls, wantCalls)
	}
	want := "east1: enabled carbide-cluster-connector.service; its connector already runs without systemd, and connector restart moves it under the unit\n"
	if !strings.Contains(r.out, want) {
		t.Errorf("output lacks %q:\n%s", want, r.out)
	}
}
