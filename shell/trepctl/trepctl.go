package trepctl

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	"github.com/carbidedb/carbide/internal/install"
	"github.com/carbidedb/carbide/internal/security"
	"github.com/carbidedb/carbide/rpc/gen/replicatorpb"
	"github.com/carbidedb/carbide/shell/clustercheck"
)

// Exit codes.
const (
	ExitOK     = 0
	ExitFailed = 1
	ExitUsage  = 2
)

// Version is what trepctl version prints.
var Version = "Carbide trepctl 0.1.0"

// Env is what trepctl takes from its surroundings.
type Env struct {
	In       io.Reader
	Out, Err io.Writer
	Getenv   func(string) string
	Name     string // trepctl or mm_trepctl
	// Dial connects to a replicator's control API; tests replace it.
	Dial func(ctx context.Context, addr string) (replicatorpb.ReplicatorClient, func(), error)
	// Streams lists the deployment's services and their replicators, for
	// check; nil reads the install CARBIDE_HOME names.
	Streams func(Env) ([]clustercheck.Stream, error)
}

// OSEnv returns the Env of the running process.
func OSEnv() Env {
	return Env{In: os.Stdin, Out: os.Stdout, Err: os.Stderr, Getenv: os.Getenv, Name: "trepctl", Dial: Dial}
}

// Dial connects to addr over gRPC with the security of the install
// CARBIDE_HOME names.
func Dial(ctx context.Context, addr string) (replicatorpb.ReplicatorClient, func(), error) {
	sec, err := security.FromEnv(os.Getenv)
	if err != nil {
		return nil, nil, err
	}
	return DialWith(sec)(ctx, addr)
}

// DialWith returns a Dial with the given security.
func DialWith(sec *security.Cluster) func(context.Context, string) (replicatorpb.ReplicatorClient, func(), error) {
	return func(_ context.Context, addr string) (replicatorpb.ReplicatorClient, func(), error) {
		conn, err := grpc.NewClient(addr, sec.ControlDialOptions(nil)...)
		if err != nil {
			return nil, nil, err
		}
		return replicatorpb.NewReplicatorClient(conn), func() { conn.Close() }, nil
	}
}

const usage = `usage: trepctl [-host H] [-port P] [-service S] [-retry N] COMMAND [options]

commands:
  status [-name tasks|stages|shards] [-json]   the service's state and positions
  services [-json]                             every service of the replicator (-service: that one)
  online [-skip-seqno N[,M]] [-from-event E]   bring the service (or all) online
  offline [-immediate]                         take the service (or all) offline at once
  reset -all|-thl|-db [-y]                     delete the THL and/or the tracking schema
  setrole -role master|slave [-uri thl://host:port/]
  heartbeat [-name NAME]                       write a heartbeat through the pipeline
  flush [-limit S]                             wait until the binlog so far is in the THL
  wait -applied N | -state S [-limit S]        wait for a seqno or a state
  qs                                           one-line status
  conflicts [-limit N] [-json]                 the latest conflicts the applier recorded
  check [-json] [-chunk-time D] [SCHEMA[.TABLE]]
                                               compare every host of the service with its master
  version
Without -service, a replicator with one service uses it; online and offline
act on every service. An option a command does not carry out is refused,
with the reason, and nothing is sent.
`

