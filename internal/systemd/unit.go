package systemd

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/carbidedb/carbide/internal/config"
	"github.com/carbidedb/carbide/internal/install"
)

// The agents an install may run as services, in the order its units are
// listed.
const (
	Manager    = "manager"
	Replicator = "replicator"
	Connector  = "connector"
)

// allAgents are the agents in unit order.
var allAgents = []string{Manager, Replicator, Connector}

// Unit is one unit file.
type Unit struct {
	// Name is the unit's name: carbide-cluster-replicator.service.
	Name string
	// Agent is the program it runs: manager, replicator or connector.
	Agent string
	// Text is the file's content.
	Text string
}

// Options are what a unit takes from the machine rather than from the
// configuration.
type Options struct {
	// Group is the primary group of the install's user on this machine;
	// empty leaves Group= out, and systemd runs the agent with the user's
	// default group.
	Group string
}

// Agents returns the agents in runs, in unit order.
func Agents(in *config.Install) []string {
	var out []string
	for _, a := range allAgents {
		if runs(in, a) {
			out = append(out, a)
		}
	}
	return out
}

func runs(in *config.Install, agent string) bool {
	switch agent {
	case Manager:
		return in.Manager
	case Replicator:
		return in.Replicator
	case Connector:
		return in.Connector
	}
	return false
}

// installLabel names an install in unit names and descriptions.
func installLabel(kind config.InstallKind) string {
	if kind == config.CrossSiteInstall {
		return "cross-site"
	}
	return string(kind)
}

// UnitName is the name of the unit that runs agent for the install of
// kind on its host: carbide-cluster-replicator.service,
// carbide-cross-site-replicator.service.
func UnitName(kind config.InstallKind, agent string) string {
	return "carbide-" + installLabel(kind) + "-" + agent + ".service"
}

// Units returns the units of the agents in runs, in unit order.
func Units(in *config.Install, opts Options) []Unit {
	var out []Unit
	for _, a := range Agents(in) {
		out = append(out, Unit{Name: UnitName(in.Kind, a), Agent: a, Text: render(in, a, opts)})
	}
	return out
}

// homeMark starts the comment line that names the install a unit runs an
// agent of; HomeOf reads it back.
const homeMark = "# carbide-home: "

// render writes the unit of agent for the install in.
func render(in *config.Install, agent string, opts Options) string {
	home := in.Dir
	label := installLabel(in.Kind)
	exe := filepath.Join(install.BinDir(home), install.CommandName(in.Settings.ExecutablePrefix, agent))
	var b strings.Builder
	fmt.Fprintf(&b, "# The %s of the %s install of %s; tpm install and tpm update rewrite this file.\n", agent, label, in.Host)
	fmt.Fprintf(&b, "%s%s\n", homeMark, home)
	b.WriteString("[Unit]\n")
	fmt.Fprintf(&b, "Description=%s\n", specifiers(fmt.Sprintf("Carbide %s of %s (%s install in %s)", agent, in.Host, label, home)))
	b.WriteString("Wants=network-online.target\nAfter=network-online.target\n\n")
	b.WriteString("[Service]\nType=simple\n")
	if in.Settings.UserNamed {
		fmt.Fprintf(&b, "User=%s\n", specifiers(in.Settings.User))
		if opts.Group != "" {
			fmt.Fprintf(&b, "Group=%s\n", specifiers(opts.Group))
		}
	}
	fmt.Fprintf(&b, "Environment=%s\n", quote(install.EnvHome+"="+home, false))
	fmt.Fprintf(&b, "WorkingDirectory=%s\n", specifiers(home))
	fmt.Fprintf(&b, "ExecStart=%s %s %s\n", quote(exe, true), "run", quote("--home="+home, true))
	b.WriteString("Restart=on-failure\nRestartSec=2\nLimitNOFILE=65536\n\n")
	b.WriteString("[Install]\nWantedBy=multi-user.target\n")
	return b.String()
}

// HomeOf returns the install directory a unit's text names, or "" for a
// file tpm did not write.
func HomeOf(text string) string {
	for line := range strings.Lines(text) {
		if home, ok := strings.CutPrefix(strings.TrimRight(line, "\n"), homeMark); ok {
			return home
		}
	}
	return ""
}

// specifiers escapes systemd's % specifiers in a value.
func specifiers(s string) string { return strings.ReplaceAll(s, "%", "%%") }

// quote writes one word of a unit setting: as it is when it holds only
// plain characters, else in double quotes with C escapes. In a command
// line (exec) a $ is doubled too, so that systemd does not expand it.
func quote(s string, exec bool) string {
	s = specifiers(s)
	if exec {
		s = strings.ReplaceAll(s, "$", "$$")
	}
	plain := true
	for _, r := range s {
		if r <= ' ' || r == '"' || r == '\'' || r == '\\' || r == ';' || r == 0x7f {
			plain = false
			break
		}
	}
	if plain {
		return s
	}
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < ' ' || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
