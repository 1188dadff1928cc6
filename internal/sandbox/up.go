package sandbox

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/carbidedb/carbide/internal/config"
	"github.com/carbidedb/carbide/internal/install"
	"github.com/carbidedb/carbide/internal/mysqld"
	"github.com/carbidedb/carbide/internal/netns"
)

// Up brings the sandbox up: databases, installs, agents; then prints a
// summary. It is safe to run again: what runs is left alone, what does not
// is started.
func Up(ctx context.Context, cfg Config) error {
	begin := time.Now()
	if _, err := mysqld.LookPath(); err != nil {
		return err
	}
	s, err := open(cfg, true)
	if err != nil {
		return err
	}
	defer s.release()
	if s.config.SandboxNetNS != "" {
		if err := checkNetNS(); err != nil {
			return err
		}
		b, err := s.bed()
		if err != nil {
			return err
		}
		if err := s.bedUp(ctx, b); err != nil {
			return err
		}
	}
	if err := s.startDatabases(ctx); err != nil {
		return err
	}
	if err := s.installAll(); err != nil {
		return err
	}
	if err := s.startAgents(ctx); err != nil {
		return err
	}
	if err := s.waitManagers(ctx, 60*time.Second); err != nil {
		return err
	}
	s.say("sandbox up: %d hosts in %.1fs", len(s.plan.Hosts), time.Since(begin).Seconds())
	if err := s.printStatus(ctx); err != nil {
		return err
	}
	first := s.plan.Hosts[0]
	var env []string
	for _, in := range first.Installs() {
		env = append(env, "source "+install.EnvPath(in.Dir))
	}
	s.say("\nto act as %s, the way the guide's step 6 does:\n  %s", first.Name, strings.Join(env, "\n  "))
	return nil
}

// startDatabases starts every host's mariadbd that is not running, in
// parallel, and checks that the running ones answer.
func (s *Sandbox) startDatabases(ctx context.Context) error {
	hosts := s.dbHosts()
	errs := make([]error, len(hosts))
	var wg sync.WaitGroup
	var mu sync.Mutex
	for i, h := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			line, err := s.startDatabase(ctx, h)
			errs[i] = err
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				s.say("%s: %s", h.Name, firstLine(err.Error()))
				return
			}
			s.say("%s: %s", h.Name, line)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%d of %d databases did not start; see the lines above and %s/<host>/mysql/error.log", countErrs(errs), len(hosts), s.cfg.Dir)
	}
	return nil
}

func countErrs(errs []error) int {
	n := 0
	for _, e := range errs {
		if e != nil {
			n++
		}
	}
	return n
}

func (s *Sandbox) startDatabase(ctx context.Context, h *config.HostPlan) (string, error) {
	dc, _ := s.dbConfig(h)
	desc := fmt.Sprintf("%s:%d, server-id %d, auto-increment %d/%d", dc.Address, dc.Port, dc.ServerID, dc.AutoIncrementIncrement, dc.AutoIncrementOffset)
	// A server killed a moment ago still has a pid while it exits (this
	// VM reaps late): wait for it to answer or to be gone.
	for wait := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		pid, running := mysqld.ReadPID(dc.Dir)
		if !running {
			break
		}
		err := ping(ctx, dc)
		if err == nil {
			return fmt.Sprintf("mariadbd already running (pid %d) on %s", pid, desc), nil
		}
		if time.Now().After(wait) || ctx.Err() != nil {
			return "", fmt.Errorf("mariadbd runs (pid %d) but does not answer on %s:%d: %v; run sandbox down and up again", pid, dc.Address, dc.Port, err)
		}
	}
	// A server that just crashed may hold its port for a moment while its
	// threads exit (its pid is a zombie before its sockets close).
	for wait := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		err := s.portFree(dc)
		if err == nil {
			break
		}
		if time.Now().After(wait) {
			return "", err
		}
	}
	fresh := ""
	if _, err := os.Stat(filepath.Join(dc.Dir, "data")); err == nil {
		fresh = " on its existing datadir"
	}
	var tmpl *mysqld.Template
	if fresh == "" && s.cfg.Restore != "" && s.added[h.Name] {
		t, err := mysqld.TemplateFrom(s.cfg.Restore)
		if err != nil {
			return "", err
		}
		tmpl, fresh = t, " from the backup "+s.cfg.Restore
	}
	begin := time.Now()
	srv, err := mysqld.Start(ctx, dc, tmpl)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("mariadbd started%s (pid %d) on %s in %.1fs", fresh, srv.PID(), desc, time.Since(begin).Seconds()), nil
}

