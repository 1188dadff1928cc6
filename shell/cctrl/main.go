package cctrl

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/carbidedb/carbide/internal/config"
	"github.com/carbidedb/carbide/internal/install"
)

// Exit codes.
const (
	ExitOK     = 0
	ExitFailed = 1
	ExitUsage  = 2
)

const usageText = `usage: %[1]s [-host H [-port P]] [-service S] [-mm] [-e "CMD; CMD"] [-no-history] [-timeout 3s]

On a terminal %[1]s is an interactive shell (help lists its commands); with
its input from a pipe or file it runs one command per line and stops at the
first that fails (exit status 1); -e runs a ';'-separated list the same way.
It talks to the managers of the install it runs from (CARBIDE_HOME, set by
the install's bin/ wrappers and share/env.sh), or to -host's. -timeout bounds
each agent's answer. An option a command does not take (ls -l in mm mode) is
refused with the reason, and nothing is sent.
`

// flagSet defines cctrl's options into cfg on a new flag set; the flag
// walk in the tests reads the same definitions.
func flagSet(cfg *Config, name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&cfg.Host, "host", "", "the manager's host")
	fs.IntVar(&cfg.Port, "port", 0, "the manager's port (manager-rpc-port)")
	fs.StringVar(&cfg.Service, "service", "", "the service (site) to act on")
	fs.StringVar(&cfg.Exprs, "e", "", "commands to run, separated by ';'")
	fs.BoolVar(&cfg.NoHistory, "no-history", false, "do not read or write ~/.cctrl_history")
	fs.BoolVar(&cfg.MM, "mm", false, "act on the cross-site replicators")
	fs.DurationVar(&cfg.Timeout, "timeout", cfg.Timeout, "how long to wait for one agent's status")
	return fs
}

// Main runs cctrl named name (cctrl, mm_cctrl) with args and returns the
// exit status.
func Main(ctx context.Context, name string, args []string, env Env) int {
	cfg := DefaultConfig()
	cfg.Name = name
	fs := flagSet(&cfg, name)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(env.Out, usageText, name)
			return ExitOK
		}
		fmt.Fprintf(env.Err, "%s: %v; %s -help shows the options\n", name, err, name)
		return ExitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(env.Err, "%s: unexpected argument %q; commands go on its input or in -e \"CMD; CMD\"\n", name, fs.Arg(0))
		return ExitUsage
	}
	var bound *install.Bound
	if env.Getenv != nil {
		if home := env.Getenv(install.EnvHome); home != "" {
			b, err := install.Open(home)
			if err != nil {
				fmt.Fprintf(env.Err, "%s: %v\n", name, err)
				return ExitFailed
			}
			bound = b
			if b.Install.Kind == config.CrossSiteInstall {
				cfg.MM = true
			}
		}
	}
	s, err := New(cfg, env, bound)
	if err != nil {
		fmt.Fprintf(env.Err, "%s: %v\n", name, err)
		if errors.Is(err, ErrUsage) {
			return ExitUsage
		}
		return ExitFailed
	}
	defer s.Close()
	switch {
	case cfg.Exprs != "":
		err = s.RunList(ctx, cfg.Exprs)
	case env.Terminal && env.REPL != nil:
		err = env.REPL(ctx, s)
	default:
		err = s.RunScript(ctx, env.In)
	}
	if err != nil {
		fmt.Fprintf(env.Err, "%s: %v\n", name, err)
		return ExitFailed
	}
	return ExitOK
}
