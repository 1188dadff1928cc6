package multitrepctl

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strings"
	"sync"

	"github.com/carbidedb/carbide/internal/config"
	"github.com/carbidedb/carbide/internal/install"
	"github.com/carbidedb/carbide/internal/security"
	"github.com/carbidedb/carbide/rpc/gen/replicatorpb"
	"github.com/carbidedb/carbide/shell/trepctl"
)

// multi is one invocation.
type multi struct {
	env Env
	cfg Config
}

// exec loads the configuration and runs cmd.
func (m *multi) exec(ctx context.Context, cmd string, rest []string) (int, error) {
	conf, err := m.loadConfig()
	if err != nil {
		return ExitFailed, err
	}
	if m.env.Dial == nil {
		// The install's own settings when run from one, else the ini's.
		var sec *security.Cluster
		if m.cfg.INI == "" && m.env.Getenv(install.EnvHome) != "" {
			sec, err = security.FromEnv(m.env.Getenv)
		} else {
			sec, err = security.ForConfig(conf)
		}
		if err != nil {
			return ExitFailed, err
		}
		m.env.Dial = trepctl.DialWith(sec)
	}
	targets, sites, err := m.targets(conf)
	if err != nil {
		return ExitFailed, err
	}
	switch cmd {
	case "run":
		return m.run(ctx, targets, sites, rest)
	case "heartbeat":
		return m.heartbeat(ctx, targets, sites)
	case "position":
		return m.list(ctx, targets, sites, positionFields)
	}
	return m.list(ctx, targets, sites, listFields)
}

// collect asks every target and returns the selected rows, sorted, and
// whether every replicator answered. Those that did not are reported on
// Err, one sentence each.
func (m *multi) collect(ctx context.Context, targets []target, sites []string) ([]*row, []*answer, bool, func()) {
	answers, closeAll := ask(ctx, m.env.Dial, targets, m.cfg.Timeout)
	var rows []*row
	allAnswered := true
	for _, a := range answers {
		if a.err != nil {
			allAnswered = false
			fmt.Fprintf(m.env.Err, "%s: %s\n", m.env.Name, describe(a))
			for _, r := range deadRows(a.t, a.err) {
				if m.wants(r.service) {
					rows = append(rows, r)
				}
			}
			continue
		}
		for _, st := range a.services {
			if m.wants(st.GetService()) {
				rows = append(rows, statusRow(a.t, st))
			}
		}
	}
	sortRows(rows, sites, m.cfg.ByService, m.cfg.SortBy)
	return rows, answers, allAnswered, closeAll
}

// fields returns --fields, or the command's defaults.
func (m *multi) fields(defaults []string) []string {
	if len(m.cfg.Fields) > 0 {
		return m.cfg.Fields
	}
	return defaults
}

// list prints one row per (host, service): list and position.
func (m *multi) list(ctx context.Context, targets []target, sites []string, defaults []string) (int, error) {
	rows, _, ok, closeAll := m.collect(ctx, targets, sites)
	defer closeAll()
	fields := m.fields(defaults)
	if err := checkFields(rows, append([]string{m.cfg.SortBy}, fields...)...); err != nil {
		return ExitUsage, err
	}
	if err := printTable(m.env.Out, m.cfg.Output, m.cfg.HideHeaders, buildTable(fields, rows)); err != nil {
		return ExitFailed, err
	}
	if !ok {
		return ExitFailed, nil
	}
	return ExitOK, nil
}

// heartbeat writes a heartbeat through every selected master service and
// prints one row per master, its heartbeat column "ok" or the error.
func (m *multi) heartbeat(ctx context.Context, targets []target, sites []string) (int, error) {
	rows, answers, ok, closeAll := m.collect(ctx, targets, sites)
	defer closeAll()
	fields := m.fields(heartbeatFields)
	if err := checkFields(rows, append([]string{m.cfg.SortBy}, fields...)...); err != nil {
		return ExitUsage, err
	}
	clients := map[string]replicatorpb.ReplicatorClient{}
	for _, a := range answers {
		if a.err == nil {
			clients[a.t.host.Name+"/"+string(a.t.in.Kind)] = a.client
		}
	}
	var masters []*row
	for _, r := range rows {
		if r.answered && r.role == config.RoleMaster {
			masters = append(masters, r)
		}
	}
	if len(masters) == 0 {
		return ExitFailed, fmt.Errorf("no master service among the replicators that answered; nothing to send a heartbeat through")
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, r := range masters {
		client := clients[r.host+"/"+string(r.kind)]
		wg.Go(func() {
			hctx, cancel := context.WithTimeout(ctx, m.cfg.Timeout)
			defer cancel()
			_, err := client.Heartbeat(hctx, &replicatorpb.HeartbeatRequest{Service: r.service, Name: m.cfg.HeartbeatName})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				ok = false
				r.values["heartbeat"] = deadState(err)
				fmt.Fprintf(m.env.Err, "%s: heartbeat on %s:%s: %s\n", m.env.Name, r.host, r.service, strings.TrimPrefix(deadState(err), "ERROR: "))
				return
			}
			r.values["heartbeat"] = "ok"
		})
	}
	wg.Wait()
	if err := printTable(m.env.Out, m.cfg.Output, m.cfg.HideHeaders, buildTable(fields, masters)); err != nil {
		return ExitFailed, err
	}
	if !ok {
		return ExitFailed, nil
	}
	return ExitOK, nil
}

// run runs trepctl with args on every selected (host, service) of the
// configuration, all at once, and prints each one's output after a header
// line naming it, in the list's order.
func (m *multi) run(ctx context.Context, targets []target, sites []string, args []string) (int, error) {
	type job struct {
		header string
		out    bytes.Buffer
		code   int
	}
	var rows []*row
	byRow := map[*row]target{}
	for _, t := range targets {
		for _, sp := range t.in.Services {
			if !m.wants(sp.Name) {
				continue
			}
			r := &row{host: t.host.Name, hostPos: t.hostPos, service: sp.Name, kind: t.in.Kind, role: sp.Role, values: map[string]string{}}
			rows = append(rows, r)
			byRow[r] = t
		}
	}
	sortRows(rows, sites, m.cfg.ByService, "")
	jobs := make([]*job, len(rows))
	var wg sync.WaitGroup
	for i, r := range rows {
		t := byRow[r]
		host, port, _ := net.SplitHostPort(t.addr)
		targs := append([]string{"-host", host, "-port", port, "-service", r.service}, args...)
		j := &job{header: fmt.Sprintf("# %s %s: trepctl %s", r.host, r.service, strings.Join(targs, " "))}
		jobs[i] = j
		wg.Go(func() {
			env := trepctl.Env{In: strings.NewReader(""), Out: &j.out, Err: &j.out, Getenv: func(string) string { return "" }, Name: "trepctl", Dial: m.env.Dial}
			j.code = trepctl.Main(ctx, targs, env)
		})
	}
	wg.Wait()
	code := ExitOK
	for i, j := range jobs {
		if i > 0 {
			fmt.Fprintln(m.env.Out)
		}
		fmt.Fprintln(m.env.Out, j.header)
		m.env.Out.Write(j.out.Bytes())
		switch {
		case j.code == ExitOK:
		case j.code == trepctl.ExitUsage && (code == ExitOK || code == ExitUsage):
			code = ExitUsage
		default:
			code = ExitFailed
		}
	}
	return code, nil
}
