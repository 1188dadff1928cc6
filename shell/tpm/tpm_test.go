package tpm

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/carbidedb/carbide/internal/config"
	"github.com/carbidedb/carbide/internal/install"
	"github.com/carbidedb/carbide/internal/systemd"
)

const sampleINI = "../../examples/msaa.ini"

var sampleHosts = []string{"east1", "east2", "east3", "west1", "west2", "west3"}

// result is what one tpm run left behind.
type result struct {
	code     int
	out, err string
}

// errLines returns the non-empty lines written to Err.
func (r result) errLines() []string { return lines(r.err) }

func (r result) String() string {
	return fmt.Sprintf("exit %d\nout:\n%serr:\n%s", r.code, r.out, r.err)
}

func lines(s string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		if sc.Text() != "" {
			out = append(out, sc.Text())
		}
	}
	return out
}

// fixture is one tpm "machine": a sandboxed ini, a fake release and the
// process environment tpm sees.
type fixture struct {
	t        *testing.T
	root     string // [sandbox] root; empty for none
	ini      string // the ini file written by writeINI
	staging  string // what Env.Staging returns
	vars     map[string]string
	hostname string
	systemd  systemd.Host // the machine's systemd: none unless a test fakes one
}

// newFixture writes the sample ini plus [sandbox] root=<tempdir> and a fake
// release directory.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{t: t, root: t.TempDir(), staging: fakeStaging(t), vars: map[string]string{}, hostname: "nowhere.invalid"}
	f.writeINI(sample(t) + "\n[sandbox]\nroot=" + f.root + "\n")
	return f
}

func (f *fixture) writeINI(data string) {
	f.t.Helper()
	if f.ini == "" {
		f.ini = filepath.Join(f.t.TempDir(), "tungsten.ini")
	}
	if err := os.WriteFile(f.ini, []byte(data), 0o600); err != nil {
		f.t.Fatal(err)
	}
}

// editINI replaces old by new in the ini file, which must hold old once.
func (f *fixture) editINI(old, new string) {
	f.t.Helper()
	data, err := os.ReadFile(f.ini)
	if err != nil {
		f.t.Fatal(err)
	}
	if strings.Count(string(data), old) != 1 {
		f.t.Fatalf("%s holds %q %d times, want once", f.ini, old, strings.Count(string(data), old))
	}
	f.writeINI(strings.Replace(string(data), old, new, 1))
}

func (f *fixture) env(out, errOut *bytes.Buffer) Env {
	return Env{
		Out: out, Err: errOut,
		Getenv: func(k string) string { return f.vars[k] },
		Hostname: func() (string, error) {
			if f.hostname == "" {
				return "", errors.New("no host name in this test")
			}
			return f.hostname, nil
		},
		Staging: func() (string, error) { return f.staging, nil },
		Name:    "tpm",
		Systemd: f.systemd,
	}
}

func (f *fixture) run(args ...string) result {
	f.t.Helper()
	var out, errOut bytes.Buffer
	code := Main(context.Background(), args, f.env(&out, &errOut))
	return result{code: code, out: out.String(), err: errOut.String()}
}

// mustRun runs tpm and fails the test unless it exits 0.
func (f *fixture) mustRun(args ...string) result {
	f.t.Helper()
	r := f.run(args...)
	if r.code != ExitOK {
		f.t.Fatalf("tpm %s: %s", strings.Join(args, " "), r)
	}
	return r
}

func (f *fixture) clusterDir(host string) string { return filepath.Join(f.root, host, "continuent") }
func (f *fixture) xsiteDir(host string) string   { return filepath.Join(f.root, host, "replicator") }