// Main runs trepctl with args and returns the exit code.
func Main(ctx context.Context, args []string, env Env) int {
	if env.Name == "" {
		env.Name = "trepctl"
	}
	var g globals
	fs := g.flagSet(env.Name)
	host, port, service, retry := &g.host, &g.port, &g.service, &g.retry
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(env.Out, usage)
			return ExitOK
		}
		fmt.Fprintf(env.Err, "%s: %v; run %s help\n", env.Name, err, env.Name)
		return ExitUsage
	}
	if fs.NArg() == 0 {
		fmt.Fprint(env.Err, usage)
		return ExitUsage
	}
	cmd, rest := fs.Arg(0), fs.Args()[1:]
	switch cmd {
	case "help", "-h", "--help", "version":
		if msg := localOnly(fs, cmd, rest); msg != "" {
			fmt.Fprintf(env.Err, "%s %s: %s\n", env.Name, cmd, msg)
			return ExitUsage
		}
		if cmd == "version" {
			fmt.Fprintln(env.Out, Version)
		} else {
			fmt.Fprint(env.Out, usage)
		}
		return ExitOK
	}
	c := &command{env: env, name: cmd, service: *service}
	run, ok := c.commands()[cmd]
	if !ok {
		fmt.Fprintf(env.Err, "%s: unknown command %q; run %s help\n", env.Name, cmd, env.Name)
		return ExitUsage
	}
	parse, exec := run()
	cfs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	cfs.SetOutput(io.Discard)
	parse(cfs)
	if err := cfs.Parse(rest); err != nil {
		fmt.Fprintf(env.Err, "%s %s: %s; run %s help\n", env.Name, cmd, c.parseError(err), env.Name)
		return ExitUsage
	}
	if msg := refusal(cmd, cfs); msg != "" {
		fmt.Fprintf(env.Err, "%s %s: %s\n", env.Name, cmd, msg)
		return ExitUsage
	}
	if cmd == "check" && cfs.NArg() == 1 {
		c.args = cfs.Args() // SCHEMA[.TABLE]
	} else if cfs.NArg() > 0 {
		fmt.Fprintf(env.Err, "%s %s: unexpected argument %q; run %s help\n", env.Name, cmd, cfs.Arg(0), env.Name)
		return ExitUsage
	}
	addr, err := target(env, *host, *port)
	if err != nil {
		fmt.Fprintf(env.Err, "%s: %v\n", env.Name, err)
		return ExitFailed
	}
	var client replicatorpb.ReplicatorClient
	var closeFn func()
	for attempt := 0; ; attempt++ {
		client, closeFn, err = env.Dial(ctx, addr)
		if err == nil {
			break
		}
		if attempt >= *retry {
			fmt.Fprintf(env.Err, "%s: cannot connect to the replicator at %s: %v\n", env.Name, addr, err)
			return ExitFailed
		}
		time.Sleep(time.Second)
	}
	defer closeFn()
	c.client, c.addr = client, addr
	if err := exec(ctx); err != nil {
		fmt.Fprintf(env.Err, "%s %s: %s\n", env.Name, cmd, describe(err, addr))
		return ExitFailed
	}
	return ExitOK
}

// describe turns an RPC error into a sentence.
func describe(err error, addr string) string {
	if s, ok := status.FromError(err); ok {
		if s.Code().String() == "Unavailable" {
			return fmt.Sprintf("the replicator at %s does not answer (is it running? replicator start): %s", addr, s.Message())
		}
		return s.Message()
	}
	return err.Error()
}

// target finds the control address: -host/-port, else the install bound
// by CARBIDE_HOME.
func target(env Env, host string, port int) (string, error) {
	if host != "" && port != 0 {
		return net.JoinHostPort(host, strconv.Itoa(port)), nil
	}
	home := env.Getenv(install.EnvHome)
	if home == "" {
		if host == "" && port == 0 {
			return "", errors.New("no replicator to talk to: source an install's share/env.sh (or run it from its bin/), or give -host and -port")
		}
		if port == 0 {
			port = 10000
		}
		if host == "" {
			host = "127.0.0.1"
		}
		return net.JoinHostPort(host, strconv.Itoa(port)), nil
	}
	b, err := install.Open(home)
	if err != nil {
		return "", err
	}
	if host == "" {
		host = b.Host.Address
		if a, ok := b.Config.Hosts[host]; ok {
			host = a
		}
	} else if a, ok := b.Config.Hosts[host]; ok {
		host = a
	}
	if port == 0 {
		port = b.Install.Settings.RMIPort
	}
	return net.JoinHostPort(host, strconv.Itoa(port)), nil
}

