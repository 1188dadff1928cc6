package tpm

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/carbidedb/carbide/internal/certs"
	"github.com/carbidedb/carbide/internal/config"
	"github.com/carbidedb/carbide/internal/install"
)

// installOptions are tpm install's and tpm update's flags.
type installOptions struct {
	ini, hosts         string
	all                bool
	kinds              []config.InstallKind
	noProfile          bool
	replace, noRestart bool
	update             bool
	systemdDir         string
}

// installJob is one host's install (or update) of kinds from staging.
type installJob struct {
	host    string
	kinds   []config.InstallKind
	staging string
}

// install is tpm install, and tpm update when update is set: flags, the
// configuration, every host checked before anything is written, then each
// host's installs written (and, for update, its replicators restarted;
// for install with start or start-and-report, the agents started).
func (r *runner) install(ctx context.Context, args []string, update bool) int {
	o, code, ok := r.installFlags(args, update)
	if !ok {
		return code
	}
	if err := r.bind(); err != nil {
		r.errorf("%v", err)
		return ExitProblems
	}
	if r.bound != nil && o.kinds == nil {
		o.kinds = []config.InstallKind{r.bound.Manifest.Kind} // mm_tpm touches the cross-site install only
	}
	files := r.iniFiles(o.ini)
	cfg, ok := r.load(files)
	if !ok {
		return ExitProblems
	}
	jobs, err := r.installJobs(cfg, o)
	if err != nil {
		r.errorf("%v", err)
		return ExitProblems
	}
	target, err := r.unitTarget(cfg, o, jobs)
	if err != nil {
		r.errorf("%v", err)
		return ExitUsage
	}
	var written []*config.Install
	for _, j := range jobs {
		opts := install.Options{Staging: j.staging, INI: absAll(files), Kinds: j.kinds, Profile: !o.noProfile, Out: r.env.Out}
		ins, err := install.Install(cfg, j.host, opts)
		if err != nil {
			r.errorf("%v", err)
			return ExitProblems
		}
		written = append(written, ins...)
		if !r.writeUnits(ctx, target, ins, update) {
			return ExitProblems
		}
		if update && !o.noRestart {
			if !r.restartReplicators(cfg, ins) {
				return ExitProblems
			}
		}
	}
	if update {
		r.controlTLSStep(ctx, cfg, written)
	}
	if !update && !r.startAgents(ctx, cfg, lastByDir(written)) {
		return ExitProblems
	}
	return ExitOK
}

// installFlags parses tpm install's or update's flags; when it returns
// false the command ends with the code (-help too).
func (r *runner) installFlags(args []string, update bool) (installOptions, int, bool) {
	o := installOptions{update: update}
	fs := flag.NewFlagSet(r.cmd, flag.ContinueOnError)
	fs.StringVar(&o.ini, "ini", "", "ini files, comma-separated")
	fs.StringVar(&o.hosts, "host", "", "hosts to install, comma-separated (default: this host)")
	fs.BoolVar(&o.all, "all", false, "install every host of the configuration on this machine")
	only := fs.String("only", "", "install only the cluster or the replicator (cross-site) install")
	fs.BoolVar(&o.noProfile, "no-profile", false, "do not add env.sh to the profile-script")
	fs.BoolVar(&o.replace, "replace-release", false, "point the install at this release (update only)")
	fs.BoolVar(&o.noRestart, "no-restart", false, "leave running replicators alone (update only)")
	fs.StringVar(&o.systemdDir, "systemd-dir", "", "write the agents' systemd units into this directory")
	if !r.parse(fs, args) {
		return o, r.parseExit, false
	}
	switch {
	case o.replace && !update:
		r.errorf("--replace-release belongs to tpm update; tpm install always uses this release")
		return o, ExitUsage, false
	case o.noRestart && !update:
		r.errorf("--no-restart belongs to tpm update; tpm install restarts nothing")
		return o, ExitUsage, false
	}
	kinds, ok := r.hostFlags(fs, "installs", o.all, &o.systemdDir, *only)
	if !ok {
		return o, ExitUsage, false
	}
	o.kinds = kinds
	return o, ExitOK, true
}

// hostFlags checks and completes the flags tpm install, update and
// uninstall share: --all excludes --host, --systemd-dir becomes absolute,
// --only gives the install kinds (nil: every one). verb says what --all
// does ("installs"). On a problem it says so and returns false.
func (r *runner) hostFlags(fs *flag.FlagSet, verb string, all bool, systemdDir *string, only string) ([]config.InstallKind, bool) {
	if all && isSet(fs, "host") {
		r.errorf("--host is not used with --all: --all %s every host of the configuration, so give one of them", verb)
		return nil, false
	}
	if *systemdDir != "" {
		abs, err := filepath.Abs(*systemdDir)
		if err != nil {
			r.errorf("--systemd-dir %s: %v", *systemdDir, err)
			return nil, false
		}
		*systemdDir = abs
	}
	kinds, err := onlyKinds(only)
	if err != nil {
		r.errorf("%v", err)
		return nil, false
	}
	return kinds, true
}

