package trepctl

import (
	"flag"
	"slices"
	"strings"
	"testing"

	"github.com/carbidedb/carbide/rpc/gen/replicatorpb"
)

// flagCase shows one option acting: trepctl runs with args against the
// fake, and check says what should follow from the option.
type flagCase struct {
	args  []string
	check func(f *fakeReplicator, r result) bool
	note  string // where the option acts, when the check alone does not say
}

func got[T any](pred func(T) bool) func(*fakeReplicator, result) bool {
	return func(f *fakeReplicator, _ result) bool {
		r, ok := last[T](f)
		return ok && pred(r)
	}
}

// effective lists every option trepctl carries out, keyed "COMMAND -NAME"
// (" -NAME" for a global option), each with a run that shows it acting.
// TestEveryFlag fails for an option defined and not listed here nor in
// refusals, so a new option must be wired (and shown here) or refused.
var effective = map[string]flagCase{
	" -host": {args: []string{"-host", "db9", "-port", "1", "qs"},
		check: func(f *fakeReplicator, _ result) bool { return slices.Equal(f.dials, []string{"db9:1"}) }},
	" -port": {args: []string{"-port", "12000", "qs"},
		check: func(f *fakeReplicator, _ result) bool { return slices.Equal(f.dials, []string{"127.0.0.1:12000"}) }},
	" -service": {args: cmdline("-service", "west", "status"),
		check: got(func(r *replicatorpb.StatusRequest) bool { return r.GetService() == "west" })},
	" -retry": {args: cmdline("-retry", "1", "qs"),
		check: func(f *fakeReplicator, r result) bool { return len(f.dials) == 2 && r.code == ExitOK }},
	"status -name": {args: cmdline("status", "-name", "stages"),
		check: got(func(r *replicatorpb.StatusRequest) bool { return r.GetName() == "stages" })},
	"status -json": {args: cmdline("status", "-json"),
		check: func(_ *fakeReplicator, r result) bool { return strings.HasPrefix(r.out, "{") }},
	"services -json": {args: cmdline("services", "-json"),
		check: func(_ *fakeReplicator, r result) bool { return strings.HasPrefix(r.out, "[") }},
	"online -skip-seqno": {args: cmdline("online", "-skip-seqno", "5,6"),
		check: got(func(r *replicatorpb.OnlineRequest) bool { return slices.Equal(r.GetSkipSeqno(), []uint64{5, 6}) })},
	"online -from-event": {args: cmdline("online", "-from-event", "mysql-bin.000002:0000000000000120"),
		check: got(func(r *replicatorpb.OnlineRequest) bool {
			return r.GetFromEvent() == "mysql-bin.000002:0000000000000120"
		})},
	"offline -immediate": {args: cmdline("offline", "-immediate"),
		check: got(func(r *replicatorpb.OfflineRequest) bool { return r.GetImmediate() }),
		note:  "offline always stops at once: the applier's block in flight is rolled back (replicator/apply TestStopWhileBlockedByLock), so -immediate asks for what every offline does"},
	"reset -all": {args: cmdline("reset", "-all", "-y"),
		check: got(func(r *replicatorpb.ResetRequest) bool { return r.GetThl() && r.GetDb() && !r.GetRelay() })},
	"reset -thl": {args: cmdline("reset", "-thl", "-y"),
		check: got(func(r *replicatorpb.ResetRequest) bool { return r.GetThl() && !r.GetDb() })},
	"reset -db": {args: cmdline("reset", "-db", "-y"),
		check: got(func(r *replicatorpb.ResetRequest) bool { return !r.GetThl() && r.GetDb() })},
	"reset -y": {args: cmdline("reset", "-all", "-y"),
		check: func(f *fakeReplicator, r result) bool {
			_, ok := last[*replicatorpb.ResetRequest](f)
			return ok && !strings.Contains(r.out, "Do you really")
		}},
	"setrole -role": {args: cmdline("setrole", "-role", "slave"),
		check: got(func(r *replicatorpb.SetRoleRequest) bool { return r.GetRole() == "slave" })},
	"setrole -uri": {args: cmdline("setrole", "-role", "slave", "-uri", "thl://east1:2112/"),
		check: got(func(r *replicatorpb.SetRoleRequest) bool { return r.GetUri() == "thl://east1:2112/" })},
	"heartbeat -name": {args: cmdline("heartbeat", "-name", "probe"),
		check: got(func(r *replicatorpb.HeartbeatRequest) bool { return r.GetName() == "probe" })},
	"flush -limit": {args: cmdline("flush", "-limit", "3"),
		check: func(f *fakeReplicator, _ result) bool {
			_, ok := last[*replicatorpb.FlushRequest](f)
			return ok && f.deadline
		}},
	"wait -applied": {args: cmdline("wait", "-applied", "9"),
		check: got(func(r *replicatorpb.WaitRequest) bool { return r.GetAppliedSeqno() == 9 })},
	"wait -state": {args: cmdline("wait", "-state", "ONLINE"),
		check: got(func(r *replicatorpb.WaitRequest) bool { return r.GetState() == "ONLINE" && r.GetAppliedSeqno() == -1 })},
	"conflicts -limit": {args: cmdline("conflicts", "-limit", "5"),
		check: got(func(r *replicatorpb.ConflictsRequest) bool { return r.GetLimit() == 5 })},
	"check -json": {args: cmdline("check", "-json"),
		check: func(_ *fakeReplicator, r result) bool {
			return r.code == ExitOK && strings.HasPrefix(r.out, "{") && strings.Contains(r.out, `"equal": true`)
		}},
	"check -chunk-time": {args: cmdline("check", "-chunk-time", "50ms", "app.t"),
		check: got(func(r *replicatorpb.CheckRequest) bool {
			return r.GetChunkSeconds() == 0.05 && r.GetSchema() == "app" && r.GetTable() == "t"
		})},
	"conflicts -json": {args: cmdline("conflicts", "-json"),
		check: func(_ *fakeReplicator, r result) bool {
			return strings.HasPrefix(r.out, "[") && strings.Contains(r.out, `"target": {`)
		}},
	"wait -limit": {args: cmdline("wait", "-state", "ONLINE", "-limit", "4"),
		check: got(func(r *replicatorpb.WaitRequest) bool { return r.GetTimeoutSeconds() == 4 })},
}

