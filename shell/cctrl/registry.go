package cctrl

import (
	"strings"
)

// spec is one command of the shell. Each has a section in docs/cctrl.md.
type spec struct {
	name    string
	aliases []string
	modes   Mode
	usage   string // one line, words in CAPITALS are to be replaced
	summary string // what `help` lists
	help    string // what `help NAME` adds
	parse   func(c *Command, mode Mode, args []string) error
	// options are the dash words the command takes; Parse refuses any
	// other before the command's parse sees it, and the flag walk in the
	// tests reads them.
	options []option
}

// option is one dash word of a command, the modes it acts in, and why it
// is refused in the others.
type option struct {
	name    string
	modes   Mode
	refused string
}

// lsMM is why ls's options are refused in mm mode: mmLs draws one box per
// host and has no details or JSON to give.
const lsMM = "mm mode's ls draws a box per host's cross-site services; replicator HOST status shows one's fields"

// clusterMM is why cluster's options are refused in mm mode: it has no
// cluster command.
const clusterMM = "mm mode has no cluster command; exit-mm, then cluster check"

// replicatorLogical is why replicator's options are refused in the cluster.
const replicatorLogical = "in the cluster the replicator runs the service itself (usage: replicator HOST online|offline|status)"

// Verbs the commands take, in the order help lists them.
var (
	datasourceVerbs   = []string{"shun", "welcome", "recover", "online", "offline", "fail"}
	replicatorVerbs   = []string{"online", "offline", "status"}
	mmReplicatorVerbs = []string{"online", "offline", "status", "reset"}
	routerVerbs       = []string{"online", "offline"}
	serviceVerbs      = []string{"start", "stop", "restart"}
	policies          = []string{"automatic", "maintenance"}
	settings          = []string{"policy", "force"}
	booleans          = []string{"true", "false"}
)

// commands is the registry, in the order help lists it. It is a function,
// not a variable, because the parse functions look commands up in it.
func commands() []spec {
	return []spec{
		{name: "ls", modes: Logical | MM, usage: "ls [-l] [-json] [HOST|resources]",
			summary: "show the service: coordinator, routers and a box per datasource",
			help: "ls draws the operator guide's layout. -l adds the site's alerts and each\n" +
				"datasource's details, -json prints the manager's status as JSON, HOST shows only that\n" +
				"datasource, resources lists every resource (datasource, dataserver, replicator,\n" +
				"manager, router) in a table. In mm mode ls draws a box per host with the cross-site\n" +
				"services it runs.",
			parse:   parseLs,
			options: []option{{"-l", Logical, lsMM}, {"-json", Logical, lsMM + ", multi_trepctl --output json all of them"}, {"--json", Logical, lsMM}}},
		{name: "members", modes: Logical, usage: "members",
			summary: "list the service's managers, their state and the coordinator", parse: noArgs},
		{name: "ping", modes: Logical, usage: "ping",
			summary: "check that the manager answers, and who coordinates", parse: noArgs},
		{name: "use", modes: Logical | MM, usage: "use SERVICE",
			summary: "act on another service (site)", parse: parseUse},
		{name: "cd", modes: Logical | MM, usage: "cd SERVICE|..",
			summary: "act on another service; cd .. leaves it", parse: parseUse},
		{name: "set", modes: Logical, usage: "set policy automatic|maintenance | set force true|false",
			summary: "set the policy of the service, or this session's force flag",
			help: "set policy maintenance stops every automatic action of the managers (failover,\n" +
				"recovery); set policy automatic resumes them. set force true makes the following\n" +
				"commands of this session override the managers' safety checks (shunning the primary,\n" +
				"failing over a primary that has not failed, recovering a diverged replica).",
			parse: parseSet},
		{name: "datasource", modes: Logical, usage: "datasource HOST shun|welcome|recover|online|offline|fail",
			summary: "change a datasource's state",
			help: "shun takes a datasource out of service until welcome or recover; recover makes a\n" +
				"FAILED or SHUNNED replica a slave of the primary again; online brings an OFFLINE one\n" +
				"back; offline and fail take one out. The primary needs set force true.",
			parse: parseDatasource},
		{name: "replicator", modes: Logical | MM, usage: "replicator HOST online|offline|status (mm: [-service S], reset -service S [-y])",
			summary: "bring a host's replicator online or offline, or show its status",
			help: "In the cluster, online and offline go through the coordinator; status asks the\n" +
				"host's replicator directly and prints trepctl's fields. In mm mode they act on the\n" +
				"host's cross-site replicator: online and offline take -service S (all services\n" +
				"without it), reset -service S deletes that service's THL and tracking schema\n" +
				"(it asks for confirmation on a terminal; scripts give -y).",
			parse:   parseReplicator,
			options: []option{{"-service", MM, replicatorLogical}, {"--service", MM, replicatorLogical}, {"-y", MM, replicatorLogical}}},
		{name: "router", modes: Logical, usage: "router HOST|* online|offline",
			summary: "let a connector route to the service, or stop it (* for every connector)", parse: parseRouter},
		{name: "switch", modes: Logical, usage: "switch [to HOST]",
			summary: "move the primary role to a replica, writes blocked for a moment", parse: parseTarget},
		{name: "failover", modes: Logical, usage: "failover [to HOST]",
			summary: "promote a replica after the primary FAILED (set force true for one that has not)", parse: parseTarget},
		{name: "service", modes: Logical, usage: "service HOST/mysql start|stop|restart",
			summary: "start, stop or restart a host's database through its manager", parse: parseService},
		{name: "cluster", modes: Logical, usage: "cluster heartbeat | cluster check [-json] [SCHEMA[.TABLE]]",
			summary: "write a heartbeat through the primary's replicator, or check every host holds the same rows",
			help: "cluster check compares every table (or SCHEMA's, or one) on every host of every site\n" +
				"with the service's primary, chunk by key range, at one point of the replication stream\n" +
				"(a marker each host checksums when it applies it), without stopping writes or locking\n" +
				"tables. It prints a line per table and, for a host that differs, the chunk's key range;\n" +
				"a script stops on a difference (exit code 1). -json prints the report as JSON.",
			parse:   parseCluster,
			options: []option{{"-json", Logical, clusterMM}, {"--json", Logical, clusterMM}}},
		{name: "help", modes: Logical | MM, usage: "help [COMMAND]",
			summary: "list the commands, or explain one", parse: parseHelp},
		{name: "expert", modes: Logical | MM, usage: "expert",
			summary: "stop asking for confirmation of dangerous commands in this session", parse: noArgs},
		{name: "mm", modes: Logical | MM, usage: "mm",
			summary: "act on the cross-site replicators of this site's hosts", parse: noArgs},
		{name: "exit-mm", modes: MM, usage: "exit-mm",
			summary: "return to the cluster commands", parse: noArgs},
		{name: "exit", aliases: []string{"quit"}, modes: Logical | MM, usage: "exit",
			summary: "leave cctrl (also quit, Ctrl-D)", parse: noArgs},
	}
}

