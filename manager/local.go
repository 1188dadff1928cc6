package manager

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/carbidedb/carbide/internal/install"
	"github.com/carbidedb/carbide/internal/textutil"
	"github.com/carbidedb/carbide/manager/policy"
	"github.com/carbidedb/carbide/rpc/gen/managerpb"
	"github.com/carbidedb/carbide/rpc/reason"
)

// bootScript is the command that starts, stops and restarts this host's
// database (the verb is appended): datasource-boot-script from the ini;
// in a sandbox, the release's `sandbox mysql`; else the distribution's
// service.
func (a *Agent) bootScript(verb string) []string {
	if len(a.cfg.BootScript) > 0 {
		return append(append([]string(nil), a.cfg.BootScript...), verb)
	}
	if s := a.st.BootScript; s != "" {
		return append(strings.Fields(s), verb)
	}
	if root := a.bound.Config.SandboxRoot; root != "" {
		exe, err := os.Executable()
		if err == nil {
			return []string{filepath.Join(filepath.Dir(exe), "sandbox"), "mysql", verb, a.self, "--dir", root}
		}
	}
	return []string{"systemctl", verb, "mariadb"}
}

// local runs an operation on this manager's own host.
func (a *Agent) local(ctx context.Context, op managerpb.LocalOp) ([]string, error) {
	if a.witness {
		return nil, reason.Refuse("%s is a witness; it has no database", a.self)
	}
	verb := map[managerpb.LocalOp]string{managerpb.LocalOp_LOCAL_OP_DATASERVER_START: "start",
		managerpb.LocalOp_LOCAL_OP_DATASERVER_STOP: "stop", managerpb.LocalOp_LOCAL_OP_DATASERVER_RESTART: "restart"}[op]
	switch op {
	case managerpb.LocalOp_LOCAL_OP_DATASERVER_START, managerpb.LocalOp_LOCAL_OP_DATASERVER_STOP, managerpb.LocalOp_LOCAL_OP_DATASERVER_RESTART:
		argv := a.bootScript(verb)
		cctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(cctx, argv[0], argv[1:]...)
		cmd.Env = append(os.Environ(), install.EnvHost+"="+a.self)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		a.log.Info("dataserver", "verb", verb, "command", strings.Join(argv, " "))
		err := cmd.Run()
		lines := textutil.Lines(out.String())
		if err != nil {
			return nil, fmt.Errorf("%s on %s failed (%v): %s", strings.Join(argv, " "), a.self, err, strings.Join(lines, "; "))
		}
		return append(lines, fmt.Sprintf("service %s/mysql %s: done", a.self, verb)), nil
	case managerpb.LocalOp_LOCAL_OP_READ_ONLY, managerpb.LocalOp_LOCAL_OP_WRITABLE:
		ro := op == managerpb.LocalOp_LOCAL_OP_READ_ONLY
		if err := a.dbs.SetReadOnly(ctx, a.self, ro, 5*time.Second); err != nil {
			return nil, err
		}
		if ro {
			return []string{a.self + " is read-only"}, nil
		}
		return []string{a.self + " is writable"}, nil
	}
	return nil, usageErr("unknown local operation %v", op)
}

// connectorFacts adds this host's connector's counters to f (nothing when
// it does not run or stopped reporting).
func (a *Agent) connectorFacts(f *policy.Facts) {
	if !a.bound.Install.Connector {
		return
	}
	a.mu.Lock()
	r, ok := a.reports[a.self]
	a.mu.Unlock()
	if !ok || time.Since(r.at) > 3*time.Second {
		return
	}
	f.ConnPID, f.ConnState, f.Created, f.Active = r.GetPid(), r.GetState(), r.GetCreated(), r.GetActive()
	f.ConnPerHost = nil
	for h, c := range r.GetPerHost() {
		if f.ConnPerHost == nil {
			f.ConnPerHost = map[string][2]int64{}
		}
		f.ConnPerHost[h] = [2]int64{c.GetCreated(), c.GetActive()}
	}
}

// connectionsTo sums every connector's connections to host.
func connectionsTo(facts map[string]policy.Facts, host string) (created, active int64) {
	for _, f := range facts {
		if f.Alive {
			created += f.ConnPerHost[host][0]
			active += f.ConnPerHost[host][1]
		}
	}
	return created, active
}