// flagArgs is how the walk gives an option: a bool alone, others with a
// value that parses as any type.
func flagArgs(f *flag.Flag) []string {
	if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
		return []string{"-" + f.Name}
	}
	return []string{"-" + f.Name, "1"}
}

// refused checks that a run was refused with one sentence naming the
// option and the command, before trepctl connected to anything.
func refused(t *testing.T, what string, f *fakeReplicator, r result, option, cmd string) {
	t.Helper()
	if r.code != ExitUsage || strings.Count(r.err, "\n") != 1 || !strings.Contains(r.err, option) || !strings.Contains(r.err, "trepctl "+cmd+":") {
		t.Errorf("%s: exit %d, %q; want exit %d and one line naming %s and trepctl %s", what, r.code, r.err, ExitUsage, option, cmd)
	}
	if len(f.dials) > 0 || len(f.calls) > 0 {
		t.Errorf("%s: refused, yet trepctl dialled %v and sent %v", what, f.dials, f.calls)
	}
}

// TestEveryFlag walks the options trepctl defines (the global flag set and
// each command's) and checks that each one acts (effective) or is refused
// with a sentence, and that an option of one command given to another is
// refused too.
func TestEveryFlag(t *testing.T) {
	seen := map[string]bool{}
	all := map[string]*flag.Flag{}
	cmds := (&command{}).commands()
	var names []string
	for cmd, run := range cmds {
		names = append(names, cmd)
		commandFlags(cmd, run).VisitAll(func(fl *flag.Flag) {
			key := cmd + " -" + fl.Name
			seen[key], all[fl.Name] = true, fl
			why, isRefused := refusals[cmd][fl.Name]
			c, isEffective := effective[key]
			switch {
			case isRefused && isEffective:
				t.Errorf("%s is both effective and refused", key)
			case isRefused:
				if why == "" {
					t.Errorf("%s is refused without a reason", key)
				}
				f := &fakeReplicator{}
				refused(t, key, f, runTrepctl(t, f, cmdline(append([]string{cmd}, flagArgs(fl)...)...)...), "-"+fl.Name, cmd)
			case isEffective:
				checkEffective(t, key, c)
			default:
				t.Errorf("trepctl %s defines -%s, which is neither shown acting (effective) nor refused (refusals)", cmd, fl.Name)
			}
		})
	}
	g := (&globals{}).flagSet("trepctl")
	g.VisitAll(func(fl *flag.Flag) {
		key := " -" + fl.Name
		seen[key] = true
		c, ok := effective[key]
		if !ok {
			t.Errorf("trepctl defines the global option -%s, which is not shown acting (effective)", fl.Name)
		} else {
			checkEffective(t, key, c)
		}
		// The commands that ask no replicator refuse the global options.
		for _, cmd := range []string{"version", "help"} {
			f := &fakeReplicator{}
			r := runTrepctl(t, f, append(flagArgs(fl), cmd)...)
			refused(t, cmd+" with "+key, f, r, "-"+fl.Name, cmd)
		}
	})
	for key := range effective {
		if !seen[key] {
			t.Errorf("effective lists %q, which trepctl does not define", key)
		}
	}
	// An option of one command given to another is refused.
	for _, cmd := range names {
		for name, fl := range all {
			if commandFlags(cmd, cmds[cmd]).Lookup(name) != nil {
				continue
			}
			f := &fakeReplicator{}
			refused(t, cmd+" -"+name, f, runTrepctl(t, f, cmdline(append([]string{cmd}, flagArgs(fl)...)...)...), "-"+name, cmd)
		}
	}
}

