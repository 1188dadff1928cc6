package tpm

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/carbidedb/carbide/internal/config"
	"github.com/carbidedb/carbide/internal/daemon"
	"github.com/carbidedb/carbide/internal/install"
	"github.com/carbidedb/carbide/internal/systemd"
	"github.com/carbidedb/carbide/rpc/gen/replicatorpb"
)

// startOrder is the order tpm install starts agents in, the sandbox's:
// every replicator first, then the managers, then the connectors.
var startOrder = []string{systemd.Replicator, systemd.Manager, systemd.Connector}

// starts reports whether tpm install starts an install's agents:
// start=true, or start-and-report=true, which starts them too.
func starts(st config.Settings) bool { return st.Start || st.StartAndReport }

// startAgents is tpm install's start and start-and-report: it starts,
// through their wrappers (`<wrapper> start`, which goes through systemctl
// when the agent's unit is installed and waits until the agent answers),
// the agents of ins that do not run, in startOrder, one line each. With
// start-and-report it then prints each agent's status. A sandbox's agents
// are the sandbox's to start: tpm starts none there. It reports whether
// every agent it started came up.
func (r *runner) startAgents(ctx context.Context, cfg *config.Config, ins []*config.Install) bool {
	if cfg.SandboxRoot != "" {
		return true
	}
	ok := true
	for _, agent := range startOrder {
		for _, in := range ins {
			if !starts(in.Settings) || !slices.Contains(systemd.Agents(in), agent) {
				continue
			}
			wrapper := agentWrapper(in, agent)
			spec := daemon.Spec{PIDFile: install.PIDFile(in.Dir, agent), Mark: "--home=" + in.Dir}
			if pid, running := daemon.Running(spec); running {
				fmt.Fprintf(r.env.Out, "%s: %s: already running (PID:%d)\n", in.Host, wrapper, pid)
				continue
			}
			line, err := runWrapper(ctx, wrapper, "start")
			if err != nil {
				r.errorf("%s: %s start failed (%v: %s); the install is written: once that is fixed, run %s start", in.Host, wrapper, err, line, wrapper)
				ok = false
				continue
			}
			fmt.Fprintf(r.env.Out, "%s: %s start: %s\n", in.Host, wrapper, line)
		}
	}
	for _, in := range ins {
		if in.Settings.StartAndReport {
			r.report(ctx, cfg, in)
		}
	}
	return ok
}

// agentWrapper is the install's wrapper of agent: <install>/bin/<prefix_>agent.
func agentWrapper(in *config.Install, agent string) string {
	return filepath.Join(install.BinDir(in.Dir), install.CommandName(in.Settings.ExecutablePrefix, agent))
}

// report prints one line for each agent of in: a running replicator's
// services and their states (once they have settled, as after tpm update's
// restart), else the agent's `<wrapper> status`.
func (r *runner) report(ctx context.Context, cfg *config.Config, in *config.Install) {
	for _, agent := range startOrder {
		if !slices.Contains(systemd.Agents(in), agent) {
			continue
		}
		wrapper := agentWrapper(in, agent)
		line, err := runWrapper(ctx, wrapper, "status")
		if agent != systemd.Replicator || err != nil {
			fmt.Fprintf(r.env.Out, "%s: %s status: %s\n", in.Host, wrapper, line)
			continue
		}
		fmt.Fprintf(r.env.Out, "%s: %s services: %s\n", in.Host, wrapper, replicatorServices(cfg, in))
	}
}

// replicatorServices says what the replicator of in runs: each service,
// its state and role, the last transaction it applied and the error that
// stopped it, if any.
func replicatorServices(cfg *config.Config, in *config.Install) string {
	c, closeConn, err := dialReplicator(cfg, in)
	if err != nil {
		return "cannot ask its control API (" + err.Error() + ")"
	}
	defer closeConn()
	svcs, err := settledServices(c, settleWait)
	if err != nil {
		return fmt.Sprintf("its control API at %s does not answer (%v)", controlAddr(cfg, in), err)
	}
	if len(svcs) == 0 {
		return "none"
	}
	var out []string
	for _, s := range svcs {
		out = append(out, describeService(s))
	}
	return strings.Join(out, "; ")
}

// describeService is one service in a report: "east ONLINE (master,
// applied seqno 12)".
func describeService(s *replicatorpb.ServiceStatus) string {
	what := []string{s.GetRole()}
	if s.GetAppliedLastSeqno() >= 0 {
		what = append(what, fmt.Sprintf("applied seqno %d", s.GetAppliedLastSeqno()))
	} else {
		what = append(what, "nothing applied yet")
	}
	if e := s.GetPendingError(); e != "" {
		what = append(what, "error: "+e)
	}
	return fmt.Sprintf("%s %s (%s)", s.GetService(), s.GetState(), strings.Join(what, ", "))
}

// lastByDir keeps, of installs written into the same directory (several
// hosts installed on one machine without a sandbox), the last one: the
// one on disk.
func lastByDir(ins []*config.Install) []*config.Install {
	var out []*config.Install
	seen := map[string]bool{}
	for i := len(ins) - 1; i >= 0; i-- {
		if !seen[ins[i].Dir] {
			seen[ins[i].Dir] = true
			out = append(out, ins[i])
		}
	}
	slices.Reverse(out)
	return out
}
