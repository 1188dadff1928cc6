package tpm

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/carbidedb/carbide/internal/install"
)

// failing makes the release's program fail verb (and do as fakeStaging's
// otherwise), as an agent that does not stop, or start, makes its wrapper
// fail.
func failing(t *testing.T, staging, program, verb string) {
	t.Helper()
	script := "#!/bin/sh\nif [ \"$1\" = " + verb + " ]; then\n  echo '" + program + " " + verb + ": Tungsten Service (pid 4242) did not " + verb + "' >&2\n  exit 1\nfi\necho " + program + " $CARBIDE_HOME \"$@\"\n"
	if err := os.WriteFile(filepath.Join(staging, "bin", program), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
}

// requireInstall fails the test unless home holds an install.
func requireInstall(t *testing.T, home string) {
	t.Helper()
	if _, err := install.ReadManifest(home); err != nil {
		t.Fatalf("the install in %s is gone: %v", home, err)
	}
}

// requireGone fails the test unless path does not exist.
func requireGone(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Fatalf("%s is still there (%v)", path, err)
	}
}

// TestUninstallRefusedWithoutIAmSure: without --i-am-sure, uninstall says
// in one sentence what it would remove, runs nothing and changes nothing.
func TestUninstallRefusedWithoutIAmSure(t *testing.T) {
	f, rec, cluster := realFixture(t, true, true)
	f.mustRun("install", "--ini", f.ini, "--no-profile")
	xsite := f.xsiteHome(t)
	sys := f.systemd.Dir
	units := unitFiles(t, sys)
	rec.calls = nil
	r := f.run("uninstall", "--ini", f.ini)
	want := "tpm uninstall: it takes --i-am-sure to stop the agents of the cluster install of east1 in " + cluster +
		" and of the cross-site install of east1 in " + xsite + " and delete those directories, and disable and delete the systemd units " +
		strings.Join(clusterUnits, ", ") + ", " + xsiteUnit + " in " + sys + "; nothing was changed\n"
	if r.code != ExitUsage || r.err != want || r.out != "" {
		t.Fatalf("got %s\nwant exit 2 and %s", r, want)
	}
	if len(rec.calls) != 0 {
		t.Errorf("a refused uninstall ran systemctl %q", rec.calls)
	}
	requireInstall(t, cluster)
	requireInstall(t, xsite)
	if got := unitFiles(t, sys); !slices.Equal(got, units) {
		t.Errorf("a refused uninstall left units %v, want %v", got, units)
	}
}

// xsiteHome is the cross-site install directory of a realFixture.
func (f *fixture) xsiteHome(t *testing.T) string {
	t.Helper()
	for _, l := range strings.Split(readFile(t, f.ini), "\n") {
		if dir, ok := strings.CutPrefix(l, "home-directory="); ok {
			return dir
		}
	}
	t.Fatal("the ini has no home-directory")
	return ""
}