type command struct {
	env     Env
	name    string
	service string
	args    []string // check's SCHEMA[.TABLE]
	client  replicatorpb.ReplicatorClient
	addr    string
}

type runner func() (parse func(*flag.FlagSet), exec func(context.Context) error)

func (c *command) commands() map[string]runner {
	return map[string]runner{
		"status":    c.status,
		"services":  c.services,
		"online":    c.online,
		"offline":   c.offline,
		"reset":     c.reset,
		"setrole":   c.setrole,
		"heartbeat": c.heartbeat,
		"flush":     c.flush,
		"wait":      c.wait,
		"qs":        c.qs,
		"conflicts": c.conflicts,
		"check":     c.check,
	}
}

// pickService returns -service, or the replicator's only service.
func (c *command) pickService(ctx context.Context) (string, error) {
	if c.service != "" {
		return c.service, nil
	}
	r, err := c.client.Services(ctx, &replicatorpb.ServicesRequest{})
	if err != nil {
		return "", err
	}
	switch len(r.GetServices()) {
	case 0:
		return "", errors.New("the replicator has no service")
	case 1:
		return r.GetServices()[0].GetService(), nil
	}
	var names []string
	for _, s := range r.GetServices() {
		names = append(names, s.GetService())
	}
	return "", fmt.Errorf("the replicator has several services (%s); choose one with -service NAME", strings.Join(names, ", "))
}

func (c *command) printFields(fields []*replicatorpb.Field) {
	width := 4
	sorted := append([]*replicatorpb.Field(nil), fields...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].GetName() < sorted[j].GetName() })
	for _, f := range sorted {
		width = max(width, len(f.GetName()))
	}
	fmt.Fprintf(c.env.Out, "%-*s  VALUE\n%-*s  -----\n", width, "NAME", width, "----")
	for _, f := range sorted {
		fmt.Fprintf(c.env.Out, "%-*s: %s\n", width+1, f.GetName(), f.GetValue())
	}
}

func fieldsJSON(fields []*replicatorpb.Field) map[string]string {
	m := map[string]string{}
	for _, f := range fields {
		m[f.GetName()] = f.GetValue()
	}
	return m
}

func (c *command) status() (func(*flag.FlagSet), func(context.Context) error) {
	var name string
	var asJSON bool
	return func(fs *flag.FlagSet) {
			fs.StringVar(&name, "name", "", "tasks, stages or shards")
			fs.BoolVar(&asJSON, "json", false, "print JSON")
		}, func(ctx context.Context) error {
			switch name {
			case "", "tasks", "stages", "shards":
			default:
				return fmt.Errorf("-name takes tasks, stages or shards, not %q", name)
			}
			svc, err := c.pickService(ctx)
			if err != nil {
				return err
			}
			r, err := c.client.Status(ctx, &replicatorpb.StatusRequest{Service: svc, Name: name})
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(c.env.Out)
				enc.SetIndent("", "  ")
				if name == "" {
					return enc.Encode(fieldsJSON(r.GetStatus().GetFields()))
				}
				var rows []map[string]string
				for _, row := range r.GetRows() {
					rows = append(rows, fieldsJSON(row.GetFields()))
				}
				return enc.Encode(rows)
			}
			fmt.Fprintln(c.env.Out, "Processing status command...")
			if name == "" {
				c.printFields(r.GetStatus().GetFields())
			} else {
				for i, row := range r.GetRows() {
					if i > 0 {
						fmt.Fprintln(c.env.Out)
					}
					c.printFields(row.GetFields())
				}
			}
			fmt.Fprintln(c.env.Out, "Finished status command...")
			return nil
		}
}

