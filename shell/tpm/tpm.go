package tpm

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"

	"github.com/carbidedb/carbide/internal/certs"
	"github.com/carbidedb/carbide/internal/config"
	"github.com/carbidedb/carbide/internal/install"
	"github.com/carbidedb/carbide/internal/security"
	"github.com/carbidedb/carbide/rpc/gen/replicatorpb"
)

// Exit codes.
const (
	ExitOK       = 0
	ExitProblems = 1
	ExitUsage    = 2
)

// Env is what tpm takes from its surroundings; tests inject their own.
type Env struct {
	Out, Err io.Writer
	Getenv   func(string) string
	Hostname func() (string, error)
	Staging  func() (string, error)
	// Name is how the program was called (tpm, mm_tpm) for messages.
	Name string
}

// OSEnv returns the Env of the running process.
func OSEnv() Env {
	return Env{Out: os.Stdout, Err: os.Stderr, Getenv: os.Getenv, Hostname: os.Hostname, Staging: install.Staging, Name: "tpm"}
}

const usage = `usage: tpm COMMAND [options]

commands:
  validate [--ini FILES] [--check-db [--timeout 5s]]
                                         check the configuration (and every host's database)
  install  [--ini FILES] [--host H,...|--all] [--only cluster|replicator] [--no-profile]
                                         write this host's install directories
  update   [install's options] [--replace-release] [--no-restart]
                                         rewrite them from the (edited) configuration,
                                         and restart the running replicators with it
  query staging                          print the release (staging) directory
  query version                          print the release version
  reverse  [--ini FILES] [--unmasked]    print the configuration back, passwords masked
  cert     [--ini FILES] [--dir DIR] [--password P] [--force]
                                         write a cluster CA and one member certificate for
                                         every host (PEM, keystore.jks, truststore.ts) into
                                         DIR (default: the ini file's directory)
  help                                   this text

--ini takes a comma-separated list of files; without it tpm reads $CARBIDE_INI,
else /etc/tungsten/tungsten.ini. An option a command does not take or carry
out is refused and nothing is written. Exit status: 0 ok, 1 problems found,
2 usage.
`

// Version is the release version tpm reports.
var Version = "carbide 0.1.0"

// Main runs tpm with args (without the program name) and returns the exit code.
func Main(ctx context.Context, args []string, env Env) int {
	if env.Name == "" {
		env.Name = "tpm"
	}
	if len(args) == 0 {
		fmt.Fprint(env.Err, usage)
		return ExitUsage
	}
	cmd, rest := args[0], args[1:]
	r := &runner{env: env, cmd: cmd}
	switch cmd {
	case "help", "-h", "--help", "-help":
		fmt.Fprint(env.Out, usage)
		return ExitOK
	}
	if c, ok := commands()[cmd]; ok {
		return c(r, ctx, rest)
	}
	fmt.Fprintf(env.Err, "%s: unknown command %q; run %s help for the list of commands\n", env.Name, cmd, env.Name)
	return ExitUsage
}

type runner struct {
	env   Env
	cmd   string
	bound *install.Bound // the install CARBIDE_HOME names, if any
	// parseExit is the exit code after parse returned false: 0 for -help.
	parseExit int
	// flags is the flag set parse was given, for the tests' flag walk.
	flags *flag.FlagSet
}

func (r *runner) errorf(format string, args ...any) {
	fmt.Fprintf(r.env.Err, "%s %s: %s\n", r.env.Name, r.cmd, fmt.Sprintf(format, args...))
}

// parse parses flags; on error it prints one sentence and returns false.
func (r *runner) parse(fs *flag.FlagSet, args []string) bool {
	fs.SetOutput(io.Discard)
	r.flags = fs
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(r.env.Out, usage)
			r.parseExit = ExitOK
			return false
		}
		msg := err.Error()
		if name, ok := strings.CutPrefix(msg, "flag provided but not defined: -"); ok {
			msg = notAnOption(r.cmd, name)
		}
		r.errorf("%s; run %s help", msg, r.env.Name)
		r.parseExit = ExitUsage
		return false
	}
	if fs.NArg() > 0 {
		r.errorf("unexpected argument %q; run %s help", fs.Arg(0), r.env.Name)
		r.parseExit = ExitUsage
		return false
	}
	return true
}

// bind reads the install CARBIDE_HOME names (mm_tpm, or tpm from an install's bin/).
func (r *runner) bind() error {
	home := r.env.Getenv(install.EnvHome)
	if home == "" {
		return nil
	}
	m, err := install.ReadManifest(home)
	if err != nil {
		return err
	}
	r.bound = &install.Bound{Home: home, Manifest: m}
	return nil
}

