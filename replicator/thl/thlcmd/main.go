package thlcmd

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/carbidedb/carbide/internal/install"
	"github.com/carbidedb/carbide/replicator/thl"
)

// Exit codes.
const (
	ExitOK    = 0
	ExitError = 1
	ExitUsage = 2
)

// Env is what thl takes from its surroundings; tests inject their own.
type Env struct {
	Out, Err io.Writer
	In       io.Reader // answers to purge's question
	Getenv   func(string) string
	// Services lists the replication services of the install at home.
	Services func(home string) ([]string, error)
	// Location is the time zone of printed times (default: local).
	Location *time.Location
	// Name is how the program was called (thl, mm_thl), for messages.
	Name string
}

// OSEnv returns the Env of the running process.
func OSEnv() Env {
	return Env{Out: os.Stdout, Err: os.Stderr, In: os.Stdin, Getenv: os.Getenv, Services: InstallServices, Location: time.Local, Name: "thl"}
}

// InstallServices lists the services the install at home replicates.
func InstallServices(home string) ([]string, error) {
	b, err := install.Open(home)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, s := range b.Install.Services {
		names = append(names, s.Name)
	}
	return names, nil
}

const usage = `usage: %[1]s [-service S] [-dir D] COMMAND [options]

commands:
  list  [-low N] [-high M] [-seqno N] [-json] [-headers]   print events
  info                                                     seqnos, files, size, times
  index                                                    one line per log file
  purge [-low N] [-high M] [-y]                            delete events (the replicator must be stopped or offline)
  help                                                     this text

The store is -dir D, else <CARBIDE_HOME>/thl/<service>, where the service is
-service S or the install's only one. An option a command does not take is
refused. Exit status: 0 ok, 1 error, 2 usage.
`

// usageError is a mistake in the command line.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Sprintf(format, args...)}
}

// runner holds one invocation's options.
type runner struct {
	env     Env
	service string
	dir     string
	// flags is the last flag set made, for the tests' flag walk.
	flags *flag.FlagSet
}

// Main runs thl with args (without the program name) and returns the
// exit code.
func Main(ctx context.Context, args []string, env Env) int {
	if env.Name == "" {
		env.Name = "thl"
	}
	if env.Location == nil {
		env.Location = time.Local
	}
	if env.Services == nil {
		env.Services = InstallServices
	}
	if env.Getenv == nil {
		env.Getenv = func(string) string { return "" }
	}
	if env.In == nil {
		env.In = strings.NewReader("")
	}
	r := &runner{env: env}
	err := r.run(ctx, args)
	var ue *usageError
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprintf(env.Out, usage, env.Name)
		return ExitOK
	case errors.As(err, &ue):
		fmt.Fprintf(env.Err, "%s: %s\n", env.Name, ue.msg)
		fmt.Fprintf(env.Err, "run '%s help' for usage\n", env.Name)
		return ExitUsage
	default:
		msg := err.Error()
		if !strings.HasPrefix(msg, "thl: ") {
			msg = "thl: " + msg
		}
		fmt.Fprintln(env.Err, strings.Replace(msg, "thl: ", env.Name+": ", 1))
		return ExitError
	}
}

func (r *runner) run(ctx context.Context, args []string) error {
	fs := r.flagSet("")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usagef("%v", err)
	}
	args = fs.Args()
	if len(args) == 0 {
		return usagef("no command given")
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "help", "-h", "--help":
		return flag.ErrHelp
	}
	if c, ok := commands()[cmd]; ok {
		return c(r, ctx, rest)
	}
	return usagef("unknown command %q (commands: list, info, index, purge, help)", cmd)
}

// commands are thl's commands. Each parses its options first, so that
// run with -h it defines them and does nothing: the flag walk in the tests
// reads them that way. It is a function, not a variable, because parse
// looks options up in it.
func commands() map[string]func(r *runner, ctx context.Context, args []string) error {
	return map[string]func(r *runner, ctx context.Context, args []string) error{
		"list":  (*runner).list,
		"info":  func(r *runner, _ context.Context, args []string) error { return r.info(args) },
		"index": func(r *runner, _ context.Context, args []string) error { return r.index(args) },
		"purge": func(r *runner, _ context.Context, args []string) error { return r.purge(args) },
	}
}

// flagSet returns a flag set with the global flags, which may also come
// after the command (thl list -service east).
func (r *runner) flagSet(cmd string) *flag.FlagSet {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&r.service, "service", r.service, "replication service")
	fs.StringVar(&r.dir, "dir", r.dir, "THL directory")
	r.flags = fs
	return fs
}

// parse parses a command's flags; it takes no arguments.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		if name, ok := strings.CutPrefix(err.Error(), "flag provided but not defined: -"); ok {
			return usagef("%s: %s", fs.Name(), notAnOption(fs.Name(), name))
		}
		return usagef("%s: %v", fs.Name(), err)
	}
	if fs.NArg() > 0 {
		return usagef("%s: unexpected argument %q", fs.Name(), fs.Arg(0))
	}
	return nil
}

// notAnOption says that name is not an option of cmd, and which commands
// take it.
func notAnOption(cmd, name string) string {
	var owners []string
	for other, c := range commands() {
		r := &runner{env: Env{}}
		if other != cmd && c(r, context.Background(), []string{"-h"}) != nil && r.flags.Lookup(name) != nil {
			owners = append(owners, other)
		}
	}
	slices.Sort(owners)
	if len(owners) == 0 {
		return fmt.Sprintf("-%s is not an option of %s", name, cmd)
	}
	return fmt.Sprintf("-%s is not an option of %s; it belongs to %s", name, cmd, strings.Join(owners, " and "))
}

// isSet reports whether the flag was given.
func isSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// storeDir returns the THL directory to work on.
func (r *runner) storeDir() (string, error) {
	if r.dir != "" {
		if r.service != "" {
			return "", usagef("-service is not used with -dir: -dir names the store itself, so give one of them")
		}
		return r.dir, nil
	}
	home := r.env.Getenv(install.EnvHome)
	if home == "" {
		return "", usagef("no THL directory: give -dir DIR, or run %s from an install (CARBIDE_HOME is not set)", r.env.Name)
	}
	services, err := r.env.Services(home)
	if err != nil {
		return "", err
	}
	list := strings.Join(services, ", ")
	switch {
	case r.service != "":
		if !slices.Contains(services, r.service) {
			if len(services) == 0 {
				return "", fmt.Errorf("the install at %s replicates no service, so it has no THL of service %s", home, r.service)
			}
			return "", fmt.Errorf("the install at %s does not replicate service %s (services: %s)", home, r.service, list)
		}
		return thl.DirFor(home, r.service), nil
	case len(services) == 1:
		return thl.DirFor(home, services[0]), nil
	case len(services) == 0:
		return "", fmt.Errorf("the install at %s replicates no service, so it has no THL", home)
	}
	return "", fmt.Errorf("the install at %s replicates several services (%s); choose one with -service", home, list)
}

// open opens the store read-only.
func (r *runner) open() (*thl.Store, error) {
	dir, err := r.storeDir()
	if err != nil {
		return nil, err
	}
	return thl.Open(thl.Config{Dir: dir, ReadOnly: true, Logger: r.logger()})
}

// logger reports the store's warnings on Err.
func (r *runner) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(r.env.Err, &slog.HandlerOptions{Level: slog.LevelWarn}))
}