// TestUninstallRemovesUnitsAndDirectory: as root on a systemd host,
// uninstall stops each install's agents (connector, manager, replicator)
// through their wrappers, disables and deletes their units, reloads
// systemd once and deletes the install directories; each step is a line.
func TestUninstallRemovesUnitsAndDirectory(t *testing.T) {
	f, rec, cluster := realFixture(t, true, true)
	xsite := f.xsiteHome(t)
	sys := f.systemd.Dir
	f.mustRun("install", "--ini", f.ini, "--no-profile")
	rec.calls = nil
	r := f.mustRun("uninstall", "--ini", f.ini, "--i-am-sure")
	wantCalls := []string{"disable --now " + strings.Join(clusterUnits, " "), "disable --now " + xsiteUnit, "daemon-reload"}
	if !slices.Equal(rec.calls, wantCalls) {
		t.Errorf("uninstall ran systemctl %q, want %q", rec.calls, wantCalls)
	}
	bin := filepath.Join(cluster, "bin")
	want := []string{
		"east1: " + bin + "/connector stop: connector " + cluster + " stop",
		"east1: " + bin + "/manager stop: manager " + cluster + " stop",
		"east1: " + bin + "/replicator stop: replicator " + cluster + " stop",
		"east1: disabled and removed systemd units " + strings.Join(clusterUnits, ", ") + " from " + sys,
		"east1: " + xsite + "/bin/mm_replicator stop: replicator " + xsite + " stop",
		"east1: disabled and removed systemd units " + xsiteUnit + " from " + sys,
		"ran systemctl daemon-reload: systemd no longer knows the removed units",
		"east1: deleted the cluster install directory " + cluster,
		"east1: deleted the cross-site install directory " + xsite,
	}
	if got := lines(r.out); !slices.Equal(got, want) || r.err != "" {
		t.Errorf("uninstall printed\n%s\nwant\n%s\nerrors: %q", strings.Join(got, "\n"), strings.Join(want, "\n"), r.err)
	}
	requireGone(t, cluster)
	requireGone(t, xsite)
	if got := unitFiles(t, sys); len(got) != 0 {
		t.Errorf("the system's directory still holds %v", got)
	}
}

// TestUninstallTwice: a second uninstall finds nothing to remove, says so
// for each install, runs no systemctl and exits 0, even without
// --i-am-sure.
func TestUninstallTwice(t *testing.T) {
	f, rec, cluster := realFixture(t, true, true)
	xsite := f.xsiteHome(t)
	f.mustRun("install", "--ini", f.ini, "--no-profile")
	f.mustRun("uninstall", "--ini", f.ini, "--i-am-sure")
	for _, args := range [][]string{{"--i-am-sure"}, nil} {
		rec.calls = nil
		r := f.mustRun(append([]string{"uninstall", "--ini", f.ini}, args...)...)
		want := "east1: nothing to remove of the cluster install: " + cluster + " does not exist and no systemd unit names it\n" +
			"east1: nothing to remove of the cross-site install: " + xsite + " does not exist and no systemd unit names it\n"
		if r.out != want || r.err != "" || len(rec.calls) != 0 {
			t.Errorf("uninstall %q again: %s\nsystemctl %q\nwant only\n%s", args, r, rec.calls, want)
		}
	}
}

// TestUninstallUnitsWithTheDirectory: units tpm wrote into the install's
// share/systemd (not root) go with the directory, and no systemctl runs.
func TestUninstallUnitsWithTheDirectory(t *testing.T) {
	f, rec, cluster := realFixture(t, true, false)
	f.mustRun("install", "--ini", f.ini, "--no-profile")
	r := f.mustRun("uninstall", "--ini", f.ini, "--only", "cluster", "--i-am-sure")
	if want := "east1: deleted the cluster install directory " + cluster + " (its systemd units in share/systemd with it)\n"; !strings.HasSuffix(r.out, want) {
		t.Errorf("output does not end with %q:\n%s", want, r)
	}
	if len(rec.calls) != 0 {
		t.Errorf("uninstall ran systemctl %q for units in the install directory", rec.calls)
	}
	requireGone(t, cluster)
	requireInstall(t, f.xsiteHome(t)) // --only cluster
}

