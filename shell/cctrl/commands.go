package cctrl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/carbidedb/carbide/rpc/command"
	"github.com/carbidedb/carbide/rpc/gen/replicatorpb"
)

// run carries out a parsed command.
func (s *Session) run(ctx context.Context, c Command) error {
	switch c.Name {
	case "exit":
		return errExit
	case "help":
		s.help(c.Value)
		return nil
	case "expert":
		return s.enterExpert()
	case "use", "cd":
		return s.use(c)
	case "mm":
		return s.enterMM()
	case "exit-mm":
		s.mode = Logical
		return nil
	}
	if s.mode == MM {
		return s.runMM(ctx, c)
	}
	if c.Name == "ls" && s.service == "" && s.topo.configured() {
		return s.lsRoot(c)
	}
	if c.Name == "set" && c.Action == "force" {
		s.force = c.Value == "true"
		s.println("FORCE: " + c.Value)
		return nil
	}
	if s.service == "" && s.topo.configured() {
		return s.needService(c)
	}
	switch c.Name {
	case "ls":
		return s.ls(ctx, c)
	case "members":
		return s.command(ctx, command.Members())
	case "ping":
		return s.command(ctx, command.Ping())
	case "set":
		mode, err := command.PolicyMode(c.Value)
		if err != nil {
			return usagef("%v", err)
		}
		return s.command(ctx, command.Policy(mode))
	case "datasource":
		if err := s.checkMember("datasource "+c.Host, c.Host); err != nil {
			return err
		}
		action, err := command.DatasourceAction(c.Action)
		if err != nil {
			return usagef("%v", err)
		}
		return s.command(ctx, command.Datasource(c.Host, action))
	case "replicator":
		if err := s.checkMember("replicator "+c.Host, c.Host); err != nil {
			return err
		}
		if c.Action == "status" {
			return s.replicatorStatus(ctx, c.Host)
		}
		online, err := command.OnOff(c.Action)
		if err != nil {
			return usagef("%v", err)
		}
		return s.command(ctx, command.Replicator(c.Host, online))
	case "router":
		if err := s.checkConnector(c.Host); err != nil {
			return err
		}
		online, err := command.OnOff(c.Action)
		if err != nil {
			return usagef("%v", err)
		}
		return s.command(ctx, command.Router(c.Host, online))
	case "switch", "failover":
		if c.Host != "" {
			if err := s.checkMember(c.Name+" to "+c.Host+": "+c.Host, c.Host); err != nil {
				return err
			}
		}
		if c.Name == "switch" {
			return s.command(ctx, command.Switch(c.Host))
		}
		return s.command(ctx, command.Failover(c.Host))
	case "service":
		if err := s.checkMember("service "+c.Host+"/mysql: "+c.Host, c.Host); err != nil {
			return err
		}
		action, err := command.ServiceAction(c.Action)
		if err != nil {
			return usagef("%v", err)
		}
		return s.command(ctx, command.Service(c.Host, action))
	case "cluster":
		if c.Action == "check" {
			return s.clusterCheck(ctx, c)
		}
		if c.Action != "heartbeat" {
			return usagef("unknown cluster action %q; use heartbeat or check", c.Action)
		}
		return s.command(ctx, command.Heartbeat())
	}
	return usagef("%s is not a command of %s mode", c.Name, strings.ToLower(s.mode.String()))
}

// help prints the command list, or one command's usage and notes.
func (s *Session) help(topic string) {
	if topic != "" {
		sp := lookup(topic)
		s.println("usage: "+sp.usage, "", sp.summary+".")
		if sp.help != "" {
			s.println("", sp.help)
		}
		return
	}
	var lines []string
	lines = append(lines, "Commands ("+strings.ToLower(s.mode.String())+" mode; help COMMAND for more):")
	width := 0
	for _, sp := range commands() {
		if sp.modes&s.mode != 0 {
			width = max(width, len(sp.name))
		}
	}
	for _, sp := range commands() {
		if sp.modes&s.mode != 0 {
			lines = append(lines, fmt.Sprintf("  %-*s  %s", width, sp.name, sp.summary))
		}
	}
	s.println(lines...)
}

// enterExpert turns expert mode on, after a confirmation on a terminal.
func (s *Session) enterExpert() error {
	if s.expert {
		return nil
	}
	if s.env.Terminal {
		fmt.Fprint(s.env.Out, "WARNING: This is an expert-level command:\nIncorrect use may cause data corruption\nor make the cluster unavailable.\n\n")
		if !s.confirm("Do you want to continue?") {
			return errorf(ErrCancelled, "expert mode not entered")
		}
	}
	s.expert = true
	return nil
}

// use changes the service acted on.
func (s *Session) use(c Command) error {
	if c.Value == ".." {
		if s.mode == MM {
			return usagef("mm mode acts on the hosts of one site; use SITE changes the site (services: %s)", strings.Join(s.topo.services(), ", "))
		}
		if !s.topo.configured() {
			return usagef("without an install cctrl knows only the service of -host (%s); there is no root to go to", s.service)
		}
		s.service = ""
		return nil
	}
	if !s.topo.configured() {
		if c.Value == s.service || s.service == "" {
			s.service = c.Value
			return nil
		}
		return usagef("without an install cctrl knows only the service of -host (%s); run cctrl from an install to use %s", s.service, c.Value)
	}
	if !s.topo.hasService(c.Value) {
		return s.noService(c.Value)
	}
	if s.mode == MM && len(s.topo.crossSiteHosts(c.Value)) == 0 {
		return usagef("no host of %s runs a cross-site replicator; exit-mm to act on its cluster", c.Value)
	}
	s.service = c.Value
	return nil
}