func (c *command) services() (func(*flag.FlagSet), func(context.Context) error) {
	var asJSON bool
	return func(fs *flag.FlagSet) { fs.BoolVar(&asJSON, "json", false, "print JSON") },
		func(ctx context.Context) error {
			r, err := c.client.Services(ctx, &replicatorpb.ServicesRequest{})
			if err != nil {
				return err
			}
			var list [][]*replicatorpb.Field
			var names []string
			for _, s := range r.GetServices() {
				names = append(names, s.GetService())
				if c.service == "" || s.GetService() == c.service {
					list = append(list, serviceFields(s))
				}
			}
			if c.service != "" && len(list) == 0 {
				return fmt.Errorf("the replicator has no service %s (services: %s)", c.service, strings.Join(names, ", "))
			}
			if asJSON {
				var out []map[string]string
				for _, f := range list {
					out = append(out, fieldsJSON(f))
				}
				enc := json.NewEncoder(c.env.Out)
				enc.SetIndent("", "  ")
				return enc.Encode(out)
			}
			fmt.Fprintln(c.env.Out, "Processing services command...")
			for _, f := range list {
				c.printFields(f)
			}
			fmt.Fprintln(c.env.Out, "Finished services command...")
			return nil
		}
}

// serviceFields is the short view `trepctl services` shows.
func serviceFields(s *replicatorpb.ServiceStatus) []*replicatorpb.Field {
	f := func(n, v string) *replicatorpb.Field { return &replicatorpb.Field{Name: n, Value: v} }
	return []*replicatorpb.Field{
		f("appliedLastSeqno", strconv.FormatInt(s.GetAppliedLastSeqno(), 10)),
		f("appliedLatency", strconv.FormatFloat(s.GetAppliedLatency(), 'f', 3, 64)),
		f("role", s.GetRole()),
		f("serviceName", s.GetService()),
		f("serviceType", "local"),
		f("started", "true"),
		f("state", s.GetState()),
	}
}

func (c *command) online() (func(*flag.FlagSet), func(context.Context) error) {
	var skip, from string
	return func(fs *flag.FlagSet) {
			fs.StringVar(&skip, "skip-seqno", "", "seqnos to skip, comma-separated")
			fs.StringVar(&from, "from-event", "", "extract from this binlog event id (master)")
		}, func(ctx context.Context) error {
			req := &replicatorpb.OnlineRequest{Service: c.service, FromEvent: from}
			for _, s := range strings.Split(skip, ",") {
				if s = strings.TrimSpace(s); s == "" {
					continue
				}
				n, err := strconv.ParseUint(s, 10, 64)
				if err != nil {
					return fmt.Errorf("-skip-seqno takes seqnos, not %q", s)
				}
				req.SkipSeqno = append(req.SkipSeqno, n)
			}
			if (len(req.SkipSeqno) > 0 || from != "") && req.Service == "" {
				svc, err := c.pickService(ctx)
				if err != nil {
					return err
				}
				req.Service = svc
			}
			_, err := c.client.Online(ctx, req)
			return err
		}
}

func (c *command) offline() (func(*flag.FlagSet), func(context.Context) error) {
	var immediate bool
	return func(fs *flag.FlagSet) {
			fs.BoolVar(&immediate, "immediate", false, "stop at once (what offline always does: a block in flight is rolled back)")
		},
		func(ctx context.Context) error {
			_, err := c.client.Offline(ctx, &replicatorpb.OfflineRequest{Service: c.service, Immediate: immediate})
			return err
		}
}

func (c *command) reset() (func(*flag.FlagSet), func(context.Context) error) {
	var all, thl, db, yes bool
	return func(fs *flag.FlagSet) {
			fs.BoolVar(&all, "all", false, "the THL and the tracking schema")
			fs.BoolVar(&thl, "thl", false, "the THL")
			fs.BoolVar(&db, "db", false, "the tracking schema")
			fs.Bool("relay", false, "refused: Carbide keeps no relay log (see refusals)")
			fs.BoolVar(&yes, "y", false, "do not ask for confirmation")
		}, func(ctx context.Context) error {
			if !all && !thl && !db {
				return errors.New("say what to reset: -all, -thl or -db")
			}
			svc, err := c.pickService(ctx)
			if err != nil {
				return err
			}
			if !yes {
				what := "the THL and tracking schema"
				switch {
				case thl && !db && !all:
					what = "the THL"
				case db && !thl && !all:
					what = "the tracking schema"
				}
				fmt.Fprintf(c.env.Out, "Do you really want to delete %s of replication service %s? [yes/NO] ", what, svc)
				line, _ := bufio.NewReader(c.env.In).ReadString('\n')
				if a := strings.ToLower(strings.TrimSpace(line)); a != "yes" && a != "y" {
					return errors.New("reset cancelled; nothing was deleted")
				}
			}
			_, err = c.client.Reset(ctx, &replicatorpb.ResetRequest{Service: svc, Thl: all || thl, Db: all || db})
			return err
		}
}

