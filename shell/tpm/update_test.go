package tpm

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/carbidedb/carbide/internal/config"
	"github.com/carbidedb/carbide/internal/install"
)

// --- update ---

func TestUpdateBeforeInstall(t *testing.T) {
	f := newFixture(t)
	r := f.run("update", "--ini", f.ini, "--host", "east1")
	if r.code != ExitProblems || len(r.errLines()) != 1 || !strings.Contains(r.err, "run tpm install first") {
		t.Fatalf("want exit 1 saying to run tpm install first:\n%s", r)
	}
	f.requireEmptyRoot()
}

func TestUpdateRewritesConfiguration(t *testing.T) {
	f := newFixture(t)
	first := f.staging
	f.mustRun("install", "--ini", f.ini, "--host", "east1,west1")

	f.editINI("thl-port=2113", "thl-port=2114")
	f.staging = fakeStaging(t) // a newer release: update keeps the installed one
	f.mustRun("update", "--ini", f.ini, "--host", "east1")
	b, err := install.Open(f.xsiteDir("east1"))
	if err != nil {
		t.Fatal(err)
	}
	if b.Install.Settings.THLPort != 2114 {
		t.Fatalf("after update the cross-site thl-port is %d, want 2114", b.Install.Settings.THLPort)
	}
	if b.Manifest.Staging != first {
		t.Fatalf("update moved the install to release %s; without --replace-release it keeps %s", b.Manifest.Staging, first)
	}
	wrapper := readFile(t, filepath.Join(f.xsiteDir("east1"), "bin", "mm_trepctl"))
	if !strings.Contains(wrapper, first+"/bin/trepctl") {
		t.Fatalf("mm_trepctl no longer runs the installed release:\n%s", wrapper)
	}
	// west1 was not named: it keeps the old configuration.
	if old, err := install.Open(f.xsiteDir("west1")); err != nil || old.Install.Settings.THLPort != 2113 {
		t.Fatalf("update --host east1 rewrote west1 (%v)", err)
	}

	f.mustRun("update", "--ini", f.ini, "--host", "east1", "--replace-release")
	for _, home := range []string{f.clusterDir("east1"), f.xsiteDir("east1")} {
		if m := readManifest(t, home); m.Staging != f.staging {
			t.Fatalf("update --replace-release left %s on release %s, want %s", home, m.Staging, f.staging)
		}
	}
	wrapper = readFile(t, filepath.Join(f.xsiteDir("east1"), "bin", "mm_trepctl"))
	if !strings.Contains(wrapper, f.staging+"/bin/trepctl") {
		t.Fatalf("mm_trepctl does not run the new release:\n%s", wrapper)
	}
}

// TestUpdateKeepsEachInstallsRelease moves the cross-site install alone to a
// new release (mm_tpm update --replace-release), then runs a plain tpm
// update of the host: each install stays on the release it is on.
func TestUpdateKeepsEachInstallsRelease(t *testing.T) {
	f := newFixture(t)
	first := f.staging
	f.mustRun("install", "--ini", f.ini, "--host", "east1,east2")

	second := fakeStaging(t)
	f.staging = second
	f.vars[install.EnvHome] = f.xsiteDir("east1")
	f.mustRun("update", "--replace-release")
	delete(f.vars, install.EnvHome)

	f.staging = fakeStaging(t)
	f.mustRun("update", "--ini", f.ini, "--host", "east1,east2")
	for home, want := range map[string]string{
		f.clusterDir("east1"): first, f.xsiteDir("east1"): second,
		f.clusterDir("east2"): first, f.xsiteDir("east2"): first,
	} {
		if m := readManifest(t, home); m.Staging != want {
			t.Errorf("after tpm update %s is on release %s, want %s (update without --replace-release keeps it)", home, m.Staging, want)
		}
	}

	// A release that vanished is refused before anything is written.
	if err := os.RemoveAll(filepath.Join(second, "bin")); err != nil {
		t.Fatal(err)
	}
	before := readFile(t, install.ManifestPath(f.clusterDir("east1")))
	r := f.run("update", "--ini", f.ini, "--host", "east1")
	if r.code != ExitProblems || !strings.Contains(r.err, "release directory "+second+" of host east1 has no bin/ directory") {
		t.Fatalf("want exit 1 naming the vanished release %s:\n%s", second, r)
	}
	if got := readFile(t, install.ManifestPath(f.clusterDir("east1"))); got != before {
		t.Fatal("a refused update rewrote the cluster install")
	}
}

// --- bound mode (CARBIDE_HOME, as the mm_tpm wrapper sets it) ---