// iniFiles picks the ini files: --ini, else the bound install's, else
// $CARBIDE_INI, else the default path.
func (r *runner) iniFiles(flagValue string) []string {
	if flagValue != "" {
		return []string{flagValue}
	}
	if r.bound != nil {
		if len(r.bound.Manifest.INI) > 0 {
			return r.bound.Manifest.INI
		}
		return []string{install.INIPath(r.bound.Home)}
	}
	if v := r.env.Getenv(install.EnvINI); v != "" {
		return []string{v}
	}
	return []string{config.DefaultPath}
}

// load reads the configuration and prints its problems, one per line.
func (r *runner) load(files []string) (*config.Config, bool) {
	cfg, err := config.Load(files...)
	if err != nil {
		var probs config.Problems
		if errors.As(err, &probs) {
			for _, p := range probs {
				fmt.Fprintf(r.env.Err, "ERROR: %s\n", p)
			}
		} else {
			fmt.Fprintf(r.env.Err, "ERROR: %v\n", err)
		}
		return nil, false
	}
	return cfg, true
}

func (r *runner) validate(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	ini := fs.String("ini", "", "ini files, comma-separated")
	checkDB := fs.Bool("check-db", false, "connect to every host's database and check its settings")
	timeout := fs.Duration("timeout", 5*time.Second, "per-database connection timeout for --check-db")
	if !r.parse(fs, args) {
		return r.parseExit
	}
	if isSet(fs, "timeout") && !*checkDB {
		r.errorf("--timeout is not used without --check-db: it bounds the connections to the databases, which only --check-db makes")
		return ExitUsage
	}
	if err := r.bind(); err != nil {
		r.errorf("%v", err)
		return ExitProblems
	}
	files := r.iniFiles(*ini)
	cfg, ok := r.load(files)
	if !ok {
		return ExitProblems
	}
	if !r.checkCerts(cfg) {
		return ExitProblems
	}
	fmt.Fprintf(r.env.Out, "OK: %s: %s\n", strings.Join(files, ","), summary(cfg))
	if !*checkDB {
		return ExitOK
	}
	findings := CheckDatabases(ctx, cfg, *timeout)
	failed, warnings := false, 0
	for _, f := range findings {
		fmt.Fprintln(r.env.Out, f)
		failed = failed || f.Level == LevelError
		if f.Level == LevelWarn {
			warnings++
		}
	}
	if failed {
		return ExitProblems
	}
	if warnings > 0 {
		fmt.Fprintf(r.env.Out, "OK: the databases of %d hosts pass every check, with %d warning(s) above\n", len(databaseHosts(cfg)), warnings)
		return ExitOK
	}
	fmt.Fprintf(r.env.Out, "OK: the databases of %d hosts meet every check\n", len(databaseHosts(cfg)))
	return ExitOK
}

func summary(cfg *config.Config) string {
	var sites, links []string
	for _, s := range cfg.Services {
		if s.Topology == config.TopologyClustered {
			sites = append(sites, s.Name)
		} else {
			links = append(links, s.Name)
		}
	}
	out := fmt.Sprintf("%d site(s) (%s), %d host(s)", len(sites), strings.Join(sites, ", "), len(cfg.Plan().Hosts))
	if len(links) > 0 {
		out += fmt.Sprintf(", %d cross-site service(s) (%s)", len(links), strings.Join(links, ", "))
	}
	return out
}

// hosts picks the hosts to install: --host, else the bound install's host,
// else $CARBIDE_HOST, else this machine's host name when the plan has it.
func (r *runner) hosts(cfg *config.Config, flagValue string, all bool) ([]string, error) {
	plan := cfg.Plan()
	names := plan.HostNames()
	var want []string
	switch {
	case all:
		return names, nil
	case flagValue != "":
		for _, h := range strings.Split(flagValue, ",") {
			if h = strings.TrimSpace(h); h != "" {
				want = append(want, h)
			}
		}
	case r.bound != nil:
		want = []string{r.bound.Manifest.Host}
	case r.env.Getenv(install.EnvHost) != "":
		want = []string{r.env.Getenv(install.EnvHost)}
	default:
		hn, err := r.env.Hostname()
		if err != nil {
			return nil, fmt.Errorf("cannot tell which host this is (%v); pass --host NAME", err)
		}
		short, _, _ := strings.Cut(hn, ".")
		for _, n := range []string{hn, short} {
			if slices.Contains(names, n) {
				return []string{n}, nil
			}
		}
		return nil, fmt.Errorf("this machine's host name %s is not a host of the configuration (hosts: %s); pass --host NAME or --all", hn, strings.Join(names, ", "))
	}
	for _, h := range want {
		if !slices.Contains(names, h) {
			return nil, fmt.Errorf("host %s is not in the configuration (hosts: %s)", h, strings.Join(names, ", "))
		}
	}
	return want, nil
}

