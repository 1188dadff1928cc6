package trepctl

import (
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
)

// globals are the options that come before the command.
type globals struct {
	host, service string
	port, retry   int
}

// flagSet defines the global options on a new flag set; the flag walk in
// the tests reads the same definitions.
func (g *globals) flagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&g.host, "host", "", "replicator host")
	fs.IntVar(&g.port, "port", 0, "replicator control port (rmi-port)")
	fs.StringVar(&g.service, "service", "", "replication service")
	fs.IntVar(&g.retry, "retry", 0, "retry the connection N times")
	return fs
}

// refusals are the options a command defines but does not carry out, each
// with the reason and what to do instead. They are defined, not left
// unknown, because Tungsten's scripts give them: the operator then reads
// why, not only that the option is unknown. A refused option stops the
// command before it connects, so nothing changes.
var refusals = map[string]map[string]string{
	"reset": {
		"relay": "Carbide keeps no relay log (the replicator reads the binlog directly); reset -all -y resets the THL and the tracking schema",
	},
}

// refusal returns the sentence refusing an option given to cmd, or "".
func refusal(cmd string, fs *flag.FlagSet) string {
	msg := ""
	fs.Visit(func(f *flag.Flag) {
		if why, ok := refusals[cmd][f.Name]; ok && msg == "" {
			msg = fmt.Sprintf("-%s is not supported: %s", f.Name, why)
		}
	})
	return msg
}

// localOnly refuses, for version and help, the global options (they ask
// no replicator) and any further argument; "" when there are none.
func localOnly(fs *flag.FlagSet, cmd string, rest []string) string {
	var set []string
	fs.Visit(func(f *flag.Flag) { set = append(set, "-"+f.Name) })
	switch {
	case len(set) > 0:
		return fmt.Sprintf("%s is not used: %s asks no replicator, so it takes none of -host, -port, -service and -retry", strings.Join(set, ", "), cmd)
	case len(rest) > 0:
		return fmt.Sprintf("unexpected argument %q: %s takes none", rest[0], cmd)
	}
	return ""
}

// parseError turns a command's flag error into a sentence; an option of
// another command says which commands take it.
func (c *command) parseError(err error) string {
	const undefined = "flag provided but not defined: -"
	msg := err.Error()
	name, ok := strings.CutPrefix(msg, undefined)
	if !ok {
		return msg
	}
	var owners []string
	for cmd, run := range c.commands() {
		if cmd == c.name {
			continue
		}
		if fs := commandFlags(cmd, run); fs.Lookup(name) != nil {
			if _, refused := refusals[cmd][name]; !refused {
				owners = append(owners, cmd)
			}
		}
	}
	if g := (&globals{}).flagSet(""); g.Lookup(name) != nil {
		return fmt.Sprintf("-%s is not an option of %s: it is a global option and goes before the command (trepctl -%s X %s)", name, c.name, name, c.name)
	}
	if len(owners) == 0 {
		return fmt.Sprintf("-%s is not an option of %s", name, c.name)
	}
	sort.Strings(owners)
	return fmt.Sprintf("-%s is not an option of %s; it belongs to %s", name, c.name, strings.Join(owners, " and "))
}

// commandFlags returns a flag set with cmd's options defined.
func commandFlags(cmd string, run runner) *flag.FlagSet {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	parse, _ := run()
	parse(fs)
	return fs
}
