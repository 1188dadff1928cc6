package cctrl

import (
	"flag"
	"slices"
	"strings"
	"testing"

	"github.com/carbidedb/carbide/internal/config"
	"github.com/carbidedb/carbide/internal/testutil"
)

// effectiveStartup lists every option of the cctrl command line, with the
// tests that show it acting or a note saying where it acts.
var effectiveStartup = map[string]string{
	"host":       "TestHostWithoutInstall",
	"port":       "TestHostWithoutInstall, TestUsage",
	"service":    "TestServicesAndRoot, TestUsage",
	"e":          "TestOneLiners",
	"mm":         "TestMMCctrl",
	"no-history": "TestNoHistory",
	"timeout":    "note: bounds each status or replicator call to one agent (Session.status, replicatorStatus, mmLs)",
}

// effectiveShell lists every option of the shell's commands that acts,
// keyed "MODE COMMAND OPTION", with the tests that show it acting.
// TestEveryOption fails for an option a command accepts and that is not
// listed, so a new option must be wired (and tested) or refused.
var effectiveShell = map[string]string{
	"LOGICAL ls -l":           "TestLsDetails",
	"LOGICAL ls -json":        "TestLsJSONAndResources",
	"LOGICAL ls --json":       "TestLsJSONAndResources",
	"LOGICAL cluster -json":   "TestParseClusterCheck",
	"LOGICAL cluster --json":  "TestParseClusterCheck",
	"MM replicator -service":  "TestMMCctrl",
	"MM replicator --service": "TestMMCctrl",
	"MM replicator -y":        "TestMMCctrl",
}

// bases are valid lines of every command in each of its modes, to which
// the walk adds each option.
var bases = map[Mode]map[string][]string{
	Logical: {
		"ls": {"ls"}, "members": {"members"}, "ping": {"ping"}, "use": {"use east"}, "cd": {"cd east"},
		"set": {"set policy automatic"}, "datasource": {"datasource east1 shun"},
		"replicator": {"replicator east1 online", "replicator east1 status"}, "router": {"router east1 online"},
		"switch": {"switch"}, "failover": {"failover"}, "service": {"service east1/mysql start"},
		"cluster": {"cluster heartbeat", "cluster check"}, "help": {"help"}, "expert": {"expert"}, "mm": {"mm"}, "exit": {"exit"},
	},
	MM: {
		"ls": {"ls", "ls east1"}, "use": {"use east"}, "cd": {"cd east"},
		"replicator": {"replicator east1 online", "replicator east1 status", "replicator east1 reset -service east"},
		"help":       {"help"}, "expert": {"expert"}, "mm": {"mm"}, "exit-mm": {"exit-mm"}, "exit": {"exit"},
	},
}

// TestEveryFlag walks cctrl's command-line flag set: each option acts
// (effectiveStartup, with its tests).
func TestEveryFlag(t *testing.T) {
	cfg := DefaultConfig()
	defined := map[string]bool{}
	flagSet(&cfg, "cctrl").VisitAll(func(fl *flag.Flag) {
		defined[fl.Name] = true
		names, ok := effectiveStartup[fl.Name]
		switch {
		case !ok:
			t.Errorf("cctrl defines -%s, which is neither shown acting (effectiveStartup) nor refused", fl.Name)
		case !strings.HasPrefix(names, "note: "):
			testutil.RequireTests(t, "effectiveStartup -"+fl.Name, names)
		}
	})
	for name := range effectiveStartup {
		if !defined[name] {
			t.Errorf("effectiveStartup lists -%s, which cctrl does not define", name)
		}
	}
}

// TestEveryOption walks the registry: every option any command declares is
// tried on every command in each of its modes. Accepted, it must be listed
// in effectiveShell; refused, the sentence names the option and the
// command. Parse contacts nothing, so a refused line changes nothing.
func TestEveryOption(t *testing.T) {
	var all []string
	for _, sp := range commands() {
		for _, o := range sp.options {
			if o.refused == "" {
				t.Errorf("%s %s has no reason for the modes that refuse it", sp.name, o.name)
			}
			if !slices.Contains(all, o.name) {
				all = append(all, o.name)
			}
		}
	}
	all = append(all, "-x")
	accepted := map[string]bool{}
	for _, sp := range commands() {
		for _, mode := range []Mode{Logical, MM} {
			if sp.modes&mode == 0 {
				continue
			}
			lines, ok := bases[mode][sp.name]
			if !ok {
				t.Errorf("no base line for %s in %s mode: add one to bases", sp.name, mode)
				continue
			}
			for _, base := range lines {
				if _, err := Parse(mode, base); err != nil {
					t.Fatalf("base line %q (%s): %v", base, mode, err)
				}
				for _, opt := range all {
					line := base + " " + opt
					_, err := Parse(mode, line)
					if err != nil {
						if _, err2 := Parse(mode, line+" east"); err2 == nil {
							err = nil
						}
					}
					key := mode.String() + " " + sp.name + " " + opt
					if err == nil {
						accepted[key] = true
						if names, ok := effectiveShell[key]; !ok {
							t.Errorf("%s mode: %q is accepted, and %s is not listed as acting (effectiveShell) nor refused", mode, line, key)
						} else {
							testutil.RequireTests(t, "effectiveShell "+key, names)
						}
						continue
					}
					if msg := err.Error(); !strings.Contains(msg, opt) || !strings.Contains(msg, sp.name) || strings.Contains(msg, "\n") {
						t.Errorf("%s mode: %q refused with %q, which does not name %s and %s in one line", mode, line, msg, opt, sp.name)
					}
				}
			}
		}
	}
	for key := range effectiveShell {
		if !accepted[key] {
			t.Errorf("effectiveShell lists %q, which no command accepts", key)
		}
	}
}

// TestMMLsOptionsRefused: mm mode's ls took -l and -json and ignored them;
// they are refused, and nothing is asked of the replicators.
func TestMMLsOptionsRefused(t *testing.T) {
	n := deployment()
	home := testInstall(t, "west3", config.CrossSiteInstall, "")
	for _, c := range []struct{ line, want string }{
		{"ls -l", "line 1: ls: -l is not supported in mm mode: mm mode's ls draws a box per host's cross-site services; replicator HOST status shows one's fields\n"},
		{"ls -json west1", "line 1: ls: -json is not supported in mm mode: mm mode's ls draws a box per host's cross-site services; replicator HOST status shows one's fields, multi_trepctl --output json all of them\n"},
	} {
		r := runMain(t, n, home, c.line+"\n")
		if r.code != ExitFailed || !strings.HasSuffix(r.err, c.want) || strings.Count(r.err, "\n") != 1 {
			t.Errorf("%q: exit %d, %q; want %q", c.line, r.code, r.err, c.want)
		}
	}
	for addr, f := range n.replicators {
		if len(f.calls) > 0 {
			t.Errorf("refused lines reached %s: %v", addr, f.calls)
		}
	}
}

// TestNoHistory: -no-history leaves the REPL without a history file.
func TestNoHistory(t *testing.T) {
	n := deployment()
	home := testInstall(t, "east1", config.ClusterInstall, "")
	s := newSession(t, n, home, Config{})
	s.cfg.HistoryFile = "/tmp/cctrl-history-test"
	if s.historyPath() == "" {
		t.Fatal("without -no-history the REPL has no history file")
	}
	s.cfg.NoHistory = true
	if p := s.historyPath(); p != "" {
		t.Errorf("-no-history: history file %q", p)
	}
}
