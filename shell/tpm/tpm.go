package tpm

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/carbidedb/carbide/internal/config"
	"github.com/carbidedb/carbide/internal/install"
	"github.com/carbidedb/carbide/internal/systemd"
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
	// Systemd is the machine's systemd; the zero value is a machine
	// without it, where tpm runs no systemctl.
	Systemd systemd.Host
}

// OSEnv returns the Env of the running process.
func OSEnv() Env {
	return Env{Out: os.Stdout, Err: os.Stderr, Getenv: os.Getenv, Hostname: os.Hostname, Staging: install.Staging, Name: "tpm", Systemd: systemd.System()}
}

const usage = `usage: tpm COMMAND [options]

commands:
  validate [--ini FILES] [--check-db [--timeout 5s]]
                                         check the configuration (and every host's database)
  install  [--ini FILES] [--host H,...|--all] [--only cluster|replicator] [--no-profile]
           [--systemd-dir DIR]           write this host's install directories and the
                                         agents' systemd units (into DIR when given)
  update   [install's options] [--replace-release] [--no-restart]
                                         rewrite them from the (edited) configuration,
                                         and restart the running replicators with it
  uninstall [--ini FILES] [--host H,...|--all] [--only cluster|replicator]
           [--systemd-dir DIR] --i-am-sure
                                         stop the agents of this host's installs, disable
                                         and delete their systemd units and delete the
                                         install directories (without --i-am-sure: say
                                         what it would remove, change nothing)
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