// TestUninstallSystemdDir: --systemd-dir DIR removes the install's units
// from DIR, and leaves DIR's other files alone; no systemctl runs.
func TestUninstallSystemdDir(t *testing.T) {
	f, rec, cluster := realFixture(t, false, true)
	dir := t.TempDir()
	f.mustRun("install", "--ini", f.ini, "--no-profile", "--only", "cluster", "--systemd-dir", dir)
	other := filepath.Join(dir, "carbide-cluster-manager.service.bak")
	os.WriteFile(other, []byte("# carbide-home: "+cluster+"\n"), 0o644)
	r := f.run("uninstall", "--ini", f.ini, "--only", "cluster", "--systemd-dir", dir)
	if want := ", and delete the systemd units " + strings.Join(clusterUnits, ", ") + " in " + dir + "; nothing was changed\n"; r.code != ExitUsage || !strings.HasSuffix(r.err, want) {
		t.Errorf("without --i-am-sure: %s\nwant exit 2 and a sentence ending %q", r, want)
	}
	r = f.mustRun("uninstall", "--ini", f.ini, "--only", "cluster", "--systemd-dir", dir, "--i-am-sure")
	if want := "east1: removed systemd units " + strings.Join(clusterUnits, ", ") + " from " + dir + "\n"; !strings.Contains(r.out, want) {
		t.Errorf("output lacks %q:\n%s", want, r)
	}
	if got := unitFiles(t, dir); !slices.Equal(got, []string{filepath.Base(other)}) || len(rec.calls) != 0 {
		t.Errorf("%s holds %v (want only %s), systemctl %q", dir, got, filepath.Base(other), rec.calls)
	}
	requireGone(t, cluster)
}

// TestUninstallRefusesNonInstall: a directory without conf/install.json
// is no install tpm made: it is left alone, in one sentence, exit 1.
func TestUninstallRefusesNonInstall(t *testing.T) {
	f, rec, cluster := realFixture(t, true, true)
	if err := os.MkdirAll(cluster, 0o755); err != nil {
		t.Fatal(err)
	}
	precious := filepath.Join(cluster, "precious")
	os.WriteFile(precious, []byte("keep me\n"), 0o644)
	r := f.run("uninstall", "--ini", f.ini, "--only", "cluster", "--i-am-sure")
	want := "tpm uninstall: east1: " + cluster + " holds no conf/install.json, so it is no install tpm made; tpm uninstall leaves it alone\n"
	if r.code != ExitProblems || r.err != want || r.out != "" || len(rec.calls) != 0 {
		t.Errorf("got %s\nsystemctl %q\nwant exit 1 and %s", r, rec.calls, want)
	}
	if readFile(t, precious) != "keep me\n" {
		t.Error("uninstall touched a directory it refused")
	}
}

// TestUninstallKeepsDatadir: an install directory that holds the
// database's datadir is left alone.
func TestUninstallKeepsDatadir(t *testing.T) {
	f, _, cluster := realFixture(t, true, true)
	f.editINI("[defaults]\n", "[defaults]\ndatasource-mysql-data-directory="+cluster+"/data\n")
	f.mustRun("install", "--ini", f.ini, "--no-profile", "--only", "cluster")
	r := f.run("uninstall", "--ini", f.ini, "--only", "cluster", "--i-am-sure")
	if r.code != ExitProblems || len(r.errLines()) != 1 || !strings.Contains(r.err, cluster+" holds the database's datadir "+cluster+"/data, which tpm uninstall never removes") {
		t.Errorf("want exit 1 and one sentence naming the datadir:\n%s", r)
	}
	requireInstall(t, cluster)
}

// TestUninstallAgentFailsToStop: an install whose agent does not stop
// keeps its directory and units (the agents after it are not stopped);
// the host's other install is removed; exit 1.
func TestUninstallAgentFailsToStop(t *testing.T) {
	f, rec, cluster := realFixture(t, true, true)
	xsite := f.xsiteHome(t)
	sys := f.systemd.Dir
	f.mustRun("install", "--ini", f.ini, "--no-profile")
	failing(t, f.staging, "manager", "stop")
	rec.calls = nil
	r := f.run("uninstall", "--ini", f.ini, "--i-am-sure")
	wrapper := filepath.Join(cluster, "bin", "manager")
	want := "tpm uninstall: east1: " + wrapper + " stop failed (exit status 1: manager stop: Tungsten Service (pid 4242) did not stop); leaving the cluster install of east1 in " + cluster + " as it is: stop its manager, then run tpm uninstall again\n"
	if r.code != ExitProblems || r.err != want {
		t.Fatalf("got %s\nwant exit 1 and %s", r, want)
	}
	if !strings.Contains(r.out, "/connector stop:") || strings.Contains(r.out, cluster+"/bin/replicator stop") {
		t.Errorf("want the connector stopped and the replicator left running:\n%s", r.out)
	}
	if wantCalls := []string{"disable --now " + xsiteUnit, "daemon-reload"}; !slices.Equal(rec.calls, wantCalls) {
		t.Errorf("systemctl %q, want %q", rec.calls, wantCalls)
	}
	requireInstall(t, cluster)
	requireGone(t, xsite)
	if got := unitFiles(t, sys); len(got) != 3 {
		t.Errorf("the cluster install's units are %v, want its 3 left in place", got)
	}
}