func noArgs(c *Command, _ Mode, args []string) error {
	if len(args) > 0 {
		return usagef("%s takes no arguments; usage: %s", c.Name, lookup(c.Name).usage)
	}
	return nil
}

func usage(name string) error { return usagef("usage: %s", lookup(name).usage) }

// hostWord checks that w can be a host name.
func hostWord(cmd, w string) error {
	if w == "" || strings.HasPrefix(w, "-") {
		return usagef("%s: %q is not a host name; usage: %s", cmd, w, lookup(cmd).usage)
	}
	for _, r := range w {
		ok := r == '-' || r == '_' || r == '.' || r == ':' || ('0' <= r && r <= '9') || ('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z')
		if !ok {
			return usagef("%s: %q is not a host name; usage: %s", cmd, w, lookup(cmd).usage)
		}
	}
	return nil
}

func parseLs(c *Command, mode Mode, args []string) error {
	for _, a := range args {
		switch {
		case a == "-l":
			c.Long = true
		case a == "-json" || a == "--json":
			c.JSON = true
		case strings.HasPrefix(a, "-"):
			return usagef("ls: unknown option %q; usage: %s", a, lookup("ls").usage)
		case c.Action != "" || c.Host != "":
			return usage("ls")
		case strings.ToLower(a) == "resources" && mode == Logical:
			c.Action = "resources"
		default:
			if err := hostWord("ls", a); err != nil {
				return err
			}
			c.Host = a
		}
	}
	if c.Action == "resources" && (c.JSON || c.Long) {
		return usagef("ls resources takes no options; usage: %s", lookup("ls").usage)
	}
	return nil
}

func parseUse(c *Command, _ Mode, args []string) error {
	if len(args) != 1 {
		return usage(c.Name)
	}
	v := args[0]
	if v == ".." || v == "/" {
		if c.Name == "use" {
			return usagef("use takes a service name; cd .. leaves the service")
		}
		c.Value = ".."
		return nil
	}
	v = strings.TrimSuffix(strings.TrimPrefix(v, "/"), "/")
	if err := hostWord(c.Name, v); err != nil {
		return usagef("%s: %q is not a service name; usage: %s", c.Name, args[0], lookup(c.Name).usage)
	}
	c.Value = v
	return nil
}

func parseSet(c *Command, _ Mode, args []string) error {
	if len(args) != 2 {
		return usage("set")
	}
	what, err := oneOf("set: ", "setting", args[0], settings...)
	if err != nil {
		return err
	}
	c.Action = what
	switch what {
	case "policy":
		c.Value, err = oneOf("", "policy", args[1], policies...)
	default:
		c.Value, err = oneOf("set force: ", "value", args[1], booleans...)
	}
	return err
}

func parseDatasource(c *Command, _ Mode, args []string) error {
	if len(args) != 2 {
		return usage("datasource")
	}
	if err := hostWord("datasource", args[0]); err != nil {
		return err
	}
	c.Host = args[0]
	var err error
	c.Action, err = oneOf("datasource "+c.Host+": ", "action", args[1], datasourceVerbs...)
	return err
}

