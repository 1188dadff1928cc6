package tprovision

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	"github.com/carbidedb/carbide/internal/config"
	"github.com/carbidedb/carbide/internal/install"
	"github.com/carbidedb/carbide/internal/security"
	"github.com/carbidedb/carbide/rpc/command"
	"github.com/carbidedb/carbide/rpc/gen/managerpb"
	"github.com/carbidedb/carbide/rpc/gen/replicatorpb"
	"github.com/carbidedb/carbide/rpc/reason"
)

// Exit codes.
const (
	ExitOK     = 0
	ExitFailed = 1
	ExitUsage  = 2
)

// Methods.
const (
	MethodDump     = "mysqldump"
	MethodPhysical = "mariabackup"
)

// methods maps every accepted -m name to what runs: xtrabackup (the
// guide's name) and rsync copy the files with mariabackup through the
// source's replicator, as mariabackup does.
var methods = map[string]string{
	"mysqldump": MethodDump, "mariabackup": MethodPhysical, "xtrabackup": MethodPhysical, "rsync": MethodPhysical,
}

// Env is what tprovision takes from its surroundings.
type Env struct {
	Out, Err io.Writer
	Getenv   func(string) string
	Terminal bool // Out is a terminal: progress redraws in place
	Now      func() time.Time
}

// OSEnv returns the Env of the running process.
func OSEnv() Env {
	fi, err := os.Stdout.Stat()
	return Env{Out: os.Stdout, Err: os.Stderr, Getenv: os.Getenv, Terminal: err == nil && fi.Mode()&os.ModeCharDevice != 0, Now: time.Now}
}

const usage = `usage: tprovision -s SOURCE [-m mysqldump|mariabackup|xtrabackup|rsync] [-t THREADS] [-f]

Rebuilds this host's database from SOURCE's, and restarts replication
exactly after the copy: this host is shunned, its replicators go offline,
the data is replaced, the replicator's position is set from the copy, its
THL is cleared, and the datasource is recovered. The cross-site
replicator is left offline with its position copied: mm_trepctl online
resumes it.

  -s, --source HOST   the host to copy (a replica of this site is best)
  -m, --method M      mysqldump (default): a logical copy, the database
                      stays up; mariabackup (also xtrabackup, rsync): a
                      physical copy streamed by SOURCE's replicator, this
                      host's database is stopped and restarted
  -t, --threads N     copy threads (mariabackup --parallel; refused with
                      mysqldump, which copies in one session)
  -f, --force         also rebuild this site's primary

An option it does not take or carry out is refused, and nothing changes.
`

// Main runs tprovision and returns the exit code.
func Main(ctx context.Context, args []string, env Env) int {
	if env.Now == nil {
		env.Now = time.Now
	}
	var o options
	fs := o.flagSet()
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(env.Out, usage)
			return ExitOK
		}
		fmt.Fprintf(env.Err, "tprovision: %v; run tprovision -h\n", err)
		return ExitUsage
	}
	fs.Visit(func(f *flag.Flag) { o.threadsSet = o.threadsSet || f.Name == "t" || f.Name == "threads" })
	if err := o.check(fs.Args()); err != nil {
		fmt.Fprintf(env.Err, "tprovision: %v; run tprovision -h\n", err)
		return ExitUsage
	}
	r, err := open(env, o)
	if err != nil {
		fmt.Fprintf(env.Err, "tprovision: %v\n", err)
		return ExitFailed
	}
	defer r.close()
	if err := r.run(ctx); err != nil {
		fmt.Fprintf(env.Err, "tprovision: %s\n", describe(err))
		return ExitFailed
	}
	return ExitOK
}

type options struct {
	source, method string
	threads        int
	force          bool
	// threadsSet is whether -t was given: mysqldump refuses it.
	threadsSet bool
}

