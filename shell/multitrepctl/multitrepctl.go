package multitrepctl

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/carbidedb/carbide/rpc/gen/replicatorpb"
)

// Exit codes.
const (
	ExitOK     = 0
	ExitFailed = 1
	ExitUsage  = 2
)

// DefaultTimeout bounds the question to one replicator.
const DefaultTimeout = 2 * time.Second

// Env is what multi_trepctl takes from its surroundings.
type Env struct {
	Out, Err io.Writer
	Getenv   func(string) string
	Name     string // multi_trepctl or mm_multi_trepctl
	// Dial connects to a replicator's control API; tests replace it. Nil:
	// with the security of the configuration read.
	Dial func(ctx context.Context, addr string) (replicatorpb.ReplicatorClient, func(), error)
}

// OSEnv returns the Env of the running process.
func OSEnv() Env {
	return Env{Out: os.Stdout, Err: os.Stderr, Getenv: os.Getenv, Name: "multi_trepctl"}
}

const usage = `usage: multi_trepctl [options] [COMMAND]

Every replicator of the configuration (each host's cluster replicator and
cross-site replicator), one row per host and service, asked over the
network on its rmi-port.

options:
  --by-service         order by service (sites in ini order), master first, then host
  --hosts h1,h2        only these hosts
  --services s1,s2     only these services
  --fields f1,f2       columns (default host,servicename,role,state,appliedlastseqno,appliedlatency)
  --output FORMAT      info (default), tab, list, json or name
  --hide-headers       no header row (info and tab)
  --sort-by FIELD      order rows by this field
  --ini FILE[,FILE]    read the hosts from this tungsten.ini, not the install's
  --timeout D          how long each replicator may take to answer (default 2s)

commands:
  list                 the table (default)
  position             host, servicename, role, state, appliedlastseqno, appliedlasteventid
  heartbeat [-name N]  trepctl heartbeat on every master
  run TREPCTL-ARGS     trepctl on every selected host and service (run status, run online, ...)

fields: host, servicename, role, state, appliedlastseqno, appliedlatency,
appliedlasteventid, minstoredseqno, maxstoredseqno, epoch, masterconnecturi,
pendingerror, pendingerrorseqno, pendingexceptionmessage, site, address, and
every field of trepctl status, in lower case.
An option a command does not carry out (--fields with run, --name with list,
--hide-headers with --output json) is refused, and no replicator is asked.
Exit status: 0 ok, 1 a replicator did not answer or a command failed, 2 usage.
`

// usageError is a mistake on the command line: exit status 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// Main runs multi_trepctl with args and returns the exit code.
func Main(ctx context.Context, args []string, env Env) int {
	if env.Name == "" {
		env.Name = "multi_trepctl"
	}
	if env.Getenv == nil {
		env.Getenv = func(string) string { return "" }
	}
	cfg, cmd, rest, err := parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(env.Out, usage)
		return ExitOK
	}
	if err != nil {
		fmt.Fprintf(env.Err, "%s: %v; run %s --help\n", env.Name, err, env.Name)
		return ExitUsage
	}
	m := &multi{env: env, cfg: cfg}
	code, err := m.exec(ctx, cmd, rest)
	if err != nil {
		var u usageError
		if errors.As(err, &u) {
			fmt.Fprintf(env.Err, "%s: %v; run %s --help\n", env.Name, err, env.Name)
			return ExitUsage
		}
		fmt.Fprintf(env.Err, "%s: %v\n", env.Name, err)
		return ExitFailed
	}
	return code
}

// parse reads the options, which may come before and after the command
// (after it, except for run, whose arguments are trepctl's).
func parse(args []string) (Config, string, []string, error) {
	cfg := DefaultConfig()
	var hosts, services, fields string
	fs := flagSet(&cfg, &hosts, &services, &fields)
	if err := fs.Parse(args); err != nil {
		return cfg, "", nil, err
	}
	cmd, rest := "list", []string(nil)
	if fs.NArg() > 0 {
		cmd, rest = fs.Arg(0), fs.Args()[1:]
	}
	switch cmd {
	case "help":
		return cfg, "", nil, flag.ErrHelp
	case "run":
		if len(rest) == 0 {
			return cfg, "", nil, errors.New("run needs a trepctl command, like run status")
		}
	case "list", "position", "heartbeat":
		if err := fs.Parse(rest); err != nil {
			return cfg, "", nil, err
		}
		if fs.NArg() > 0 {
			return cfg, "", nil, fmt.Errorf("unexpected argument %q after %s", fs.Arg(0), cmd)
		}
		rest = nil
	default:
		return cfg, "", nil, fmt.Errorf("unknown command %q (commands: list, position, heartbeat, run)", cmd)
	}
	if err := refusal(fs, cmd, cfg.Output); err != nil {
		return cfg, "", nil, err
	}
	cfg.Hosts, cfg.Services, cfg.Fields = splitList(hosts), splitList(services), splitList(fields)
	if err := cfg.Validate(); err != nil {
		return cfg, "", nil, err
	}
	return cfg, cmd, rest, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