// portFree is portFree inside the database's namespace, if it has one.
func (s *Sandbox) portFree(dc mysqld.Config) error {
	if dc.NetNS == "" {
		return portFree(dc)
	}
	return netns.Do(dc.NetNS, func() error { return portFree(dc) })
}

// portFree checks that nothing else listens on a database's address and
// port, so a clash is one clear sentence rather than a server log.
func portFree(dc mysqld.Config) error {
	addr := fmt.Sprintf("%s:%d", dc.Address, dc.Port)
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("%s is already in use by another process (another sandbox? stop it, or give this one --net N)", addr)
	}
	return l.Close()
}

// ping checks that a host's database answers over TCP as root.
func ping(ctx context.Context, dc mysqld.Config) error {
	mc := mysql.NewConfig()
	mc.User, mc.Net, mc.Addr = "root", "tcp", fmt.Sprintf("%s:%d", dc.Address, dc.Port)
	mc.Timeout = 3 * time.Second
	conn, err := mysql.NewConnector(mc)
	if err != nil {
		return err
	}
	db := sql.OpenDB(conn)
	defer db.Close()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return db.PingContext(ctx)
}

// installAll runs tpm install's code for every host.
func (s *Sandbox) installAll() error {
	if s.cfg.Staging == "" {
		return errors.New("sandbox: no release directory; run it as bin/sandbox from a built release")
	}
	for _, h := range s.plan.Hosts {
		if _, err := install.Install(s.config, h.Name, install.Options{Staging: s.cfg.Staging, INI: []string{s.iniPath()}}); err != nil {
			return err
		}
	}
	s.say("installed every host under %s/<host>/ (cluster install and cross-site replicator, as tpm install writes them)", s.cfg.Dir)
	return nil
}

// agent is one agent process of an install.
type agent struct {
	host    string
	in      *config.Install
	program string // in the release's bin/
}

func (a agent) command() string {
	return filepath.Join(install.BinDir(a.in.Dir), install.CommandName(a.in.Settings.ExecutablePrefix, a.program))
}

// agents lists every agent of the plan, in start order: replicators, then
// managers, then connectors.
func (s *Sandbox) agents() []agent {
	var out []agent
	for _, prog := range []string{"replicator", "manager", "connector"} {
		for _, h := range s.plan.Hosts {
			for _, in := range h.Installs() {
				run := map[string]bool{"replicator": in.Replicator, "manager": in.Manager, "connector": in.Connector}[prog]
				if run {
					out = append(out, agent{host: h.Name, in: in, program: prog})
				}
			}
		}
	}
	return out
}

// startAgents starts the agents the release has (`<wrapper> start`) and
// names the ones it does not have yet. The agents of one program start
// at once (each start waits until its agent answers), the programs in
// order: replicators, managers, connectors.
func (s *Sandbox) startAgents(ctx context.Context) error {
	missing := map[string]bool{}
	var order []string
	var group []agent
	flush := func() error {
		lines := make([]string, len(group))
		errs := make([]error, len(group))
		var wg sync.WaitGroup
		for i, a := range group {
			wg.Add(1)
			go func() {
				defer wg.Done()
				lines[i], errs[i] = s.startAgent(ctx, a, "start")
			}()
		}
		wg.Wait()
		for _, l := range lines {
			if l != "" {
				s.say("%s", l)
			}
		}
		group = group[:0]
		return errors.Join(errs...)
	}
	for _, a := range s.agents() {
		if len(group) > 0 && group[0].program != a.program {
			if err := flush(); err != nil {
				return err
			}
		}
		if !s.hasProgram(a.program) {
			if !missing[a.program] {
				order = append(order, a.program)
			}
			missing[a.program] = true
			continue
		}
		group = append(group, a)
	}
	if err := flush(); err != nil {
		return err
	}
	if len(order) > 0 {
		s.say("not in this release yet, so not started: %s", strings.Join(order, ", "))
	}
	return nil
}

// startAgent runs `<wrapper> verb` (start or stop) and returns the line
// to print.
func (s *Sandbox) startAgent(ctx context.Context, a agent, verb string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, a.command(), verb).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%s: %s %s failed: %v: %s", a.host, filepath.Base(a.command()), verb, err, strings.TrimSpace(string(out)))
	}
	return fmt.Sprintf("%s: %s %s: %s", a.host, filepath.Base(a.command()), verb, firstLine(string(out))), nil
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	if s == "" {
		return "ok"
	}
	return s
}
