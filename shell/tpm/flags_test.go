package tpm

import (
	"context"
	"flag"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/carbidedb/carbide/internal/testutil"
)

// effective lists every option tpm carries out, keyed "COMMAND --NAME",
// with the tests that show it acting, or a note saying where it acts when
// no test can (note: …). TestEveryFlag fails for an option defined and not
// listed, so a new option must be wired (and tested) or refused.
var effective = map[string]string{
	"validate --ini":            "TestValidateSample, TestValidateInvalid",
	"validate --check-db":       "TestCheckDB",
	"validate --timeout":        "TestCheckDB, TestValidateTimeoutNeedsCheckDB",
	"install --ini":             "TestInstallHosts",
	"install --host":            "TestInstallHosts",
	"install --all":             "TestInstallAll",
	"install --only":            "TestInstallOnlyReplicator",
	"install --no-profile":      "TestInstallProfile",
	"install --replace-release": "note: refused with install (tpm install always uses this release): TestUsageErrors",
	"install --no-restart":      "note: refused with install (tpm install restarts nothing): TestInstallRefusesUpdateOptions",
	"install --systemd-dir":     "TestInstallWritesUnits, TestUnitsVerify, TestSystemdDirTakesOneHost",
	"update --systemd-dir":      "TestInstallWritesUnits",
	"update --ini":              "TestUpdateRewritesConfiguration",
	"update --host":             "TestUpdateRewritesConfiguration",
	"update --all":              "TestInstallAll",
	"update --only":             "TestBoundToCrossSiteInstall",
	"update --no-profile":       "TestInstallProfile",
	"update --replace-release":  "TestUpdateKeepsEachInstallsRelease",
	"update --no-restart":       "note: update restarts each running replicator unless --no-restart (restartReplicators in install); no test runs a replicator",
	"uninstall --ini":           "TestUninstallRemovesUnitsAndDirectory",
	"uninstall --host":          "TestUninstallSandbox",
	"uninstall --all":           "TestUninstallSandbox",
	"uninstall --only":          "TestUninstallUnitsWithTheDirectory, TestUninstallSandbox",
	"uninstall --systemd-dir":   "TestUninstallSystemdDir",
	"uninstall --i-am-sure":     "TestUninstallRefusedWithoutIAmSure, TestUninstallRemovesUnitsAndDirectory",
	"reverse --ini":             "TestReverse",
	"reverse --unmasked":        "TestReverse",
	"cert --ini":                "TestCertWritesAndPrintsINILines",
	"cert --dir":                "TestCertRefusesToOverwrite",
	"cert --password":           "TestCertPassword",
	"cert --force":              "TestCertRefusesToOverwrite",
}

// commandFlags returns the flag set cmd defines (nil for none): run with
// -help, a command parses its options and does nothing else.
func commandFlags(t *testing.T, cmd string) *flag.FlagSet {
	t.Helper()
	r := &runner{env: Env{Out: io.Discard, Err: io.Discard}, cmd: cmd}
	commands()[cmd](r, context.Background(), []string{"-help"})
	return r.flags
}

// TestEveryFlag walks the options each tpm command defines and checks that
// each acts (effective, with an existing test or a note), and that an
// option of one command given to another is refused with one sentence
// naming both, writing nothing.
func TestEveryFlag(t *testing.T) {
	all := map[string]*flag.Flag{}
	defined := map[string]bool{}
	for cmd := range commands() {
		fs := commandFlags(t, cmd)
		if fs == nil {
			continue
		}
		fs.VisitAll(func(fl *flag.Flag) {
			key := cmd + " --" + fl.Name
			all[fl.Name], defined[key] = fl, true
			names, ok := effective[key]
			switch {
			case !ok:
				t.Errorf("tpm %s defines --%s, which is neither shown acting (effective) nor refused", cmd, fl.Name)
			case strings.HasPrefix(names, "note: "):
				if _, tests, ok := strings.Cut(names, "): "); ok {
					testutil.RequireTests(t, "effective "+key, tests)
				}
			default:
				testutil.RequireTests(t, "effective "+key, names)
			}
		})
	}
	for key := range effective {
		if !defined[key] {
			t.Errorf("effective lists %q, which tpm does not define", key)
		}
	}
	f := newFixture(t)
	for cmd := range commands() {
		fs := commandFlags(t, cmd)
		for name, fl := range all {
			if fs != nil && fs.Lookup(name) != nil {
				continue
			}
			args := []string{cmd, "--" + name}
			if b, ok := fl.Value.(interface{ IsBoolFlag() bool }); !ok || !b.IsBoolFlag() {
				args = append(args, "1")
			}
			if cmd == "query" {
				args = append(args, "version")
			}
			r := f.run(args...)
			if r.code != ExitUsage || len(r.errLines()) != 1 || !strings.Contains(r.err, "--"+name) || !strings.Contains(r.err, "tpm "+cmd) || r.out != "" {
				t.Errorf("tpm %s: want exit 2 and one line naming --%s and tpm %s:\n%s", strings.Join(args, " "), name, cmd, r)
			}
		}
	}
	f.requireEmptyRoot()
}

// TestValidateTimeoutNeedsCheckDB: --timeout without --check-db was
// ignored; it is refused.
func TestValidateTimeoutNeedsCheckDB(t *testing.T) {
	f := newFixture(t)
	r := f.run("validate", "--ini", f.ini, "--timeout", "9s")
	if r.code != ExitUsage || r.err != "tpm validate: --timeout is not used without --check-db: it bounds the connections to the databases, which only --check-db makes\n" || r.out != "" {
		t.Errorf("validate --timeout: %s", r)
	}
}

// TestInstallAll: --all installs every host; with --host as well (which it
// used to ignore) it is refused and nothing is written.
func TestInstallAll(t *testing.T) {
	for _, cmd := range []string{"install", "update"} {
		f := newFixture(t)
		r := f.run(cmd, "--ini", f.ini, "--all", "--host", "east1")
		if r.code != ExitUsage || r.err != "tpm "+cmd+": --host is not used with --all: --all installs every host of the configuration, so give one of them\n" {
			t.Errorf("%s --all --host: %s", cmd, r)
		}
		f.requireEmptyRoot()
	}
	f := newFixture(t)
	f.mustRun("install", "--ini", f.ini, "--all", "--no-profile")
	if got := f.rootEntries(); !slices.Equal(got, sampleHosts) {
		t.Fatalf("install --all wrote %v, want %v", got, sampleHosts)
	}
	f.mustRun("update", "--ini", f.ini, "--all", "--no-profile", "--no-restart")
}

// TestInstallRefusesUpdateOptions: install refuses update's options and
// writes nothing.
func TestInstallRefusesUpdateOptions(t *testing.T) {
	f := newFixture(t)
	for _, opt := range []string{"--no-restart", "--replace-release"} {
		r := f.run("install", "--ini", f.ini, "--host", "east1", opt)
		if r.code != ExitUsage || !strings.Contains(r.err, opt+" belongs to tpm update") {
			t.Errorf("install %s: %s", opt, r)
		}
	}
	r := f.run("query", "--ini", f.ini, "staging")
	if r.code != ExitUsage || r.err != "tpm query: --ini is not an option of tpm query: query takes none; use query staging or query version\n" {
		t.Errorf("query --ini: %s", r)
	}
	f.requireEmptyRoot()
}
