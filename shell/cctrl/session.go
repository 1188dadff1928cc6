package cctrl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/carbidedb/carbide/internal/install"
	"github.com/carbidedb/carbide/internal/security"
	"github.com/carbidedb/carbide/rpc/gen/managerpb"
)

// Session is one cctrl session: the service it acts on, its mode and
// flags, and its connections. Exec runs one command line; every front end
// (REPL, script, -e) goes through it. A Session is used by one goroutine.
type Session struct {
	cfg  Config
	env  Env
	topo *topology

	mode    Mode
	service string // the service (site) acted on; "" at the root
	force   bool   // set force true: sent with every command
	expert  bool

	pools map[string]*sitePool
	last  map[string]*managerpb.StatusReply // last status per site
}

// New returns a session. bound is the install cctrl runs from (nil when
// there is none: then -host names the manager).
func New(cfg Config, env Env, bound *install.Bound) (*Session, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if env.Getenv == nil {
		env.Getenv = func(string) string { return "" }
	}
	if env.In == nil {
		env.In = strings.NewReader("")
	}
	if env.Out == nil {
		env.Out = io.Discard
	}
	if env.Err == nil {
		env.Err = io.Discard
	}
	if env.DialManager == nil || env.DialReplicator == nil {
		// The cluster's secret (and certificates) of the install cctrl
		// runs from; without one, calls are refused saying why.
		sec := security.Insecure("")
		if bound != nil {
			var err error
			if sec, err = security.ForInstall(bound); err != nil {
				return nil, err
			}
		}
		if env.DialManager == nil {
			env.DialManager = DialManager(sec)
		}
		if env.DialReplicator == nil {
			env.DialReplicator = DialReplicator(sec)
		}
	}
	t := newTopology(bound, cfg.Host, cfg.Port)
	if bound == nil && cfg.Host == "" {
		return nil, usagef("no manager to talk to: run %s from an install (its bin/, or after sourcing share/env.sh) or give -host HOST [-port P]", cfg.Name)
	}
	s := &Session{cfg: cfg, env: env, topo: t, mode: Logical, pools: map[string]*sitePool{}, last: map[string]*managerpb.StatusReply{}}
	s.service = t.startService(cfg.Service)
	if t.configured() && s.service != "" && !t.hasService(s.service) {
		return nil, s.noService(s.service)
	}
	if cfg.MM {
		if err := s.enterMM(); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Close releases the session's connections.
func (s *Session) Close() {
	for _, p := range s.pools {
		p.closeAll()
	}
}

// Mode returns the session's mode.
func (s *Session) Mode() Mode { return s.mode }

// Service returns the service acted on ("" at the root).
func (s *Session) Service() string { return s.service }

// Prompt is the REPL's prompt: [LOGICAL] /east > , [LOGICAL:EXPERT] /east > ,
// [MM] /west > .
func (s *Session) Prompt() string {
	tag := s.mode.String()
	if s.expert {
		tag += ":EXPERT"
	}
	return fmt.Sprintf("[%s] /%s > ", tag, s.service)
}

// Exec parses and runs one command line, writing results to the Env's Out.
// It returns errExit after exit or quit.
func (s *Session) Exec(ctx context.Context, line string) error {
	c, err := Parse(s.mode, line)
	if err != nil {
		return err
	}
	if c.Name == "" {
		return nil
	}
	return s.run(ctx, c)
}

// Connect asks the service's managers for its status, for the REPL's
// "east: session established". In mm mode nothing is asked: each command
// asks the replicators it needs.
func (s *Session) Connect(ctx context.Context) (string, error) {
	if s.mode == MM {
		return fmt.Sprintf("%s: session established (cross-site replicators)", s.service), nil
	}
	if s.service == "" && s.topo.configured() {
		return "session established", nil
	}
	if _, err := s.status(ctx, s.service); err != nil {
		return "", err
	}
	return s.service + ": session established", nil
}

// pool returns the managers of site. Without an install the only manager
// known is -host's, whatever the site.
func (s *Session) pool(site string) *sitePool {
	key := site
	if !s.topo.configured() {
		key = ""
	}
	p, ok := s.pools[key]
	if !ok {
		p = &sitePool{site: site, eps: s.topo.managers(site), conns: map[string]*managerConn{}, dial: s.env.DialManager}
		s.pools[key] = p
	}
	if p.site == "" {
		p.site = site
	}
	return p
}

func (s *Session) timeout(ctx context.Context) func() (context.Context, context.CancelFunc) {
	return func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, s.cfg.Timeout) }
}