// flagSet defines the options, each under its short and long name, on a
// new flag set; the flag walk in the tests reads the same definitions.
func (o *options) flagSet() *flag.FlagSet {
	fs := flag.NewFlagSet("tprovision", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	for _, n := range []string{"s", "source"} {
		fs.StringVar(&o.source, n, "", "")
	}
	for _, n := range []string{"m", "method"} {
		fs.StringVar(&o.method, n, MethodDump, "")
	}
	for _, n := range []string{"t", "threads"} {
		fs.IntVar(&o.threads, n, 1, "")
	}
	for _, n := range []string{"f", "force"} {
		fs.BoolVar(&o.force, n, false, "")
	}
	return fs
}

func (o *options) check(rest []string) error {
	switch {
	case len(rest) > 0:
		return fmt.Errorf("unexpected argument %q", rest[0])
	case o.source == "":
		return errors.New("no source: name the host to copy with -s")
	case o.threads < 1 || o.threads > 64:
		return fmt.Errorf("-t %d: threads must be 1 to 64", o.threads)
	}
	m, ok := methods[o.method]
	if !ok {
		return fmt.Errorf("unknown method %q (mysqldump, mariabackup, xtrabackup or rsync)", o.method)
	}
	if o.threadsSet && m == MethodDump {
		return fmt.Errorf("-t is not used with -m %s: mysqldump copies in one session; -t sets mariabackup's copy threads (-m mariabackup)", o.method)
	}
	o.method = m
	return nil
}

// describe turns an RPC error into its message.
func describe(err error) string {
	if s, ok := status.FromError(err); ok {
		return s.Message()
	}
	return err.Error()
}

// run is one tprovision: this host (self, of site) rebuilt from src.
type run struct {
	env   Env
	o     options
	b     *install.Bound // this host's cluster install
	cfg   *config.Config
	self  *config.HostPlan
	src   *config.HostPlan
	conns []*grpc.ClientConn

	mgr   managerpb.ManagerClient
	repl  replicatorpb.ReplicatorClient // this host's cluster replicator
	xrepl replicatorpb.ReplicatorClient // its cross-site replicator, or nil
	srepl replicatorpb.ReplicatorClient // the source's cluster replicator
}

func open(env Env, o options) (*run, error) {
	home := env.Getenv(install.EnvHome)
	if home == "" {
		return nil, errors.New("no install to work on: source the cluster install's share/env.sh first")
	}
	b, err := install.Open(home)
	if err != nil {
		return nil, err
	}
	if b.Install.Kind != config.ClusterInstall {
		return nil, fmt.Errorf("%s is a cross-site replicator install; run tprovision from the cluster install (its share/env.sh)", home)
	}
	r := &run{env: env, o: o, b: b, cfg: b.Config, self: b.Host}
	src, ok := b.Config.Plan().Host(o.source)
	switch {
	case !ok:
		return nil, fmt.Errorf("unknown source %q: the configuration's hosts are %s", o.source, strings.Join(b.Config.Plan().HostNames(), ", "))
	case src.Name == r.self.Name:
		return nil, fmt.Errorf("the source %s is this host; name another host to copy", src.Name)
	case src.Witness || src.Cluster == nil || !src.Cluster.Replicator:
		return nil, fmt.Errorf("%s has no database to copy (a witness or a connector-only host)", src.Name)
	case r.self.Witness || !b.Install.Replicator:
		return nil, fmt.Errorf("%s has no database to rebuild", r.self.Name)
	}
	r.src = src
	sec, err := security.ForInstall(b)
	if err != nil {
		return nil, err
	}
	dial := func(host string, port int) (*grpc.ClientConn, error) {
		c, err := grpc.NewClient(net.JoinHostPort(b.Config.Address(host), strconv.Itoa(port)), sec.ControlDialOptions(nil)...)
		if err == nil {
			r.conns = append(r.conns, c)
		}
		return c, err
	}
	mc, err := dial(r.self.Name, b.Config.ClusterSettings(r.self.Site).ManagerRPCPort)
	if err != nil {
		return nil, err
	}
	r.mgr = managerpb.NewManagerClient(mc)
	rc, err := dial(r.self.Name, b.Install.Settings.RMIPort)
	if err != nil {
		return nil, err
	}
	r.repl = replicatorpb.NewReplicatorClient(rc)
	if x := r.self.CrossSite; x != nil && x.Replicator {
		xc, err := dial(r.self.Name, x.Settings.RMIPort)
		if err != nil {
			return nil, err
		}
		r.xrepl = replicatorpb.NewReplicatorClient(xc)
	}
	sc, err := dial(src.Name, src.Cluster.Settings.RMIPort)
	if err != nil {
		return nil, err
	}
	r.srepl = replicatorpb.NewReplicatorClient(sc)
	return r, nil
}

func (r *run) close() {
	for _, c := range r.conns {
		c.Close()
	}
}

func (r *run) say(format string, args ...any) {
	fmt.Fprintf(r.env.Out, format+"\n", args...)
}

// command runs a cctrl command through this host's manager.
func (r *run) command(ctx context.Context, force bool, req *managerpb.CommandRequest) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	req.Force = force
	_, err := r.mgr.Command(ctx, req)
	if err != nil {
		return &reason.Error{Msg: fmt.Sprintf("%s: %s", command.Text(req), describe(err)), Reason: reason.Of(err)}
	}
	return nil
}