func (r *runner) install(args []string, update bool) int {
	fs := flag.NewFlagSet(r.cmd, flag.ContinueOnError)
	ini := fs.String("ini", "", "ini files, comma-separated")
	hostFlag := fs.String("host", "", "hosts to install, comma-separated (default: this host)")
	all := fs.Bool("all", false, "install every host of the configuration on this machine")
	only := fs.String("only", "", "install only the cluster or the replicator (cross-site) install")
	noProfile := fs.Bool("no-profile", false, "do not add env.sh to the profile-script")
	replace := fs.Bool("replace-release", false, "point the install at this release (update only)")
	noRestart := fs.Bool("no-restart", false, "leave running replicators alone (update only)")
	if !r.parse(fs, args) {
		return r.parseExit
	}
	if *replace && !update {
		r.errorf("--replace-release belongs to tpm update; tpm install always uses this release")
		return ExitUsage
	}
	if *noRestart && !update {
		r.errorf("--no-restart belongs to tpm update; tpm install starts nothing")
		return ExitUsage
	}
	if *all && isSet(fs, "host") {
		r.errorf("--host is not used with --all: --all installs every host of the configuration, so give one of them")
		return ExitUsage
	}
	var kinds []config.InstallKind
	switch *only {
	case "":
	case string(config.ClusterInstall), string(config.CrossSiteInstall):
		kinds = []config.InstallKind{config.InstallKind(*only)}
	default:
		r.errorf("--only takes cluster or replicator, not %q", *only)
		return ExitUsage
	}
	if err := r.bind(); err != nil {
		r.errorf("%v", err)
		return ExitProblems
	}
	if r.bound != nil && kinds == nil {
		kinds = []config.InstallKind{r.bound.Manifest.Kind} // mm_tpm touches the cross-site install only
	}
	files := r.iniFiles(*ini)
	cfg, ok := r.load(files)
	if !ok {
		return ExitProblems
	}
	hosts, err := r.hosts(cfg, *hostFlag, *all)
	if err != nil {
		r.errorf("%v", err)
		return ExitProblems
	}
	staging, err := r.env.Staging()
	if err != nil {
		r.errorf("%v", err)
		return ExitProblems
	}
	plan := cfg.Plan()
	// Check every host before writing anything. Without --replace-release,
	// update keeps each install on the release its own manifest names.
	type job struct {
		host    string
		kinds   []config.InstallKind
		staging string
	}
	var jobs []job
	for _, name := range hosts {
		h, _ := plan.Host(name)
		if !update {
			jobs = append(jobs, job{name, kinds, staging})
			continue
		}
		n := len(jobs)
		for _, in := range h.Installs() {
			if kinds != nil && !slices.Contains(kinds, in.Kind) {
				continue
			}
			m, err := install.ReadManifest(in.Dir)
			if err != nil {
				r.errorf("host %s has no %s install in %s (%v); run tpm install first", name, in.Kind, in.Dir, err)
				return ExitProblems
			}
			j := job{name, []config.InstallKind{in.Kind}, staging}
			if !*replace && m.Staging != "" {
				j.staging = m.Staging
			}
			jobs = append(jobs, j)
		}
		if len(jobs) == n { // no install of the kinds asked: Install says so
			jobs = append(jobs, job{name, kinds, staging})
		}
	}
	for _, j := range jobs {
		if st, err := os.Stat(filepath.Join(j.staging, "bin")); err != nil || !st.IsDir() {
			hint := "run make build there first"
			if update {
				hint = "run make build there, or tpm update --replace-release from a built release"
			}
			r.errorf("release directory %s of host %s has no bin/ directory; %s", j.staging, j.host, hint)
			return ExitProblems
		}
	}
	for _, j := range jobs {
		opts := install.Options{Staging: j.staging, INI: absAll(files), Kinds: j.kinds, Profile: !*noProfile, Out: r.env.Out}
		ins, err := install.Install(cfg, j.host, opts)
		if err != nil {
			r.errorf("%v", err)
			return ExitProblems
		}
		if update && !*noRestart {
			if !r.restartReplicators(cfg, ins) {
				return ExitProblems
			}
		}
	}
	return ExitOK
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

func (r *runner) query(args []string) int {
	for _, a := range args {
		if strings.HasPrefix(a, "-") {
			r.errorf("%s is not an option of tpm query: query takes none; use query staging or query version", a)
			return ExitUsage
		}
	}
	if len(args) != 1 {
		r.errorf("query takes one of: staging, version")
		return ExitUsage
	}
	switch args[0] {
	case "staging":
		if err := r.bind(); err != nil {
			r.errorf("%v", err)
			return ExitProblems
		}
		if r.bound != nil && r.bound.Manifest.Staging != "" {
			fmt.Fprintln(r.env.Out, r.bound.Manifest.Staging)
			return ExitOK
		}
		s, err := r.env.Staging()
		if err != nil {
			r.errorf("%v", err)
			return ExitProblems
		}
		fmt.Fprintln(r.env.Out, s)
		return ExitOK
	case "version":
		fmt.Fprintln(r.env.Out, Version)
		return ExitOK
	}
	r.errorf("unknown query %q; use staging or version", args[0])
	return ExitUsage
}

func (r *runner) reverse(args []string) int {
	fs := flag.NewFlagSet("reverse", flag.ContinueOnError)
	ini := fs.String("ini", "", "ini files, comma-separated")
	unmasked := fs.Bool("unmasked", false, "print passwords")
	if !r.parse(fs, args) {
		return r.parseExit
	}
	if err := r.bind(); err != nil {
		r.errorf("%v", err)
		return ExitProblems
	}
	cfg, ok := r.load(r.iniFiles(*ini))
	if !ok {
		return ExitProblems
	}
	if err := cfg.Reverse(r.env.Out, !*unmasked); err != nil {
		r.errorf("%v", err)
		return ExitProblems
	}
	return ExitOK
}

// waitServices waits (30 s at most) until the restarted replicator's
// services have come online, so that what the operator runs next sees
// them ONLINE, and says how they came back. A slave that cannot reach
// any of its sources yet (a TLS mismatch while a rolling change is half
// done) is not waited for.
func (r *runner) waitServices(cfg *config.Config, in *config.Install) string {
	trepctl := install.CommandName(in.Settings.ExecutablePrefix, "trepctl")
	sec, err := security.New(in.Settings)
	if err != nil {
		return "back, but " + err.Error()
	}
	addr := net.JoinHostPort(cfg.Address(in.Host), strconv.Itoa(in.Settings.RMIPort))
	conn, err := grpc.NewClient(addr, sec.ControlDialOptions(nil)...)
	if err != nil {
		return "back, but " + err.Error()
	}
	defer conn.Close()
	c := replicatorpb.NewReplicatorClient(conn)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		rep, err := c.Services(ctx, &replicatorpb.ServicesRequest{})
		cancel()
		if err != nil {
			// restart returned once the control API answered: it does not
			// come and go, so there is nothing to wait for.
			return "back; its control API does not answer (" + err.Error() + ")"
		}
		going, failed := 0, ""
		var unreachable []string
		for _, s := range rep.GetServices() {
			switch s.GetStateKind() {
			case replicatorpb.ReplicatorState_REPLICATOR_STATE_GOING_ONLINE:
				going++
				for _, f := range s.GetFields() {
					if f.GetName() == "masterConnectError" {
						unreachable = append(unreachable, fmt.Sprintf("%s cannot reach its sources yet (%s)", s.GetService(), f.GetValue()))
					}
				}
			case replicatorpb.ReplicatorState_REPLICATOR_STATE_OFFLINE_ERROR:
				failed = s.GetService()
			}
		}
		switch {
		case failed != "":
			return "back, with service " + failed + " in OFFLINE:ERROR (see " + trepctl + " services)"
		case going == 0:
			return "ONLINE"
		case len(unreachable) == going:
			return "back; " + strings.Join(unreachable, "; ")
		}
		if time.Now().After(deadline) {
			return "back; its services are still going online"
		}
	}
}

// checkCerts loads the certificates of every install with thl-ssl=true,
// each set of files once, and prints each problem.
func (r *runner) checkCerts(cfg *config.Config) bool {
	seen := map[string]bool{}
	ok := true
	for _, name := range cfg.Plan().HostNames() {
		h, _ := cfg.Plan().Host(name)
		for _, in := range h.Installs() {
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