func parseReplicator(c *Command, mode Mode, args []string) error {
	if len(args) < 2 {
		if mode == MM {
			return usagef("usage: replicator HOST online|offline|status [-service S] | replicator HOST reset -service S [-y]")
		}
		return usagef("usage: replicator HOST online|offline|status")
	}
	if err := hostWord("replicator", args[0]); err != nil {
		return err
	}
	c.Host = args[0]
	verbs := replicatorVerbs
	if mode == MM {
		verbs = mmReplicatorVerbs
	}
	var err error
	if c.Action, err = oneOf("replicator "+c.Host+": ", "action", args[1], verbs...); err != nil {
		return err
	}
	rest := args[2:]
	if mode == Logical {
		if len(rest) > 0 {
			return usagef("replicator %s %s: unexpected %q; in the cluster the replicator runs the service itself (usage: replicator HOST online|offline|status)", c.Host, c.Action, rest[0])
		}
		return nil
	}
	for i := 0; i < len(rest); i++ {
		switch rest[i] {
		case "-service", "--service":
			if i+1 >= len(rest) || strings.HasPrefix(rest[i+1], "-") {
				return usagef("replicator %s %s: -service needs a service name", c.Host, c.Action)
			}
			i++
			if err := hostWord("replicator", rest[i]); err != nil {
				return usagef("replicator %s %s: %q is not a service name", c.Host, c.Action, rest[i])
			}
			c.Service = rest[i]
		case "-y":
			if c.Action != "reset" {
				return usagef("replicator %s %s: -y goes with reset only", c.Host, c.Action)
			}
			c.Yes = true
		default:
			return usagef("replicator %s %s: unexpected %q; usage: replicator HOST online|offline|status [-service S] | replicator HOST reset -service S [-y]", c.Host, c.Action, rest[i])
		}
	}
	if c.Action == "reset" && c.Service == "" {
		return usagef("replicator %s reset: name the service to reset with -service S", c.Host)
	}
	return nil
}

func parseRouter(c *Command, _ Mode, args []string) error {
	if len(args) != 2 {
		return usage("router")
	}
	if args[0] != "*" {
		if err := hostWord("router", args[0]); err != nil {
			return err
		}
	}
	c.Host = args[0]
	var err error
	c.Action, err = oneOf("router "+c.Host+": ", "action", args[1], routerVerbs...)
	return err
}

func parseTarget(c *Command, _ Mode, args []string) error {
	switch {
	case len(args) == 0:
		return nil
	case len(args) == 2 && strings.ToLower(args[0]) == "to":
		if err := hostWord(c.Name, args[1]); err != nil {
			return err
		}
		c.Host = args[1]
		return nil
	}
	return usage(c.Name)
}

func parseService(c *Command, _ Mode, args []string) error {
	if len(args) != 2 {
		return usage("service")
	}
	host, comp, ok := strings.Cut(args[0], "/")
	if !ok || strings.ToLower(comp) != "mysql" {
		return usagef("service %s: name the database as HOST/mysql", args[0])
	}
	if err := hostWord("service", host); err != nil {
		return err
	}
	c.Host = host
	var err error
	c.Action, err = oneOf("service "+args[0]+": ", "action", args[1], serviceVerbs...)
	return err
}

func parseCluster(c *Command, _ Mode, args []string) error {
	if len(args) == 0 {
		return usage("cluster")
	}
	var err error
	if c.Action, err = oneOf("cluster: ", "subcommand", args[0], "heartbeat", "check"); err != nil {
		return err
	}
	for _, a := range args[1:] {
		switch {
		case c.Action == "heartbeat":
			return usagef("cluster heartbeat takes nothing more, not %q; usage: %s", a, lookup("cluster").usage)
		case a == "-json" || a == "--json":
			c.JSON = true
		case strings.HasPrefix(a, "-"):
			return usagef("cluster check: unknown option %q; usage: %s", a, lookup("cluster").usage)
		case c.Value != "":
			return usage("cluster")
		default:
			schema, table, dotted := strings.Cut(a, ".")
			if schema == "" || dotted && (table == "" || strings.Contains(table, ".")) {
				return usagef("cluster check: %q is not SCHEMA or SCHEMA.TABLE", a)
			}
			c.Value = a
		}
	}
	return nil
}

func parseHelp(c *Command, mode Mode, args []string) error {
	switch len(args) {
	case 0:
		return nil
	case 1:
		sp := lookup(strings.ToLower(args[0]))
		if sp == nil {
			if s := nearest(strings.ToLower(args[0]), names(Logical|MM)); s != "" {
				return usagef("help: no command %q; did you mean %q?", args[0], s)
			}
			return usagef("help: no command %q (help lists the commands)", args[0])
		}
		c.Value = sp.name
		return nil
	}
	return usage("help")
}