// TestUninstallSandbox: in a sandbox, uninstall removes a host's installs
// under DIR/<host>/ and nothing else (its database's DIR/<host>/mysql
// stays); bound to an install (mm_tpm), only that one; --all, every host.
func TestUninstallSandbox(t *testing.T) {
	f := newFixture(t)
	f.mustRun("install", "--ini", f.ini, "--all")
	for _, h := range sampleHosts {
		os.MkdirAll(filepath.Join(f.root, h, "mysql"), 0o755)
		os.WriteFile(filepath.Join(f.root, h, "mysql", "ibdata1"), []byte("data"), 0o644)
	}

	f.vars[install.EnvHome] = f.xsiteDir("east2")
	f.hostname = ""
	r := f.mustRun("uninstall", "--i-am-sure")
	if strings.Contains(r.out, "cluster") || strings.Contains(r.out, "systemd") {
		t.Errorf("mm_tpm uninstall touched the cluster install, or spoke of units:\n%s", r.out)
	}
	requireGone(t, f.xsiteDir("east2"))
	requireInstall(t, f.clusterDir("east2"))
	delete(f.vars, install.EnvHome)

	f.mustRun("uninstall", "--ini", f.ini, "--host", "east1", "--i-am-sure")
	requireGone(t, f.clusterDir("east1"))
	requireGone(t, f.xsiteDir("east1"))
	requireInstall(t, f.clusterDir("east3"))

	r = f.mustRun("uninstall", "--ini", f.ini, "--all", "--i-am-sure")
	if !strings.Contains(r.out, "east1: nothing to remove of the cluster install") {
		t.Errorf("--all does not say east1 has nothing left:\n%s", r.out)
	}
	for _, h := range sampleHosts {
		entries, _ := os.ReadDir(filepath.Join(f.root, h))
		if len(entries) != 1 || entries[0].Name() != "mysql" || readFile(t, filepath.Join(f.root, h, "mysql", "ibdata1")) != "data" {
			t.Errorf("after uninstall --all %s holds %v, want its mysql directory only, untouched", filepath.Join(f.root, h), entries)
		}
	}
}

// TestUninstallNeedsRootForSystemUnits: units in /etc/systemd/system that
// run the install are root's to remove: not root, tpm leaves the install
// alone, agents included, in one sentence.
func TestUninstallNeedsRootForSystemUnits(t *testing.T) {
	f, rec, cluster := realFixture(t, true, true)
	f.mustRun("install", "--ini", f.ini, "--no-profile", "--only", "cluster")
	f.systemd.IsRoot = func() bool { return false }
	rec.calls = nil
	r := f.run("uninstall", "--ini", f.ini, "--only", "cluster", "--i-am-sure")
	want := "tpm uninstall: east1: the systemd units " + strings.Join(clusterUnits, ", ") + " in " + f.systemd.Dir + " run the cluster install of east1 in " + cluster + ", and only root can remove them; run tpm uninstall as root\n"
	if r.code != ExitProblems || r.err != want || r.out != "" || len(rec.calls) != 0 {
		t.Errorf("got %s\nsystemctl %q\nwant exit 1 and %s", r, rec.calls, want)
	}
	requireInstall(t, cluster)
}
