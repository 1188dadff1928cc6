package manager

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/carbidedb/carbide/internal/install"
	"github.com/carbidedb/carbide/manager/policy"
	"github.com/carbidedb/carbide/rpc/gen/replicatorpb"
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
func (a *Agent) local(ctx context.Context, op string) ([]string, error) {
	if a.witness {
		return nil, userErr("%s is a witness; it has no database", a.self)
	}
	switch op {
	case "dataserver-start", "dataserver-stop", "dataserver-restart":
		verb := strings.TrimPrefix(op, "dataserver-")
		argv := a.bootScript(verb)
		cctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(cctx, argv[0], argv[1:]...)
		cmd.Env = append(os.Environ(), install.EnvHost+"="+a.self)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		a.log.Info("dataserver", "verb", verb, "command", strings.Join(argv, " "))
		err := cmd.Run()
		lines := nonEmptyLines(out.String())
		if err != nil {
			return nil, fmt.Errorf("%s on %s failed (%v): %s", strings.Join(argv, " "), a.self, err, strings.Join(lines, "; "))
		}
		return append(lines, fmt.Sprintf("service %s/mysql %s: done", a.self, verb)), nil
	case "read-only", "writable":
		if err := a.remote.setReadOnly(ctx, a.self, op == "read-only", 5*time.Second); err != nil {
			return nil, err
		}
		return []string{fmt.Sprintf("%s is %s", a.self, op)}, nil
	}
	return nil, userErr("unknown local operation %q", op)
}

func nonEmptyLines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

func heartbeatRequest(svc string) *replicatorpb.HeartbeatRequest {
	return &replicatorpb.HeartbeatRequest{Service: svc, Name: "MANUAL"}
}

func onlineRequest(svc string) *replicatorpb.OnlineRequest {
	return &replicatorpb.OnlineRequest{Service: svc}
}

func offlineRequest(svc string) *replicatorpb.OfflineRequest {
	return &replicatorpb.OfflineRequest{Service: svc}
}

// connectorReport is what this host's connector writes to
// var/run/connector.json every 500 ms.
type connectorReport struct {
	PID     int64               `json:"pid"`
	State   string              `json:"state"`
	Created int64               `json:"created"`
	Active  int64               `json:"active"`
	PerHost map[string][2]int64 `json:"per_host"`
	At      time.Time           `json:"at"`
}

// connectorFacts adds this host's connector's counters to f (nothing when
// it does not run or stopped reporting).
func (a *Agent) connectorFacts(f *policy.Facts) {
	if !a.bound.Install.Connector {
		return
	}
	b, err := os.ReadFile(filepath.Join(install.RunDir(a.cfg.Home), "connector.json"))
	if err != nil {
		return
	}
	var r connectorReport
	if json.Unmarshal(b, &r) != nil || time.Since(r.At) > 3*time.Second {
		return
	}
	f.ConnPID, f.ConnState, f.Created, f.Active = r.PID, r.State, r.Created, r.Active
	f.ConnPerHost = formatPerHost(r.PerHost)
}

func formatPerHost(m map[string][2]int64) string {
	var parts []string
	for _, h := range sortedKeys(m) {
		parts = append(parts, fmt.Sprintf("%s=%d/%d", h, m[h][0], m[h][1]))
	}
	return strings.Join(parts, ",")
}

// connectionsTo sums every connector's connections to host.
func connectionsTo(facts map[string]policy.Facts, host string) (created, active int64) {
	for _, f := range facts {
		if !f.Alive {
			continue
		}
		for _, part := range strings.Split(f.ConnPerHost, ",") {
			h, v, ok := strings.Cut(part, "=")
			if !ok || h != host {
				continue
			}
			var c, a int64
			fmt.Sscanf(v, "%d/%d", &c, &a)
			created += c
			active += a
		}
	}
	return created, active
}