// status returns site's status from one of its managers.
func (s *Session) status(ctx context.Context, site string) (*managerpb.StatusReply, error) {
	r, _, err := s.pool(site).status(ctx, s.timeout(ctx))
	if err != nil {
		return nil, err
	}
	if !s.topo.configured() && site != "" && r.GetSite() != site {
		return nil, usagef("the manager at %s serves %s, not %s; give -host a host of %s", s.pool(site).eps[0].addr, r.GetSite(), site, site)
	}
	s.last[r.GetSite()] = r
	if s.service == "" && !s.topo.configured() {
		s.service = r.GetSite()
	}
	return r, nil
}

// command has the coordinator of the session's service carry out req,
// with the session's force flag, and prints what it answers.
func (s *Session) command(ctx context.Context, req *managerpb.CommandRequest) error {
	p := s.pool(s.service)
	// A status first finds a manager that answers; the command goes to it.
	if _, _, err := p.status(ctx, s.timeout(ctx)); err != nil {
		return err
	}
	c := p.conns[p.eps[p.cur].addr]
	cctx, cancel := context.WithTimeout(ctx, s.cfg.CommandTimeout)
	defer cancel()
	req.Force = s.force
	r, err := c.api.Command(cctx, req)
	if err != nil {
		return errors.New(rpcMessage(err, "the manager of "+c.host, c.addr, "manager start"))
	}
	s.println(r.GetLines()...)
	if u := r.GetUnconfirmed(); u != "" {
		return errorf(ErrUnconfirmed, "%s", u)
	}
	return nil
}

// println writes lines to Out, coloured when the Env allows it.
func (s *Session) println(lines ...string) {
	var b strings.Builder
	for _, l := range lines {
		if s.env.Color {
			l = colorize(l)
		}
		b.WriteString(l)
		b.WriteByte('\n')
	}
	io.WriteString(s.env.Out, b.String())
}

// confirm asks a yes/no question on the terminal and reads the answer from
// In, byte by byte so nothing after the line is consumed.
func (s *Session) confirm(question string) bool {
	fmt.Fprintf(s.env.Out, "%s (y/n)> ", question)
	var line []byte
	buf := make([]byte, 1)
	for {
		n, err := s.env.In.Read(buf)
		if n == 1 {
			if buf[0] == '\n' || buf[0] == '\r' {
				break
			}
			line = append(line, buf[0])
		}
		if err != nil {
			break
		}
	}
	a := strings.ToLower(strings.TrimSpace(string(line)))
	return a == "y" || a == "yes"
}

// needService returns ErrNoService at the root.
func (s *Session) needService(c Command) error {
	if s.service != "" {
		return nil
	}
	if list := s.topo.services(); len(list) > 0 {
		return errorf(ErrNoService, "%s needs a service; choose one with use SERVICE (services: %s)", c.Name, strings.Join(list, ", "))
	}
	return errorf(ErrNoService, "%s needs a service; choose one with use SERVICE", c.Name)
}

func (s *Session) noService(name string) error {
	list := s.topo.services()
	if n := nearest(name, list); n != "" {
		return usagef("no service %q; did you mean %q? (services: %s)", name, n, strings.Join(list, ", "))
	}
	return usagef("no service %q (services: %s)", name, strings.Join(list, ", "))
}

// knownMembers returns the datasources of the service: from the
// configuration, else from the last status.
func (s *Session) knownMembers(site string) []string {
	if m := s.topo.members(site); m != nil {
		return m
	}
	if r := s.last[site]; r != nil {
		var out []string
		for _, d := range r.GetDatasources() {
			out = append(out, d.GetHost())
		}
		return out
	}
	return nil
}

// checkMember refuses a host that is not a datasource of the service,
// before anything is sent. what prefixes the sentence: "datasource east4".
func (s *Session) checkMember(what, host string) error {
	members := s.knownMembers(s.service)
	if members == nil || slices.Contains(members, host) {
		return nil
	}
	return usagef("%s is not a member of %s (members: %s)", what, s.service, strings.Join(members, ", "))
}

// checkConnector refuses a host that runs no connector of the service.
func (s *Session) checkConnector(host string) error {
	if host == "*" || !s.topo.configured() {
		return nil
	}
	conns := s.topo.connectors(s.service)
	if slices.Contains(conns, host) {
		return nil
	}
	if len(conns) == 0 {
		return usagef("router %s: %s runs no connector (no connectors are configured)", host, s.service)
	}
	return usagef("router %s: %s runs no connector of %s (connectors: %s)", host, host, s.service, strings.Join(conns, ", "))
}