// enterMM switches to the cross-site replicators of the service's hosts.
func (s *Session) enterMM() error {
	if !s.topo.configured() {
		return usagef("mm mode needs the install's configuration: run %s from an install (its bin/, or after sourcing share/env.sh)", s.cfg.Name)
	}
	site := s.service
	if site == "" {
		site = s.topo.site
	}
	if len(s.topo.crossSiteHosts(site)) == 0 {
		return usagef("no host of %s runs a cross-site replicator (no cluster-slave service writes into %s)", site, site)
	}
	s.service, s.mode = site, MM
	return nil
}

// lsRoot lists the services at the root.
func (s *Session) lsRoot(c Command) error {
	if c.Host != "" || c.Action != "" || c.JSON || c.Long {
		return s.needService(c)
	}
	var lines []string
	for _, name := range s.topo.services() {
		l := name
		if name == s.topo.site {
			l += " (this host's site)"
		}
		lines = append(lines, l)
	}
	s.println(append([]string{"", "SERVICES:"}, box(lines)...)...)
	return nil
}

// ls prints the service's status.
func (s *Session) ls(ctx context.Context, c Command) error {
	r, err := s.status(ctx, s.service)
	if err != nil {
		return err
	}
	if c.Host != "" && !slices.ContainsFunc(r.GetDatasources(), func(d *dsT) bool { return d.GetHost() == c.Host }) {
		var hosts []string
		for _, d := range r.GetDatasources() {
			hosts = append(hosts, d.GetHost())
		}
		return usagef("ls %s: %s is not a member of %s (members: %s)", c.Host, c.Host, r.GetSite(), strings.Join(hosts, ", "))
	}
	switch {
	case c.JSON:
		b, err := protojson.MarshalOptions{Multiline: true, Indent: "  ", UseProtoNames: true, EmitUnpopulated: true}.Marshal(r)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(s.env.Out, "%s\n", b)
		return err
	case c.Action == "resources":
		return writeTable(s.env.Out, resourcesTable(r))
	}
	s.println(LsLines(r, LsOptions{Host: c.Host, Long: c.Long, SSL: s.topo.thlSSL})...)
	return nil
}

// replicatorStatus asks host's cluster replicator for its status and
// prints trepctl's fields.
func (s *Session) replicatorStatus(ctx context.Context, host string) error {
	address := ""
	if !s.topo.configured() {
		// Only the manager knows where the host is.
		r, err := s.status(ctx, s.service)
		if err != nil {
			return err
		}
		for _, d := range r.GetDatasources() {
			if d.GetHost() == host {
				address = d.GetAddress()
			}
		}
	}
	addr, ok := s.topo.replicator(host, address)
	if !ok {
		return usagef("replicator %s: %s runs no replicator of %s", host, host, s.service)
	}
	return s.printReplicatorStatus(ctx, addr, host, s.service, "replicator start")
}

// printReplicatorStatus prints service's status fields from the replicator
// at addr (service "" picks its only service).
func (s *Session) printReplicatorStatus(ctx context.Context, addr, host, service, start string) error {
	api, closeFn, err := s.env.DialReplicator(ctx, addr)
	if err != nil {
		return err
	}
	defer closeFn()
	tctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	if service == "" {
		r, err := api.Services(tctx, &replicatorpb.ServicesRequest{})
		if err != nil {
			return errors.New(rpcMessage(err, "the replicator of "+host, addr, start))
		}
		var names []string
		for _, st := range r.GetServices() {
			names = append(names, st.GetService())
		}
		if len(names) != 1 {
			return usagef("replicator %s status: the replicator runs %s; choose one with -service S", host, describeServices(names))
		}
		service = names[0]
	}
	r, err := api.Status(tctx, &replicatorpb.StatusRequest{Service: service})
	if err != nil {
		return errors.New(rpcMessage(err, "the replicator of "+host, addr, start))
	}
	writeFields(s.env.Out, r.GetStatus().GetFields())
	return nil
}

func describeServices(names []string) string {
	if len(names) == 0 {
		return "no service"
	}
	return "services " + strings.Join(names, ", ")
}

// writeFields prints replicator status fields the way trepctl status does.
func writeFields(w io.Writer, fields []*replicatorpb.Field) {
	sorted := slices.Clone(fields)
	slices.SortStableFunc(sorted, func(a, b *replicatorpb.Field) int { return strings.Compare(a.GetName(), b.GetName()) })
	width := 4
	for _, f := range sorted {
		width = max(width, len(f.GetName()))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%-*s  VALUE\n%-*s  -----\n", width, "NAME", width, "----")
	for _, f := range sorted {
		fmt.Fprintf(&b, "%-*s: %s\n", width+1, f.GetName(), f.GetValue())
	}
	io.WriteString(w, b.String())
}