func checkEffective(t *testing.T, key string, c flagCase) {
	t.Helper()
	f := &fakeReplicator{failDial: 0}
	if key == " -retry" {
		f.failDial = 1
	}
	r := runTrepctl(t, f, c.args...)
	if r.code != ExitOK || !c.check(f, r) {
		t.Errorf("%s (trepctl %s) did not act: exit %d, %s, sent %v", key, strings.Join(c.args, " "), r.code, r.err, f.calls)
	}
}

// TestResetRelayRefused: reset -relay used to be sent and read by nobody.
// It is refused with the reason, whatever else is given, and nothing is
// deleted (trepctl does not even connect).
func TestResetRelayRefused(t *testing.T) {
	const want = "trepctl reset: -relay is not supported: Carbide keeps no relay log (the replicator reads the binlog directly); reset -all -y resets the THL and the tracking schema\n"
	for _, args := range [][]string{{"reset", "-relay"}, {"reset", "-relay", "-y"}, {"reset", "-all", "-relay", "-y"}} {
		f := &fakeReplicator{}
		r := runTrepctl(t, f, cmdline(args...)...)
		refused(t, strings.Join(args, " "), f, r, "-relay", "reset")
		if r.err != want {
			t.Errorf("%v: %q, want %q", args, r.err, want)
		}
	}
}

// TestOptionOfAnotherCommand: status -skip-seqno names the command the
// option belongs to, and a global option after the command says where it
// goes.
func TestOptionOfAnotherCommand(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"status", "-skip-seqno", "5"}, "trepctl status: -skip-seqno is not an option of status; it belongs to online; run trepctl help\n"},
		{[]string{"qs", "-json"}, "trepctl qs: -json is not an option of qs; it belongs to check and conflicts and services and status; run trepctl help\n"},
		{[]string{"online", "-relay"}, "trepctl online: -relay is not an option of online; run trepctl help\n"},
		{[]string{"status", "-service", "east"}, "trepctl status: -service is not an option of status: it is a global option and goes before the command (trepctl -service X status); run trepctl help\n"},
	} {
		f := &fakeReplicator{}
		if r := runTrepctl(t, f, cmdline(c.args...)...); r.err != c.want || r.code != ExitUsage || len(f.dials) > 0 {
			t.Errorf("%v: exit %d, %q; want %q", c.args, r.code, r.err, c.want)
		}
	}
}

// TestServicesOfOneService: -service with services shows that service
// only (multi_trepctl run services gives it for every row), and names the
// services when the replicator has no such one.
func TestServicesOfOneService(t *testing.T) {
	f := &fakeReplicator{services: []string{"east", "west"}}
	r := runTrepctl(t, f, cmdline("-service", "west", "services")...)
	if r.code != ExitOK || !strings.Contains(r.out, "west") || strings.Contains(r.out, "east") {
		t.Errorf("services -service west: exit %d\n%s%s", r.code, r.out, r.err)
	}
	r = runTrepctl(t, f, cmdline("-service", "north", "services")...)
	if r.code != ExitFailed || r.err != "trepctl services: the replicator has no service north (services: east, west)\n" {
		t.Errorf("services -service north: exit %d, %q", r.code, r.err)
	}
}

// TestConflicts: conflicts lists the service's latest conflicts with their
// row images, and refuses a limit out of range.
func TestConflicts(t *testing.T) {
	f := &fakeReplicator{}
	r := runTrepctl(t, f, cmdline("conflicts")...)
	for _, want := range []string{"#3 seqno 41", "from west: UPDATE app.t id=1: row differs; kept (converge)", `    target: {"id":1,"v":"e"}`, "1 of service east"} {
		if !strings.Contains(r.out, want) {
			t.Errorf("conflicts printed\n%s\nwithout %q", r.out, want)
		}
	}
	if req, ok := last[*replicatorpb.ConflictsRequest](f); !ok || req.GetLimit() != 20 || req.GetService() != "east" {
		t.Errorf("request %v", req)
	}
	r = runTrepctl(t, &fakeReplicator{}, cmdline("conflicts", "-limit", "0")...)
	if r.code != ExitFailed || !strings.Contains(r.err, "-limit takes a number of conflicts from 1 to 1000") {
		t.Errorf("-limit 0: exit %d, %q", r.code, r.err)
	}
}
