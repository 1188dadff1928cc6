package cctrl

import (
	"slices"
	"strings"
)

// Suggestion is one completion of the word being typed.
type Suggestion struct {
	Text        string
	Description string
}

// Complete returns the completions of the last word of before (the line up
// to the cursor): commands, sub-commands, hosts, services, policy values.
// It asks nothing of the network: hosts come from the configuration or the
// last status.
func (s *Session) Complete(before string) []Suggestion {
	words := strings.Fields(before)
	cur := ""
	if len(words) > 0 && !strings.HasSuffix(before, " ") {
		cur, words = words[len(words)-1], words[:len(words)-1]
	}
	var cands []Suggestion
	add := func(desc string, texts ...string) {
		for _, t := range texts {
			cands = append(cands, Suggestion{Text: t, Description: desc})
		}
	}
	if len(words) == 0 {
		if cur == "" {
			return nil // nothing typed yet: no list in the way
		}
		for _, sp := range commands() {
			if sp.modes&s.mode != 0 {
				add(sp.summary, sp.name)
			}
		}
		return filterPrefix(cands, cur)
	}
	pos := len(words) // the position of the word being typed
	hosts := s.knownMembers(s.service)
	if s.mode == MM {
		hosts = s.topo.crossSiteHosts(s.service)
	}
	switch strings.ToLower(words[0]) {
	case "ls":
		if pos >= 1 {
			if s.mode == Logical {
				add("", "-l", "-json")
				add("every resource in a table", "resources")
			}
			add("datasource", hosts...)
		}
	case "use", "cd":
		if pos == 1 {
			add("service", s.topo.services()...)
			if words[0] == "cd" {
				add("leave the service", "..")
			}
		}
	case "set":
		switch {
		case pos == 1:
			add("the service's policy", "policy")
			add("override the managers' safety checks in this session", "force")
		case pos == 2 && strings.ToLower(words[1]) == "policy":
			add("policy", policies...)
		case pos == 2 && strings.ToLower(words[1]) == "force":
			add("", booleans...)
		}
	case "datasource":
		switch pos {
		case 1:
			add("datasource", hosts...)
		case 2:
			add("", datasourceVerbs...)
		}
	case "replicator":
		switch {
		case pos == 1:
			add("host", hosts...)
		case pos == 2 && s.mode == MM:
			add("", mmReplicatorVerbs...)
		case pos == 2:
			add("", replicatorVerbs...)
		case s.mode == MM && words[len(words)-1] == "-service":
			_, svcs, _ := s.topo.crossSite(words[1])
			add("service", svcs...)
		case s.mode == MM:
			add("", "-service")
			if strings.ToLower(words[2]) == "reset" {
				add("do not ask", "-y")
			}
		}
	case "router":
		switch pos {
		case 1:
			add("every connector", "*")
			if c := s.topo.connectors(s.service); c != nil {
				add("connector", c...)
			} else {
				add("host", hosts...)
			}
		case 2:
			add("", routerVerbs...)
		}
	case "switch", "failover":
		switch pos {
		case 1:
			add("name the new primary", "to")
		case 2:
			add("datasource", hosts...)
		}
	case "service":
		switch pos {
		case 1:
			for _, h := range hosts {
				add("database", h+"/mysql")
			}
		case 2:
			add("", serviceVerbs...)
		}
	case "cluster":
		if pos == 1 {
			add("", "heartbeat", "check")
		}
	case "help":
		if pos == 1 {
			add("", names(s.mode)...)
		}
	}
	return filterPrefix(cands, cur)
}

// filterPrefix keeps the suggestions that start with prefix (ignoring
// case), each text once.
func filterPrefix(cands []Suggestion, prefix string) []Suggestion {
	var out []Suggestion
	var seen []string
	p := strings.ToLower(prefix)
	for _, c := range cands {
		if strings.HasPrefix(strings.ToLower(c.Text), p) && !slices.Contains(seen, c.Text) {
			seen = append(seen, c.Text)
			out = append(out, c)
		}
	}
	return out
}