func (r *run) run(ctx context.Context) error {
	site := r.self.Site
	sameSite := r.src.Site == site
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	st, err := r.mgr.Status(sctx, &managerpb.StatusRequest{})
	cancel()
	if err != nil {
		return fmt.Errorf("the manager of %s does not answer (%s); tprovision needs it to shun and recover the datasource", r.self.Name, describe(err))
	}
	if st.GetCoordinator() == "" {
		return fmt.Errorf("site %s has no coordinator (%s); nothing was changed", site, st.GetCoordinatorProblem())
	}
	if st.GetPrimary() == r.self.Name && !r.o.force {
		return fmt.Errorf("%s is the primary of %s: rebuilding it would stop the site's writes; switch first, or use -f; nothing was changed", r.self.Name, site)
	}
	srcPrimary := sameSite && st.GetPrimary() == r.src.Name
	if r.o.method == MethodPhysical || srcPrimary {
		// The source's replicator streams the backup or names its position.
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := r.srepl.Services(pctx, &replicatorpb.ServicesRequest{})
		cancel()
		if err != nil {
			why := "names the copy's position"
			if r.o.method == MethodPhysical {
				why = "streams the backup"
			}
			return fmt.Errorf("the replicator of %s does not answer (%s); it %s; nothing was changed", r.src.Name, describe(err), why)
		}
	}
	r.say("tprovision: rebuilding %s from %s with %s", r.self.Name, r.src.Name, r.o.method)

	// 1. Out of service: shunned (so the managers leave it alone), its
	// replicators offline.
	var state string
	for _, d := range st.GetDatasources() {
		if d.GetHost() == r.self.Name {
			state = d.GetState()
		}
	}
	before, err := r.states(ctx)
	if err != nil {
		return fmt.Errorf("%w; nothing was changed", err)
	}
	if state != "SHUNNED" {
		if err := r.command(ctx, r.o.force, command.Datasource(r.self.Name, managerpb.DatasourceAction_DATASOURCE_ACTION_SHUN)); err != nil {
			return fmt.Errorf("%w; nothing was changed", err)
		}
		r.say("  %s shunned", r.self.Name)
	}
	octx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if _, err := r.repl.Offline(octx, &replicatorpb.OfflineRequest{}); err != nil {
		return fmt.Errorf("replicator offline on %s: %s (%s is SHUNNED; datasource %s recover brings it back)", r.self.Name, describe(err), r.self.Name, r.self.Name)
	}
	var xservices []string
	if r.xrepl != nil {
		if _, err := r.xrepl.Offline(octx, &replicatorpb.OfflineRequest{}); err != nil {
			return fmt.Errorf("cross-site replicator offline on %s: %s", r.self.Name, describe(err))
		}
		sv, err := r.xrepl.Services(octx, &replicatorpb.ServicesRequest{})
		if err != nil {
			return fmt.Errorf("cross-site replicator services on %s: %s", r.self.Name, describe(err))
		}
		for _, s := range sv.GetServices() {
			xservices = append(xservices, s.GetService())
		}
		r.say("  replicators of %s offline (%s; cross-site %s)", r.self.Name, site, strings.Join(xservices, ", "))
	} else {
		r.say("  replicator of %s offline", r.self.Name)
	}

	// 2. The copy.
	var binlogPos string
	if r.o.method == MethodDump {
		binlogPos, err = r.dump(ctx)
	} else {
		binlogPos, err = r.physical(ctx)
	}
	var u unchanged
	if errors.As(err, &u) {
		// Even when interrupted (Ctrl-C), the host goes back as it was.
		return r.undo(context.WithoutCancel(ctx), u.error, state, before)
	}
	if err != nil {
		return err
	}

	// 3. Positions: the tracking rows came with the data, except for a
	// master's own service, whose row is not kept with its data.
	if !sameSite {
		if _, err := r.repl.Reset(ctx, &replicatorpb.ResetRequest{Service: site, Thl: true, Forget: true}); err != nil {
			return fmt.Errorf("clear the THL of %s: %s", site, describe(err))
		}
	} else if srcPrimary {
		lctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		loc, err := r.srepl.Locate(lctx, &replicatorpb.LocateRequest{Service: site, BinlogPosition: binlogPos, TimeoutSeconds: 110})
		cancel()
		if err != nil {
			return fmt.Errorf("%s could not name the transaction at its backup's position %s: %s; the data is copied, the position is not: run tprovision again", r.src.Name, binlogPos, describe(err))
		}
		if loc.GetSeqno() < 0 {
			if _, err := r.repl.Reset(ctx, &replicatorpb.ResetRequest{Service: site, Thl: true, Db: true, Forget: true}); err != nil {
				return fmt.Errorf("reset %s: %s", site, describe(err))
			}
			r.say("  %s: no transaction of %s's THL precedes the copy; %s applies from its first", site, r.src.Name, r.self.Name)
		} else {
			if _, err := r.repl.SetPosition(ctx, &replicatorpb.SetPositionRequest{Service: site, Seqno: loc.GetSeqno(), Epoch: loc.GetEpoch(), EventId: loc.GetEventId(), SourceId: loc.GetSourceId()}); err != nil {
				return fmt.Errorf("set the position of %s: %s", site, describe(err))
			}
			r.say("  %s: position seqno %d (%s's binlog at %s)", site, loc.GetSeqno(), r.src.Name, binlogPos)
		}
	} else {
		if _, err := r.repl.Reset(ctx, &replicatorpb.ResetRequest{Service: site, Thl: true, Forget: true}); err != nil {
			return fmt.Errorf("clear the THL of %s: %s", site, describe(err))
		}
		r.say("  %s: position copied from %s", site, r.src.Name)
	}
	for _, x := range xservices {
		if _, err := r.xrepl.Reset(ctx, &replicatorpb.ResetRequest{Service: x, Thl: true, Forget: true}); err != nil {
			return fmt.Errorf("clear the cross-site THL of %s: %s", x, describe(err))
		}
	}
	if len(xservices) > 0 {
		r.say("  cross-site %s: positions copied from %s, THL cleared", strings.Join(xservices, ", "), r.src.Name)
	}
	if !sameSite {
		r.say("tprovision: %s holds %s's data; %s is a host of %s, so the replicator of %s stays offline: reset it as the procedure says (trepctl -service %s reset -all -y), then trepctl online", r.self.Name, r.src.Name, r.src.Name, r.src.Site, site, site)
		return nil
	}

	// 4. Back in service.
	if _, err := r.repl.Online(ctx, &replicatorpb.OnlineRequest{Service: site}); err != nil {
		return fmt.Errorf("replicator online on %s: %s", r.self.Name, describe(err))
	}
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	_, err = r.repl.Wait(wctx, &replicatorpb.WaitRequest{Service: site, AppliedSeqno: -1, State: "ONLINE", TimeoutSeconds: 55})
	cancel()
	if err != nil {
		return fmt.Errorf("the replicator of %s did not come ONLINE: %s", r.self.Name, describe(err))
	}
	// The managers learn that the copy's marker is gone within a probe or
	// two; until then they refuse the recover for it.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(250 * time.Millisecond) {
		err := r.command(ctx, false, command.Datasource(r.self.Name, managerpb.DatasourceAction_DATASOURCE_ACTION_RECOVER))
		if err == nil {
			break
		}
		if reason.Of(err) != managerpb.Reason_REASON_INCOMPLETE_COPY || time.Now().After(deadline) {
			return fmt.Errorf("%w (the data is in place and the replicator ONLINE)", err)
		}
	}
	r.say("tprovision: %s is ONLINE with %s's data", r.self.Name, r.src.Name)
	if len(xservices) > 0 {
		r.say("next: mm_trepctl online (the cross-site replicator of %s is offline)", r.self.Name)
	}
	return nil
}