// rootEntries lists what the sandbox root holds.
func (f *fixture) rootEntries() []string {
	f.t.Helper()
	entries, err := os.ReadDir(f.root)
	if err != nil {
		f.t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func (f *fixture) requireEmptyRoot() {
	f.t.Helper()
	if names := f.rootEntries(); len(names) != 0 {
		f.t.Fatalf("a refused command wrote %v under %s", names, f.root)
	}
}

func sample(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(sampleINI)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// fakeStaging makes a release directory whose programs print their name and
// CARBIDE_HOME.
func fakeStaging(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	progs := append(install.Programs(config.ClusterInstall), install.Programs(config.CrossSiteInstall)...)
	for _, p := range progs {
		script := "#!/bin/sh\necho " + p + " $CARBIDE_HOME \"$@\"\n"
		if err := os.WriteFile(filepath.Join(bin, p), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func readManifest(t *testing.T, home string) *install.Manifest {
	t.Helper()
	m, err := install.ReadManifest(home)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// --- validate ---

func TestValidateSample(t *testing.T) {
	f := newFixture(t)
	r := f.mustRun("validate", "--ini", sampleINI)
	out := lines(r.out)
	if len(out) != 1 || !strings.HasPrefix(out[0], "OK: ") || !strings.Contains(out[0], "2 site(s) (east, west)") || !strings.Contains(out[0], "6 host(s)") {
		t.Fatalf("want one OK line naming 2 sites and 6 hosts:\n%s", r)
	}
	if r.err != "" {
		t.Fatalf("validate of the sample wrote to Err:\n%s", r.err)
	}
}

func TestValidateInvalid(t *testing.T) {
	files, _ := filepath.Glob("../../internal/config/testdata/invalid/*.ini")
	if len(files) == 0 {
		t.Fatal("no broken ini files under internal/config/testdata/invalid")
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			want := wantLine(t, file)
			f := newFixture(t)
			r := f.run("validate", "--ini", file)
			if r.code != ExitProblems {
				t.Fatalf("want exit 1:\n%s", r)
			}
			var errs []string
			for _, l := range r.errLines() {
				if strings.HasPrefix(l, "ERROR: ") {
					errs = append(errs, l)
				}
			}
			if len(errs) != 1 || !strings.Contains(errs[0], want) {
				t.Fatalf("want exactly one ERROR line containing\n  %s\ngot:\n%s", want, r)
			}
			if strings.Contains(r.out, "OK") {
				t.Fatalf("an invalid ini printed OK:\n%s", r)
			}
		})
	}
}

func wantLine(t *testing.T, file string) string {
	t.Helper()
	for _, l := range strings.Split(readFile(t, file), "\n") {
		if w, ok := strings.CutPrefix(l, "# want: "); ok {
			return w
		}
	}
	t.Fatalf("%s has no '# want:' line", file)
	return ""
}

func TestUsageErrors(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"validate", "--bogus"}, "-bogus"},
		{[]string{"validate", "--ini", f.ini, "extra"}, `unexpected argument "extra"`},
		{[]string{"install", "--ini", f.ini, "--host", "east1", "east2"}, `unexpected argument "east2"`},
		{[]string{"install", "--ini", f.ini, "--host", "east1", "--only", "manager"}, `--only takes cluster or replicator, not "manager"`},
		{[]string{"install", "--ini", f.ini, "--host", "east1", "--replace-release"}, "--replace-release belongs to tpm update"},
		{[]string{"uninstall", "--ini", f.ini, "--host", "east1", "--only", "manager"}, `--only takes cluster or replicator, not "manager"`},
		{[]string{"uninstall", "--ini", f.ini, "--all", "--host", "east1", "--i-am-sure"}, "--host is not used with --all"},
		{[]string{"uninstall", "--ini", f.ini, "--i-am-sure", "east1"}, `unexpected argument "east1"`},
		{[]string{"uninstall", "--ini", f.ini, "--no-restart"}, "--no-restart is not an option of tpm uninstall; it belongs to tpm install and tpm update"},
		{[]string{"query"}, "query takes one of"},
		{[]string{"query", "colour"}, `unknown query "colour"`},
		{[]string{"reverse", "--mask"}, "-mask"},
	} {
		r := f.run(tc.args...)
		if r.code != ExitUsage || len(r.errLines()) != 1 || !strings.Contains(r.err, tc.want) || r.out != "" {
			t.Errorf("tpm %s: want exit 2 and one line on Err containing %q:\n%s", strings.Join(tc.args, " "), tc.want, r)
		}
	}
	f.requireEmptyRoot()
	if r := f.run(); r.code != ExitUsage || !strings.Contains(r.err, "usage: tpm") {
		t.Errorf("tpm without a command: %s", r)
	}
	if r := f.run("help"); r.code != ExitOK || !strings.Contains(r.out, "usage: tpm") || r.err != "" {
		t.Errorf("tpm help: %s", r)
	}
}

func TestValidateMissingINI(t *testing.T) {
	f := newFixture(t)
	missing := filepath.Join(t.TempDir(), "nope.ini")
	r := f.run("validate", "--ini", missing)
	if r.code != ExitProblems || len(r.errLines()) != 1 || !strings.Contains(r.err, missing+" does not exist") {
		t.Fatalf("want exit 1 and one sentence saying %s does not exist:\n%s", missing, r)
	}
}

func TestINIFromEnvironment(t *testing.T) {
	f := newFixture(t)
	f.vars[install.EnvINI] = f.ini
	r := f.mustRun("validate")
	if !strings.HasPrefix(r.out, "OK: "+f.ini+": ") {
		t.Fatalf("validate without --ini must read $%s (%s):\n%s", install.EnvINI, f.ini, r)
	}
	// --ini wins over the environment.
	f.vars[install.EnvINI] = filepath.Join(t.TempDir(), "nope.ini")
	if r := f.run("validate", "--ini", f.ini); r.code != ExitOK {
		t.Fatalf("--ini must win over $%s:\n%s", install.EnvINI, r)
	}
	if r := f.run("validate"); r.code != ExitProblems || !strings.Contains(r.err, "nope.ini does not exist") {
		t.Fatalf("validate must report the missing $%s file:\n%s", install.EnvINI, r)
	}
}

// --- install ---

func TestInstallHosts(t *testing.T) {
	f := newFixture(t)
	r := f.mustRun("install", "--ini", f.ini, "--host", "east1,west2")
	if got := f.rootEntries(); !slices.Equal(got, []string{"east1", "west2"}) {
		t.Fatalf("installed %v under the sandbox root, want east1 and west2 only", got)
	}
	for _, host := range []string{"east1", "west2"} {
		for _, in := range []struct {
			home   string
			kind   config.InstallKind
			prefix string
		}{{f.clusterDir(host), config.ClusterInstall, ""}, {f.xsiteDir(host), config.CrossSiteInstall, "mm"}} {
			for _, p := range install.Programs(in.kind) {
				name := install.CommandName(in.prefix, p)
				st, err := os.Stat(filepath.Join(in.home, "bin", name))
				if err != nil {
					t.Errorf("%s %s install: %v", host, in.kind, err)
					continue
				}
				if st.Mode().Perm()&0o111 == 0 {
					t.Errorf("%s is not executable (mode %v)", filepath.Join(in.home, "bin", name), st.Mode())
				}
			}
			st, err := os.Stat(install.INIPath(in.home))
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode().Perm() != 0o600 {
				t.Errorf("%s has mode %v, want 0600 (it holds passwords)", install.INIPath(in.home), st.Mode().Perm())
			}
			m := readManifest(t, in.home)
			if m.Host != host || m.Kind != in.kind || m.Staging != f.staging || !slices.Equal(m.INI, []string{f.ini}) {
				t.Errorf("manifest of %s = %+v, want host %s, kind %s, staging %s, ini %s", in.home, m, host, in.kind, f.staging, f.ini)
			}
			if !strings.Contains(r.out, host+": "+string(in.kind)+" install in "+in.home) {
				t.Errorf("no progress line for the %s install of %s:\n%s", in.kind, host, r.out)
			}
		}
	}
	// The wrappers run the release's programs bound to their install.
	got, err := exec.Command(filepath.Join(f.xsiteDir("west2"), "bin", "mm_trepctl"), "status").CombinedOutput()
	if err != nil || string(got) != "trepctl "+f.xsiteDir("west2")+" status\n" {
		t.Fatalf("mm_trepctl status: err=%v out=%q", err, got)
	}
	b, err := install.Open(f.xsiteDir("west2"))
	if err != nil {
		t.Fatal(err)
	}
	if b.Host.Name != "west2" || b.Install.Services[0].Name != "east" {
		t.Fatalf("install.Open = host %s services %+v", b.Host.Name, b.Install.Services)
	}
}

func TestInstallPicksThisHost(t *testing.T) {
	f := newFixture(t)
	f.hostname = "west3.example.com"
	f.mustRun("install", "--ini", f.ini)
	if got := f.rootEntries(); !slices.Equal(got, []string{"west3"}) {
		t.Fatalf("install with host name west3.example.com wrote %v, want west3", got)
	}
	if m := readManifest(t, f.clusterDir("west3")); m.Host != "west3" {
		t.Fatalf("manifest host %s, want west3", m.Host)
	}
}

func TestInstallHostFromEnvironment(t *testing.T) {
	f := newFixture(t)
	f.vars[install.EnvHost] = "east2"
	f.mustRun("install", "--ini", f.ini)
	if got := f.rootEntries(); !slices.Equal(got, []string{"east2"}) {
		t.Fatalf("install with $%s=east2 wrote %v", install.EnvHost, got)
	}
}

func TestInstallRefuses(t *testing.T) {
	for _, tc := range []struct {
		name     string
		hostname string
		args     []string
		want     []string
	}{
		{"unknown machine", "db9.example.com", nil, []string{"db9.example.com", "--host"}},
		{"no host name", "", nil, []string{"--host"}},
		{"unknown host", "east1", []string{"--host", "east9"}, []string{"host east9 is not in the configuration"}},
		{"one unknown host of two", "east1", []string{"--host", "east1,east9"}, []string{"host east9 is not in the configuration"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.hostname = tc.hostname
			r := f.run(append([]string{"install", "--ini", f.ini}, tc.args...)...)
			if r.code != ExitProblems || len(r.errLines()) != 1 {
				t.Fatalf("want exit 1 and one line on Err:\n%s", r)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.err, w) {
					t.Errorf("error does not name %q:\n%s", w, r.err)
				}
			}
			f.requireEmptyRoot()
		})
	}
}

func TestInstallOnlyReplicator(t *testing.T) {
	f := newFixture(t)
	f.mustRun("install", "--ini", f.ini, "--host", "east1", "--only", "replicator")
	if _, err := os.Stat(f.clusterDir("east1")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("--only replicator wrote the cluster install (%v)", err)
	}
	if m := readManifest(t, f.xsiteDir("east1")); m.Kind != config.CrossSiteInstall {
		t.Fatalf("cross-site manifest kind %s", m.Kind)
	}
	f2 := newFixture(t)
	f2.mustRun("install", "--ini", f2.ini, "--host", "east1", "--only", "cluster")
	if _, err := os.Stat(f2.xsiteDir("east1")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("--only cluster wrote the cross-site install (%v)", err)
	}
}

func TestInstallBadRelease(t *testing.T) {
	f := newFixture(t)
	f.staging = t.TempDir() // no bin/
	r := f.run("install", "--ini", f.ini, "--host", "east1,west1")
	if r.code != ExitProblems || !strings.Contains(r.err, "has no bin/ directory") {
		t.Fatalf("want exit 1 saying the release has no bin/:\n%s", r)
	}
	f.requireEmptyRoot()
}

// TestInstallProfile installs without a sandbox, into directories under a
// temporary folder, so the profile-script is used.
func TestInstallProfile(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	bashrc := filepath.Join(home, ".bashrc")

	// In a sandbox, install never touches the profile.
	f := newFixture(t)
	f.mustRun("install", "--ini", f.ini, "--host", "east1")
	if _, err := os.Stat(bashrc); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("an install with [sandbox] root touched %s (%v)", bashrc, err)
	}

	dirs := t.TempDir()
	cluster, xsite := filepath.Join(dirs, "continuent"), filepath.Join(dirs, "replicator")
	ini := strings.Replace(sample(t), "install-directory=/opt/continuent", "install-directory="+cluster, 1)
	ini = strings.Replace(ini, "home-directory=/opt/replicator", "home-directory="+xsite, 1)
	f.root = ""
	f.writeINI(ini)

	f.mustRun("install", "--ini", f.ini, "--host", "east1", "--no-profile")
	if _, err := os.Stat(bashrc); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("install --no-profile touched %s (%v)", bashrc, err)
	}
	if _, err := os.Stat(install.EnvPath(xsite)); err != nil {
		t.Fatalf("install --no-profile did not install: %v", err)
	}

	for range 2 { // the second install adds nothing
		f.mustRun("install", "--ini", f.ini, "--host", "east1")
	}
	got := readFile(t, bashrc)
	for _, home := range []string{cluster, xsite} {
		if strings.Count(got, install.EnvPath(home)) != 1 {
			t.Errorf("%s must source %s once:\n%s", bashrc, install.EnvPath(home), got)
		}
	}
}
