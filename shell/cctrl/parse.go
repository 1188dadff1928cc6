package cctrl

import (
	"slices"
	"strings"
)

// Mode is which agents a session's commands act on.
type Mode int

const (
	// Logical mode: a site's managers (the cluster).
	Logical Mode = 1 << iota
	// MM mode: the cross-site replicators of a site's hosts.
	MM
)

func (m Mode) String() string {
	if m == MM {
		return "MM"
	}
	return "LOGICAL"
}

// Command is one parsed command line. Parsing is pure: it checks spelling,
// arity and values, never hosts against a configuration (Session does that)
// and never contacts anything.
type Command struct {
	// Name is the command's name in the registry (quit parses as exit);
	// "" for a blank line or a comment.
	Name string
	// Host is the host a command names: datasource, replicator, router
	// ("*" for every router), service, ls HOST, switch/failover to HOST.
	Host string
	// Action is the verb after the host (shun, online, status, restart, …),
	// set's setting (policy, force), or "resources" for ls resources.
	Action string
	// Value is set's value (automatic, true, …), use/cd's service, help's
	// topic.
	Value string
	// Service is -service of mm mode's replicator commands.
	Service string
	// Long (-l), JSON (-json) of ls; Yes (-y) of reset.
	Long, JSON, Yes bool
}

// String is the command in canonical form: Parse(c.String()) == c.
func (c Command) String() string {
	w := []string{c.Name}
	add := func(s ...string) { w = append(w, s...) }
	switch c.Name {
	case "ls":
		if c.Long {
			add("-l")
		}
		if c.JSON {
			add("-json")
		}
		if c.Action != "" {
			add(c.Action)
		}
		if c.Host != "" {
			add(c.Host)
		}
	case "datasource", "router":
		add(c.Host, c.Action)
	case "replicator":
		add(c.Host, c.Action)
		if c.Service != "" {
			add("-service", c.Service)
		}
		if c.Yes {
			add("-y")
		}
	case "service":
		add(c.Host+"/mysql", c.Action)
	case "switch", "failover":
		if c.Host != "" {
			add("to", c.Host)
		}
	case "set":
		add(c.Action, c.Value)
	case "cluster":
		add(c.Action)
		if c.JSON {
			add("-json")
		}
		if c.Value != "" {
			add(c.Value)
		}
	case "use", "cd", "help":
		if c.Value != "" {
			add(c.Value)
		}
	}
	return strings.Join(w, " ")
}

// Fields splits a command line into words. A # starts a comment.
func Fields(line string) []string {
	if i := strings.IndexByte(line, '#'); i >= 0 {
		line = line[:i]
	}
	return strings.Fields(line)
}

// Parse parses one command line of the given mode.
func Parse(mode Mode, line string) (Command, error) {
	words := Fields(line)
	if len(words) == 0 {
		return Command{}, nil
	}
	name := strings.ToLower(words[0])
	sp := lookup(name)
	if sp == nil {
		return Command{}, unknownCommand(mode, words[0])
	}
	if sp.modes&mode == 0 {
		if mode == MM {
			return Command{}, usagef("%s is a cluster command, not one of mm mode; exit-mm returns to the cluster commands", sp.name)
		}
		return Command{}, usagef("%s is a command of mm mode (the cross-site replicators); mm enters it", sp.name)
	}
	if err := sp.checkOptions(mode, words[1:]); err != nil {
		return Command{}, err
	}
	c := Command{Name: sp.name}
	if err := sp.parse(&c, mode, words[1:]); err != nil {
		return Command{}, err
	}
	return c, nil
}

// checkOptions refuses a dash word the command does not take in mode,
// with one sentence naming it, so that no option is parsed and ignored.
func (sp *spec) checkOptions(mode Mode, args []string) error {
	for _, a := range args {
		if len(a) < 2 || a[0] != '-' {
			continue
		}
		i := slices.IndexFunc(sp.options, func(o option) bool { return o.name == a })
		switch {
		case i < 0:
			return usagef("%s: %s is not an option of %s; usage: %s", sp.name, a, sp.name, sp.usage)
		case sp.options[i].modes&mode == 0:
			where := "mm mode"
			if mode == Logical {
				where = "the cluster"
			}
			return usagef("%s: %s is not supported in %s: %s", sp.name, a, where, sp.options[i].refused)
		}
	}
	return nil
}

// lookup finds a command by name or alias.
func lookup(name string) *spec {
	all := commands()
	for i := range all {
		sp := &all[i]
		if sp.name == name || slices.Contains(sp.aliases, name) {
			return sp
		}
	}
	return nil
}

// names lists the commands of mode, in registry order.
func names(mode Mode) []string {
	var out []string
	for _, sp := range commands() {
		if sp.modes&mode != 0 {
			out = append(out, sp.name)
		}
	}
	return out
}

func unknownCommand(mode Mode, word string) error {
	if s := nearest(strings.ToLower(word), names(mode)); s != "" {
		return usagef("unknown command %q; did you mean %q? (help lists the commands)", word, s)
	}
	return usagef("unknown command %q (help lists the commands)", word)
}

// oneOf checks that word (lower-cased) is one of choices and returns it;
// otherwise an error that says what was given, the nearest choice and all
// of them. what names the place: `datasource east2: unknown action`.
func oneOf(what, kind, word string, choices ...string) (string, error) {
	w := strings.ToLower(word)
	if slices.Contains(choices, w) {
		return w, nil
	}
	list := orList(choices)
	if s := nearest(w, choices); s != "" {
		return "", usagef("%sunknown %s %q; did you mean %q? (use %s)", what, kind, word, s, list)
	}
	return "", usagef("%sunknown %s %q; use %s", what, kind, word, list)
}

// orList joins a, b, c as "a, b or c".
func orList(items []string) string {
	if len(items) <= 1 {
		return strings.Join(items, "")
	}
	return strings.Join(items[:len(items)-1], ", ") + " or " + items[len(items)-1]
}

// nearest returns the candidate closest to word: one word is a prefix of,
// or one within a small edit distance. "" when none is close.
func nearest(word string, candidates []string) string {
	best, bestD := "", 1<<30
	for _, c := range candidates {
		d := distance(word, c)
		if len(word) >= 2 && strings.HasPrefix(c, word) {
			d = min(d, 1)
		}
		limit := 1
		if len(word) >= 4 {
			limit = 2
		}
		if d <= limit && d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

// distance is the optimal string alignment distance: insertions,
// deletions, substitutions and transpositions of adjacent letters.
func distance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	if len(ra) > 64 || len(rb) > 64 {
		return 1 << 20
	}
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}
