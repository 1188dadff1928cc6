package multitrepctl

import (
	"flag"
	"strings"
	"testing"

	"github.com/carbidedb/carbide/internal/testutil"
)

// effective lists every option multi_trepctl carries out, with the test
// that shows it acting. It acts for every command that does not refuse it
// (refusals). TestEveryFlag fails for an option defined and listed in
// neither, so a new option must be wired (and tested) or refused.
var effective = map[string]string{
	"by-service":   "TestByServiceIsTheGuidesTable, TestRunTrepctlEverywhere",
	"hosts":        "TestFiltersAndFormats, TestRunTrepctlEverywhere",
	"services":     "TestFiltersAndFormats, TestRunTrepctlEverywhere",
	"fields":       "TestFiltersAndFormats",
	"output":       "TestFiltersAndFormats, TestJSON",
	"hide-headers": "TestFiltersAndFormats",
	"sort-by":      "TestFiltersAndFormats",
	"ini":          "TestByServiceIsTheGuidesTable",
	"timeout":      "TestHungReplicatorTimesOut",
	"name":         "TestHeartbeatOnEveryMaster",
}

// commandsWalked are the commands multi_trepctl runs; parse's switch is
// the list, and TestEveryFlag checks that each is accepted.
var commandsWalked = []string{"list", "position", "heartbeat", "run"}

// TestEveryFlag walks the options multi_trepctl defines and checks, for
// each command, that each acts (effective, with an existing test) or is
// refused with one sentence naming it, before any replicator is asked.
func TestEveryFlag(t *testing.T) {
	var cfg Config
	var a, b, c string
	fs := flagSet(&cfg, &a, &b, &c)
	seen := map[string]bool{}
	fs.VisitAll(func(fl *flag.Flag) {
		seen[fl.Name] = true
		for _, cmd := range commandsWalked {
			if why, ok := refusals[cmd][fl.Name]; ok {
				if why == "" {
					t.Errorf("%s --%s is refused without a reason", cmd, fl.Name)
				}
				args := []string{"--" + fl.Name}
				if bf, ok := fl.Value.(interface{ IsBoolFlag() bool }); !ok || !bf.IsBoolFlag() {
					args = append(args, fl.DefValue+"x")
					if fl.Name == "timeout" {
						args[1] = "5s"
					}
				}
				args = append(args, cmd)
				if cmd == "run" {
					args = append(args, "qs")
				}
				n := newFakeNet(t)
				r := runMain(t, n, nil, append([]string{"--ini", testINI(t, "")}, args...)...)
				if r.code != ExitUsage || strings.Count(r.err, "\n") != 1 || !strings.Contains(r.err, "-"+fl.Name) || !strings.Contains(r.err, cmd) || r.out != "" {
					t.Errorf("%v: exit %d, %q; want exit 2 and one line naming --%s and %s", args, r.code, r.err, fl.Name, cmd)
				}
				if n.dials() > 0 {
					t.Errorf("%v: refused, yet multi_trepctl dialled", args)
				}
				continue
			}
			names, ok := effective[fl.Name]
			if !ok {
				t.Errorf("multi_trepctl defines --%s, which %s neither carries out (effective) nor refuses (refusals)", fl.Name, cmd)
				continue
			}
			testutil.RequireTests(t, "effective --"+fl.Name, names)
		}
	})
	for name := range effective {
		if !seen[name] {
			t.Errorf("effective lists --%s, which multi_trepctl does not define", name)
		}
	}
	for cmd := range refusals {
		if _, _, _, err := parse([]string{cmd, "x"}); err != nil && strings.Contains(err.Error(), "unknown command") {
			t.Errorf("refusals names %s, which is not a command", cmd)
		}
	}
}

// TestHideHeadersWithoutHeaders: --hide-headers with an output that has
// no header row was ignored; it is refused.
func TestHideHeadersWithoutHeaders(t *testing.T) {
	for _, out := range []string{"json", "list", "name"} {
		n := guideNet(t)
		r := runMain(t, n, nil, "--ini", testINI(t, ""), "--output", out, "--hide-headers")
		want := "multi_trepctl: --hide-headers does not apply to --output " + out + ": only the info and tab outputs have a header row; run multi_trepctl --help\n"
		if r.code != ExitUsage || r.err != want || n.dials() > 0 {
			t.Errorf("--output %s --hide-headers: exit %d, %q", out, r.code, r.err)
		}
	}
}
