package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/carbidedb/carbide/internal/install"
	"github.com/carbidedb/carbide/internal/sandbox"
)

const usage = `usage: sandbox COMMAND [--dir DIR] [--ini FILE]

  up [--ini FILE]        bring the topology up (default ini: examples/msaa.ini); safe to repeat;
                         on an existing sandbox, --ini adds the sites and hosts FILE adds
                         (existing hosts keep their names and addresses), and
                         --restore DATADIR makes the added hosts' databases copies of it
  down                   stop every process of the sandbox, keep its data
  destroy                stop everything and remove DIR
  status                 one line per host
  env HOST               print the line that binds a shell to HOST's installs
  mysql start|stop|restart|status HOST
                         control one host's database

--dir defaults to ./sandbox. A new sandbox gives host H of site S the address
127.0.S.H; --net N makes it 127.N.S.H, so two sandboxes can run side by side.

up --netns (as root) puts each host of a new sandbox in a network namespace of
its own, carbideN-HOST, at 198.18.16N+S.H (an address range never routed off
this machine), with a bridge per site; this machine reaches every host at its
address. With two sites or more the sites' bridges are joined by a WAN link
that a process of the sandbox runs, shaped by
  --wan-delay D    one-way delay between sites (e.g. 40ms; default none)
  --wan-jitter J   up to ± J on each frame's delay, never reordering (e.g. 5ms)
  --wan-loss P     share of frames lost on each crossing (e.g. 0.1%)
sandbox down removes every namespace, bridge and link the sandbox made.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string) int {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return 2
	}
	verb := args[0]
	cfg := sandbox.DefaultConfig()
	fs := flag.NewFlagSet(verb, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&cfg.Dir, "dir", cfg.Dir, "sandbox directory")
	fs.StringVar(&cfg.INI, "ini", cfg.INI, "topology ini for a new sandbox")
	fs.IntVar(&cfg.Net, "net", 0, "second octet of a new sandbox's addresses (127.NET.S.H)")
	fs.StringVar(&cfg.Restore, "restore", "", "with --ini on an existing sandbox: the datadir the added hosts start from")
	fs.BoolVar(&cfg.NetNS, "netns", false, "a new sandbox's hosts in network namespaces of their own")
	fs.StringVar(&cfg.WAN.Delay, "wan-delay", "", "one-way delay between sites (--netns)")
	fs.StringVar(&cfg.WAN.Jitter, "wan-jitter", "", "jitter of the delay between sites (--netns)")
	fs.StringVar(&cfg.WAN.Loss, "wan-loss", "", "frames lost between sites, e.g. 0.1% (--netns)")
	// Flags may come before, between or after the arguments.
	var rest []string
	for left := args[1:]; ; {
		if err := fs.Parse(left); err != nil {
			fmt.Fprintf(os.Stderr, "sandbox %s: %v; run sandbox help\n", verb, err)
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		rest = append(rest, fs.Arg(0))
		left = fs.Args()[1:]
	}
	// --ini on an existing sandbox extends it with what the ini adds.
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "ini" {
			cfg.Extend = true
		}
	})
	cfg.Out = os.Stdout
	staging, err := install.Staging()
	if err == nil {
		cfg.Staging = staging
	}
	want := map[string]int{"up": 0, "down": 0, "destroy": 0, "status": 0, "env": 1, "mysql": 2, "wanlink": 0}
	n, known := want[verb]
	switch {
	case verb == "help" || verb == "-h" || verb == "--help":
		fmt.Print(usage)
		return 0
	case !known:
		fmt.Fprintf(os.Stderr, "sandbox: unknown command %q; run sandbox help\n", verb)
		return 2
	case len(rest) != n:
		fmt.Fprintf(os.Stderr, "sandbox %s takes %d argument(s), got %d; run sandbox help\n", verb, n, len(rest))
		return 2
	}
	switch verb {
	case "up":
		if cfg.Staging == "" {
			fmt.Fprintf(os.Stderr, "sandbox up: %v\n", err)
			return 1
		}
		err = sandbox.Up(ctx, cfg)
	case "down":
		err = sandbox.Down(ctx, cfg)
	case "destroy":
		err = sandbox.Destroy(ctx, cfg)
	case "status":
		err = sandbox.Status(ctx, cfg)
	case "env":
		var line string
		if line, err = sandbox.EnvLine(cfg, rest[0]); err == nil {
			fmt.Println(line)
		}
	case "mysql":
		err = sandbox.MySQL(ctx, cfg, rest[0], rest[1])
	case "wanlink": // the WAN link process of a --netns sandbox; up starts it
		err = sandbox.RunWANLink(ctx, cfg)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "sandbox %s: %v\n", verb, err)
		return 1
	}
	return 0
}
