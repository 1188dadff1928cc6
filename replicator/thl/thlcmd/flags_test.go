package thlcmd

import (
	"context"
	"flag"
	"strings"
	"testing"

	"github.com/carbidedb/carbide/internal/testutil"
)

// effective lists every option thl carries out, keyed "COMMAND -NAME"
// ("* -NAME" for the global options every command takes), with the tests
// that show it acting. TestEveryFlag fails for an option defined and not
// listed, so a new option must be wired (and tested) or refused.
var effective = map[string]string{
	"* -service":    "TestWhichStore",
	"* -dir":        "TestListLayout, TestInfoAndIndex, TestPurge",
	"list -low":     "TestListRangesAndOptions",
	"list -high":    "TestListLayout, TestListRangesAndOptions",
	"list -seqno":   "TestListRangesAndOptions",
	"list -json":    "TestListRangesAndOptions",
	"list -headers": "TestListRangesAndOptions",
	"purge -low":    "TestPurge",
	"purge -high":   "TestPurge",
	"purge -y":      "TestPurge",
}

// commandFlags returns the flag set cmd defines: run with -h, a command
// parses its options and does nothing else.
func commandFlags(t *testing.T, cmd string) *flag.FlagSet {
	r := &runner{env: Env{}}
	if err := commands()[cmd](r, context.Background(), []string{"-h"}); err != flag.ErrHelp || r.flags == nil {
		t.Fatalf("thl %s -h: %v; want flag.ErrHelp before anything else", cmd, err)
	}
	return r.flags
}

// info is what thl info says of the store at dir.
func info(t *testing.T, dir string) string {
	t.Helper()
	_, out, _ := run(t, Env{}, "-dir", dir, "info")
	return out
}

// TestEveryFlag walks the options each thl command defines and checks that
// each acts (effective, with an existing test), and that an option of one
// command given to another is refused with one sentence naming both,
// leaving the store as it was.
func TestEveryFlag(t *testing.T) {
	dir, _ := newStore(t)
	before := info(t, dir)
	all := map[string]*flag.Flag{}
	for cmd := range commands() {
		commandFlags(t, cmd).VisitAll(func(fl *flag.Flag) {
			all[fl.Name] = fl
			key := cmd + " -" + fl.Name
			if fl.Name == "service" || fl.Name == "dir" {
				key = "* -" + fl.Name
			}
			names, ok := effective[key]
			if !ok {
				t.Errorf("thl %s defines -%s, which is neither shown acting (effective) nor refused", cmd, fl.Name)
				return
			}
			testutil.RequireTests(t, "effective "+key, names)
		})
	}
	for key := range effective {
		cmd, name, _ := strings.Cut(key, " -")
		if cmd == "*" {
			cmd = "info"
		}
		if commandFlags(t, cmd).Lookup(name) == nil {
			t.Errorf("effective lists %q, which thl does not define", key)
		}
	}
	for cmd := range commands() {
		for name, fl := range all {
			if commandFlags(t, cmd).Lookup(name) != nil {
				continue
			}
			args := []string{"-dir", dir, cmd, "-" + name}
			if b, ok := fl.Value.(interface{ IsBoolFlag() bool }); !ok || !b.IsBoolFlag() {
				args = append(args, "1")
			}
			code, out, errOut := run(t, Env{In: strings.NewReader("y\n")}, args...)
			first, _, _ := strings.Cut(errOut, "\n")
			if code != ExitUsage || out != "" || !strings.Contains(first, "-"+name) || !strings.Contains(first, cmd) {
				t.Errorf("%v: exit %d, %q; want exit 2 and a sentence naming -%s and %s", args, code, errOut, name, cmd)
			}
		}
	}
	if after := info(t, dir); after != before {
		t.Errorf("refused commands changed the store:\n%s\nwas\n%s", after, before)
	}
}

// TestServiceWithDirRefused: -service with -dir was ignored (-dir won);
// it is refused, and purge deletes nothing.
func TestServiceWithDirRefused(t *testing.T) {
	dir, _ := newStore(t)
	before := info(t, dir)
	for _, args := range [][]string{{"-service", "east", "-dir", dir, "purge", "-y"}, {"-dir", dir, "list", "-service", "east"}} {
		code, out, errOut := run(t, Env{}, args...)
		if code != ExitUsage || out != "" || !strings.HasPrefix(errOut, "thl: -service is not used with -dir: -dir names the store itself, so give one of them\n") {
			t.Errorf("%v: exit %d, %q %q", args, code, out, errOut)
		}
	}
	if after := info(t, dir); after != before {
		t.Errorf("purge -service -dir changed the store:\n%s\nwas\n%s", after, before)
	}
}

// TestOptionOfAnotherCommand: info -low names the commands that take it.
func TestOptionOfAnotherCommand(t *testing.T) {
	dir, _ := newStore(t)
	code, _, errOut := run(t, Env{}, "-dir", dir, "info", "-low", "3")
	if code != ExitUsage || !strings.HasPrefix(errOut, "thl: info: -low is not an option of info; it belongs to list and purge\n") {
		t.Errorf("exit %d, %q", code, errOut)
	}
}