func TestBoundToCrossSiteInstall(t *testing.T) {
	f := newFixture(t)
	installed := f.staging
	f.mustRun("install", "--ini", f.ini, "--host", "east1")
	clusterINI := readFile(t, install.INIPath(f.clusterDir("east1")))

	f.vars[install.EnvHome] = f.xsiteDir("east1")
	f.staging = fakeStaging(t)
	f.hostname = "" // bound: the host comes from the manifest

	r := f.mustRun("query", "staging")
	if r.out != installed+"\n" {
		t.Fatalf("query staging printed %q, want the manifest's %s", r.out, installed)
	}

	f.editINI("thl-port=2113", "thl-port=2114")
	r = f.mustRun("update")
	if strings.Contains(r.out, "cluster install") {
		t.Fatalf("mm_tpm update touched the cluster install:\n%s", r.out)
	}
	b, err := install.Open(f.xsiteDir("east1"))
	if err != nil {
		t.Fatal(err)
	}
	if b.Install.Settings.THLPort != 2114 {
		t.Fatalf("after mm_tpm update the cross-site thl-port is %d, want 2114", b.Install.Settings.THLPort)
	}
	if got := readFile(t, install.INIPath(f.clusterDir("east1"))); got != clusterINI {
		t.Fatal("mm_tpm update rewrote the cluster install's conf/tungsten.ini")
	}

	// reverse without --ini reads the manifest's ini, not $CARBIDE_INI.
	f.vars[install.EnvINI] = sampleINI
	r = f.mustRun("reverse")
	if !strings.Contains(r.out, "thl-port=2114") || !strings.Contains(r.out, "root="+f.root) {
		t.Fatalf("reverse in an install must print the manifest's ini %s:\n%s", f.ini, r.out)
	}
}

func TestBoundToMissingInstall(t *testing.T) {
	f := newFixture(t)
	f.vars[install.EnvHome] = filepath.Join(t.TempDir(), "gone")
	r := f.run("update")
	if r.code != ExitProblems || len(r.errLines()) != 1 || !strings.Contains(r.err, "holds no Carbide install") {
		t.Fatalf("want exit 1 saying CARBIDE_HOME holds no install:\n%s", r)
	}
}

// --- reverse and query ---

func TestReverse(t *testing.T) {
	f := newFixture(t)
	f.editINI("[sandbox]", "[hosts]\neast1=127.0.1.1\nwest1=127.0.2.1\n\n[sandbox]")
	want, err := config.Load(f.ini)
	if err != nil {
		t.Fatal(err)
	}
	for _, unmasked := range []bool{false, true} {
		args := []string{"reverse", "--ini", f.ini}
		if unmasked {
			args = append(args, "--unmasked")
		}
		r := f.mustRun(args...)
		for _, key := range []string{"replication-password", "application-password", "rest-api-admin-password"} {
			masked := key + "=" + config.Mask
			shown := key + "=secret"
			if unmasked && (!strings.Contains(r.out, shown) || strings.Contains(r.out, masked)) {
				t.Errorf("reverse --unmasked must print %s:\n%s", shown, r.out)
			}
			if !unmasked && (!strings.Contains(r.out, masked) || strings.Contains(r.out, shown)) {
				t.Errorf("reverse must print %s:\n%s", masked, r.out)
			}
		}
		if !unmasked && strings.Contains(r.out, "secret") {
			t.Errorf("masked reverse shows a password:\n%s", r.out)
		}
		got, err := config.Parse(config.Source{Name: "reversed", Data: []byte(r.out)})
		if err != nil {
			t.Fatalf("reverse output does not parse: %v\n%s", err, r.out)
		}
		if !slices.Equal(got.Plan().HostNames(), sampleHosts) || got.Address("east1") != "127.0.1.1" || got.SandboxRoot != f.root {
			t.Errorf("reverse output plans hosts %v (east1 at %s, sandbox %s), want %v", got.Plan().HostNames(), got.Address("east1"), got.SandboxRoot, want.Plan().HostNames())
		}
		if unmasked && got.ClusterSettings("east").ReplicationPassword != "secret" {
			t.Errorf("unmasked reverse lost the replication password")
		}
	}
}

func TestQuery(t *testing.T) {
	f := newFixture(t)
	if r := f.mustRun("query", "staging"); r.out != f.staging+"\n" {
		t.Fatalf("query staging outside an install printed %q, want %s", r.out, f.staging)
	}
	if r := f.mustRun("query", "version"); r.out != Version+"\n" {
		t.Fatalf("query version printed %q", r.out)
	}
}