// states are the services of this host's replicators that are ONLINE,
// by replicator: cluster ("") and cross-site ("x").
func (r *run) states(ctx context.Context) (map[string][]string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out := map[string][]string{}
	for _, c := range []struct {
		key string
		rc  replicatorpb.ReplicatorClient
	}{{"", r.repl}, {"x", r.xrepl}} {
		if c.rc == nil {
			continue
		}
		sv, err := c.rc.Services(ctx, &replicatorpb.ServicesRequest{})
		if err != nil {
			return nil, fmt.Errorf("the replicators of %s do not answer: %s", r.self.Name, describe(err))
		}
		for _, s := range sv.GetServices() {
			if s.GetStateKind() == replicatorpb.ReplicatorState_REPLICATOR_STATE_ONLINE {
				out[c.key] = append(out[c.key], s.GetService())
			}
		}
	}
	return out, nil
}

// undo puts the host back in service as it was after a copy that failed
// without touching its data.
func (r *run) undo(ctx context.Context, cause error, state string, online map[string][]string) error {
	var problems []string
	for key, rc := range map[string]replicatorpb.ReplicatorClient{"": r.repl, "x": r.xrepl} {
		for _, s := range online[key] {
			if _, err := rc.Online(ctx, &replicatorpb.OnlineRequest{Service: s}); err != nil {
				problems = append(problems, fmt.Sprintf("%s online: %s", s, describe(err)))
			}
		}
	}
	if state != "SHUNNED" && len(problems) == 0 {
		if err := r.command(ctx, false, command.Datasource(r.self.Name, managerpb.DatasourceAction_DATASOURCE_ACTION_RECOVER)); err != nil {
			problems = append(problems, err.Error())
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w; the data of %s was not changed, but bringing it back failed (%s): it stays SHUNNED", cause, r.self.Name, strings.Join(problems, "; "))
	}
	return fmt.Errorf("%w; nothing was changed: %s is back as it was", cause, r.self.Name)
}