func (c *command) setrole() (func(*flag.FlagSet), func(context.Context) error) {
	var role, uri string
	return func(fs *flag.FlagSet) {
			fs.StringVar(&role, "role", "", "master or slave")
			fs.StringVar(&uri, "uri", "", "THL source of a slave: thl://host:port/")
		}, func(ctx context.Context) error {
			if role != "master" && role != "slave" {
				return fmt.Errorf("-role takes master or slave, not %q", role)
			}
			svc, err := c.pickService(ctx)
			if err != nil {
				return err
			}
			_, err = c.client.SetRole(ctx, &replicatorpb.SetRoleRequest{Service: svc, Role: role, Uri: uri})
			return err
		}
}

func (c *command) heartbeat() (func(*flag.FlagSet), func(context.Context) error) {
	var name string
	return func(fs *flag.FlagSet) { fs.StringVar(&name, "name", "NONE", "heartbeat name") },
		func(ctx context.Context) error {
			svc, err := c.pickService(ctx)
			if err != nil {
				return err
			}
			_, err = c.client.Heartbeat(ctx, &replicatorpb.HeartbeatRequest{Service: svc, Name: name})
			return err
		}
}

func (c *command) flush() (func(*flag.FlagSet), func(context.Context) error) {
	var limit int
	return func(fs *flag.FlagSet) { fs.IntVar(&limit, "limit", 0, "give up after this many seconds") },
		func(ctx context.Context) error {
			svc, err := c.pickService(ctx)
			if err != nil {
				return err
			}
			if limit > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, time.Duration(limit)*time.Second)
				defer cancel()
			}
			r, err := c.client.Flush(ctx, &replicatorpb.FlushRequest{Service: svc})
			if err != nil {
				return err
			}
			fmt.Fprintf(c.env.Out, "Master log is synchronized with database at log sequence number: %d\n", r.GetSeqno())
			return nil
		}
}

func (c *command) wait() (func(*flag.FlagSet), func(context.Context) error) {
	var applied int64
	var state string
	var limit int
	return func(fs *flag.FlagSet) {
			fs.Int64Var(&applied, "applied", -1, "wait until this seqno is applied")
			fs.StringVar(&state, "state", "", "wait until the service is in this state")
			fs.IntVar(&limit, "limit", 0, "give up after this many seconds (0: wait forever)")
		}, func(ctx context.Context) error {
			if applied < 0 && state == "" {
				return errors.New("wait needs -applied N or -state S")
			}
			svc, err := c.pickService(ctx)
			if err != nil {
				return err
			}
			_, err = c.client.Wait(ctx, &replicatorpb.WaitRequest{Service: svc, AppliedSeqno: applied, State: state, TimeoutSeconds: float64(limit)})
			return err
		}
}

func (c *command) qs() (func(*flag.FlagSet), func(context.Context) error) {
	return func(*flag.FlagSet) {}, func(ctx context.Context) error {
		svc, err := c.pickService(ctx)
		if err != nil {
			return err
		}
		r, err := c.client.Status(ctx, &replicatorpb.StatusRequest{Service: svc})
		if err != nil {
			return err
		}
		s := r.GetStatus()
		fmt.Fprintf(c.env.Out, "State: %s Seqno: %d Latency: %.3f\n", s.GetState(), s.GetAppliedLastSeqno(), s.GetAppliedLatency())
		return nil
	}
}