// installJobs checks every host before anything is written and returns
// what to install where. Without --replace-release, update keeps each
// install on the release its own manifest names.
func (r *runner) installJobs(cfg *config.Config, o installOptions) ([]installJob, error) {
	hosts, err := r.hosts(cfg, o.hosts, o.all)
	if err != nil {
		return nil, err
	}
	staging, err := r.env.Staging()
	if err != nil {
		return nil, err
	}
	plan := cfg.Plan()
	var jobs []installJob
	for _, name := range hosts {
		h, _ := plan.Host(name)
		if !o.update {
			jobs = append(jobs, installJob{name, o.kinds, staging})
			continue
		}
		n := len(jobs)
		for _, in := range h.Installs() {
			if o.kinds != nil && !slices.Contains(o.kinds, in.Kind) {
				continue
			}
			m, err := install.ReadManifest(in.Dir)
			if err != nil {
				return nil, fmt.Errorf("host %s has no %s install in %s (%v); run tpm install first", name, in.Kind, in.Dir, err)
			}
			j := installJob{name, []config.InstallKind{in.Kind}, staging}
			if !o.replace && m.Staging != "" {
				j.staging = m.Staging
			}
			jobs = append(jobs, j)
		}
		if len(jobs) == n { // no install of the kinds asked: Install says so
			jobs = append(jobs, installJob{name, o.kinds, staging})
		}
	}
	for _, j := range jobs {
		if st, err := os.Stat(filepath.Join(j.staging, "bin")); err != nil || !st.IsDir() {
			hint := "run make build there first"
			if o.update {
				hint = "run make build there, or tpm update --replace-release from a built release"
			}
			return nil, fmt.Errorf("release directory %s of host %s has no bin/ directory; %s", j.staging, j.host, hint)
		}
	}
	return jobs, nil
}

// restartReplicators restarts the running replicator of each updated
// install, so that it runs with the new configuration (new services, new
// settings) as tpm update does in the guide's procedures; its services
// come back online. Managers and connectors keep running: `manager
// restart` and `connector restart` pick the update up when convenient.
func (r *runner) restartReplicators(cfg *config.Config, ins []*config.Install) bool {
	for _, in := range ins {
		if !in.Replicator {
			continue
		}
		wrapper := filepath.Join(install.BinDir(in.Dir), install.CommandName(in.Settings.ExecutablePrefix, "replicator"))
		if err := exec.Command(wrapper, "status").Run(); err != nil {
			continue // not running (or not installed here): nothing to restart
		}
		out, err := exec.Command(wrapper, "restart").CombinedOutput()
		if err != nil {
			r.errorf("%s restart: %v: %s", wrapper, err, strings.TrimSpace(string(out)))
			return false
		}
		state := r.waitServices(cfg, in)
		fmt.Fprintf(r.env.Out, "restarted the replicator of %s (%s) with the new configuration: %s\n", in.Host, in.Dir, state)
	}
	return true
}

func absAll(files []string) []string {
	var out []string
	for _, f := range files {
		for _, p := range strings.Split(f, ",") {
			if p = strings.TrimSpace(p); p == "" {
				continue
			}
			if a, err := filepath.Abs(p); err == nil {
				p = a
			}
			out = append(out, p)
		}
	}
	return out
}

// checkCerts loads the certificates of every install with thl-ssl=true,
// each set of files once, and prints each problem.
func (r *runner) checkCerts(cfg *config.Config) bool {
	seen := map[string]bool{}
	ok := true
	for _, name := range cfg.Plan().HostNames() {
		h, _ := cfg.Plan().Host(name)
		for _, in := range h.Installs() {
			if in.Settings.ControlTLSOnly && !in.Settings.THLSSL {
				fmt.Fprintf(r.env.Err, "ERROR: control-tls-only=true (%s install of %s) needs thl-ssl=true: the control ports' TLS is the cluster's SSL\n", in.Kind, name)
				ok = false
			}
			if !in.Settings.THLSSL {
				continue
			}
			st := in.Settings
			files := strings.Join([]string{st.SSLCert, st.SSLKey, st.SSLCA, st.KeystorePath, st.KeystorePassword, st.TruststorePath, st.TruststorePassword}, "\x00")
			if seen[files] {
				continue // the same material, read once
			}
			seen[files] = true
			if _, err := certs.Load(st); err != nil {
				fmt.Fprintf(r.env.Err, "ERROR: thl-ssl=true (%s install of %s): %v\n", in.Kind, name, err)
				ok = false
			}
		}
	}
	return ok
}
