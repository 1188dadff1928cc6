package cctrl

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/carbidedb/carbide/internal/config"
	"github.com/carbidedb/carbide/internal/install"
)

// The guide's "Resetting a single dataservice" cctrl steps, as a script
// piped into cctrl on east1.
const resetScript = `# Resetting a single dataservice (operator guide), cctrl steps
set policy maintenance
router * offline

set force true
datasource east2 shun
replicator east2 offline
datasource east2 recover
datasource east2 online
router * online
set policy automatic
`

func TestPipedGuideScript(t *testing.T) {
	n := deployment()
	home := testInstall(t, "east1", config.ClusterInstall, "")
	r := runMain(t, n, home, resetScript)
	if r.code != ExitOK || r.err != "" {
		t.Fatalf("exit %d, stderr %q", r.code, r.err)
	}
	want := []string{
		"set policy maintenance", "router * offline", "datasource east2 shun [force]", "replicator east2 offline [force]",
		"datasource east2 recover [force]", "datasource east2 online [force]", "router * online [force]", "set policy automatic [force]",
	}
	if got := n.managers["10.9.1.1:9997"].sent(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("east1's manager got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	wantOut := "done: set policy maintenance\ndone: router * offline\nFORCE: true\ndone: datasource east2 shun\n"
	if !strings.HasPrefix(r.out, wantOut) || strings.Contains(r.out, "session established") || strings.Contains(r.out, "[LOGICAL]") {
		t.Errorf("output: %q", r.out)
	}
}

func TestTypoStopsTheScript(t *testing.T) {
	n := deployment()
	home := testInstall(t, "east1", config.ClusterInstall, "")
	r := runMain(t, n, home, "set policy maintenance\nrouter * offline\nswich to east2\nset policy automatic\n")
	if r.code != ExitFailed {
		t.Fatalf("exit %d, want 1", r.code)
	}
	if want := "cctrl: line 3: unknown command \"swich\"; did you mean \"switch\"? (help lists the commands)\n"; r.err != want {
		t.Errorf("stderr %q, want %q", r.err, want)
	}
	if got := n.managers["10.9.1.1:9997"].sent(); len(got) != 2 {
		t.Errorf("the manager got %q; want only the two commands before the typo", got)
	}
}

func TestRefusalsSendNothing(t *testing.T) {
	n := deployment()
	home := testInstall(t, "east1", config.ClusterInstall, "")
	for _, c := range []struct{ line, want string }{
		{"datasource east4 shun", "datasource east4 is not a member of east (members: east1, east2, east3)"},
		{"switch to west1", "switch to west1: west1 is not a member of east (members: east1, east2, east3)"},
		{"router west1 offline", "router west1: west1 runs no connector of east (connectors: east1, east2, east3)"},
		{"service east9/mysql restart", "service east9/mysql: east9 is not a member of east"},
		{"replicator east9 status", "replicator east9 is not a member of east"},
		{"use north", `no service "north" (services: east, west)`},
		{"use wset", `no service "wset"; did you mean "west"? (services: east, west)`},
		{"ls east7", "ls east7: east7 is not a member of east (members: east1, east2, east3)"},
	} {
		r := runMain(t, n, home, c.line+"\n")
		if r.code != ExitFailed || !strings.Contains(r.err, "line 1: "+c.want) || strings.Count(r.err, "\n") != 1 {
			t.Errorf("%q: exit %d, stderr %q; want %q", c.line, r.code, r.err, c.want)
		}
	}
	if got := n.managers["10.9.1.1:9997"].sent(); len(got) != 0 {
		t.Errorf("refused commands reached the manager: %q", got)
	}
}

func TestManagerRefusalIsOneSentence(t *testing.T) {
	n := deployment()
	msg := "east1 is the primary; shunning it stops all writes to east. Switch first, or set force true"
	n.managers["10.9.1.1:9997"].fail = map[string]error{"datasource east1 shun": status.Error(codes.FailedPrecondition, msg)}
	home := testInstall(t, "east1", config.ClusterInstall, "")
	r := runMain(t, n, home, "ls\ndatasource east1 shun\nls\n")
	if r.code != ExitFailed || r.err != "cctrl: line 2: "+msg+"\n" {
		t.Errorf("exit %d, stderr %q", r.code, r.err)
	}
	if strings.Count(r.out, "COORDINATOR[") != 1 {
		t.Errorf("the script went on after the refusal:\n%s", r.out)
	}
	n.managers["10.9.1.1:9997"].fail = map[string]error{"switch": status.Error(codes.Unavailable, "no coordinator: no quorum: this manager reaches 1 of the 3 managers of east, a coordinator needs 2; no automatic action is taken")}
	r = runMain(t, n, home, "switch\n")
	if r.code != ExitFailed || !strings.HasPrefix(r.err, "cctrl: line 1: no coordinator: no quorum") {
		t.Errorf("no coordinator: exit %d, stderr %q", r.code, r.err)
	}
}

// A command the site took but a connector did not confirm prints the
// manager's WARNING line and stops the script with exit status 1: what
// follows (work on the database) may count on the routers being offline.
func TestUnconfirmedStopsTheScript(t *testing.T) {
	n := deployment()
	n.managers["10.9.1.1:9997"].unconfirmed = map[string]string{"router * offline": "east2"}
	home := testInstall(t, "east1", config.ClusterInstall, "")
	r := runMain(t, n, home, "set policy maintenance\nrouter * offline\nset policy automatic\n")
	if r.code != ExitFailed {
		t.Fatalf("exit %d, want 1; stderr %q", r.code, r.err)
	}
	if want := "done: set policy maintenance\ndone: router * offline\nWARNING: connector east2 still shows ONLINE after 2s\n"; r.out != want {
		t.Errorf("output %q, want %q", r.out, want)
	}
	if want := "cctrl: line 2: router * offline holds in the site's state, but connector east2 did not confirm applying it within 2s (manager-command-wait)\n"; r.err != want {
		t.Errorf("stderr %q, want %q", r.err, want)
	}
	if got := n.managers["10.9.1.1:9997"].sent(); len(got) != 2 {
		t.Errorf("the manager got %q; the script went on after the unconfirmed command", got)
	}
}

func TestOneLiners(t *testing.T) {
	n := deployment()
	home := testInstall(t, "east2", config.ClusterInstall, "")
	r := runMain(t, n, home, "", "-e", "ls; set policy maintenance;; ping")
	if r.code != ExitOK || !strings.Contains(r.out, "COORDINATOR[east3:AUTOMATIC:ONLINE]") || !strings.HasSuffix(r.out, "done: set policy maintenance\ndone: ping\n") {
		t.Errorf("exit %d, stderr %q\n%s", r.code, r.err, r.out)
	}
	r = runMain(t, n, home, "", "-e", "ls east2; swich")
	if r.code != ExitFailed || !strings.Contains(r.err, `cctrl: command 2 of -e (swich): unknown command "swich"`) {
		t.Errorf("exit %d, stderr %q", r.code, r.err)
	}
	// exit ends a script early, successfully.
	r = runMain(t, n, home, "ping\nexit\nswitch\n")
	if r.code != ExitOK || strings.Contains(strings.Join(n.managers["10.9.1.2:9997"].sent(), ","), "switch") {
		t.Errorf("exit: %d %q", r.code, r.err)
	}
}

func TestLsJSONAndResources(t *testing.T) {
	n := deployment()
	home := testInstall(t, "east1", config.ClusterInstall, "")
	r := runMain(t, n, home, "ls -json\n")
	var got map[string]any
	if err := json.Unmarshal([]byte(r.out), &got); err != nil || got["site"] != "east" || got["primary"] != "east1" {
		t.Fatalf("ls -json: %v %v\n%s", err, got, r.out)
	}
	if ds, _ := got["datasources"].([]any); len(ds) != 3 {
		t.Errorf("datasources: %v", got["datasources"])
	}
	r = runMain(t, n, home, "ls resources\n")
	if r.code != ExitOK || !strings.Contains(r.out, "| manager    | east3 | ONLINE | member, coordinator |") {
		t.Errorf("ls resources:\n%s%s", r.out, r.err)
	}
}

func TestManagersFailOver(t *testing.T) {
	n := deployment()
	n.managers["10.9.1.1:9997"].down = true
	home := testInstall(t, "east1", config.ClusterInstall, "")
	r := runMain(t, n, home, "ls\nset policy maintenance\n")
	if r.code != ExitOK {
		t.Fatalf("exit %d: %s", r.code, r.err)
	}
	if got := n.managers["10.9.1.2:9997"].sent(); len(got) != 1 || got[0] != "set policy maintenance" {
		t.Errorf("east2's manager got %q", got)
	}
	for _, a := range []string{"10.9.1.2:9997", "10.9.1.3:9997"} {
		n.managers[a].down = true
	}
	r = runMain(t, n, home, "ls\n")
	want := "cctrl: line 1: no manager of east answers (east1 at 10.9.1.1:9997: connection refused; east2 at 10.9.1.2:9997: connection refused; east3 at 10.9.1.3:9997: connection refused); are they running? (manager start)\n"
	if r.code != ExitFailed || r.err != want {
		t.Errorf("exit %d, stderr %q\nwant %q", r.code, r.err, want)
	}
}

func TestHostWithoutInstall(t *testing.T) {
	n := deployment()
	r := runMain(t, n, "", "ls\ndatasource east9 shun\n", "-host", "10.9.1.2", "-port", "9997")
	if r.code != ExitFailed || !strings.Contains(r.out, "COORDINATOR[east3") || !strings.Contains(r.err, "line 2: datasource east9 is not a member of east") {
		t.Errorf("exit %d, stderr %q\n%s", r.code, r.err, r.out)
	}
	r = runMain(t, n, "", "replicator east2 status\n", "-host", "10.9.1.2")
	if r.code != ExitOK || !strings.Contains(r.out, "appliedLastSeqno : 213") {
		t.Errorf("replicator status without install: exit %d %q\n%s", r.code, r.err, r.out)
	}
}

func TestUsage(t *testing.T) {
	n := deployment()
	home := testInstall(t, "east1", config.ClusterInstall, "")
	for _, c := range []struct {
		home string
		args []string
		code int
		want string
	}{
		{"", nil, ExitUsage, "cctrl: no manager to talk to: run cctrl from an install (its bin/, or after sourcing share/env.sh) or give -host HOST [-port P]\n"},
		{home, []string{"-port", "9997"}, ExitUsage, "cctrl: -port goes with -host: give the manager's host too\n"},
		{home, []string{"ls"}, ExitUsage, "cctrl: unexpected argument \"ls\"; commands go on its input or in -e \"CMD; CMD\"\n"},
		{home, []string{"-frob"}, ExitUsage, "cctrl: flag provided but not defined: -frob; cctrl -help shows the options\n"},
		{home, []string{"-service", "north"}, ExitUsage, "cctrl: no service \"north\" (services: east, west)\n"},
		{"/nonexistent", nil, ExitFailed, "cctrl: /nonexistent holds no Carbide install"},
	} {
		r := runMain(t, n, c.home, "", c.args...)
		if r.code != c.code || !strings.HasPrefix(r.err, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d %q", c.args, r.code, r.err, c.code, c.want)
		}
	}
	r := runMain(t, n, home, "", "-help")
	if r.code != ExitOK || !strings.HasPrefix(r.out, "usage: cctrl [-host H [-port P]]") {
		t.Errorf("-help: %d %q", r.code, r.out)
	}
}

func TestServicesAndRoot(t *testing.T) {
	n := deployment()
	home := testInstall(t, "east1", config.ClusterInstall, "")
	r := runMain(t, n, home, "use west\nls\ncd ..\nls\nswitch\n")
	if r.code != ExitFailed || !strings.Contains(r.out, "COORDINATOR[west3:AUTOMATIC:ONLINE]") || !strings.Contains(r.out, "|east (this host's site)") {
		t.Errorf("exit %d %q\n%s", r.code, r.err, r.out)
	}
	if !strings.Contains(r.err, "line 5: switch needs a service; choose one with use SERVICE (services: east, west)") {
		t.Errorf("stderr %q", r.err)
	}
	r = runMain(t, n, home, "set policy automatic\n", "-service", "west")
	if got := n.managers["10.9.2.1:9997"].sent(); r.code != ExitOK || len(got) != 1 {
		t.Errorf("-service west: exit %d %q, west1 got %q", r.code, r.err, got)
	}
}

func TestSessionPrompt(t *testing.T) {
	n := deployment()
	home := testInstall(t, "east1", config.ClusterInstall, "")
	s := newSession(t, n, home, Config{})
	ctx := context.Background()
	for _, c := range []struct{ line, prompt string }{
		{"", "[LOGICAL] /east > "},
		{"expert", "[LOGICAL:EXPERT] /east > "},
		{"use west", "[LOGICAL:EXPERT] /west > "},
		{"mm", "[MM:EXPERT] /west > "},
		{"exit-mm", "[LOGICAL:EXPERT] /west > "},
		{"cd ..", "[LOGICAL:EXPERT] / > "},
	} {
		if err := s.Exec(ctx, c.line); err != nil {
			t.Fatalf("%q: %v", c.line, err)
		}
		if got := s.Prompt(); got != c.prompt {
			t.Errorf("after %q the prompt is %q, want %q", c.line, got, c.prompt)
		}
	}
}

func TestExpertAsksOnATerminal(t *testing.T) {
	n := deployment()
	home := testInstall(t, "east1", config.ClusterInstall, "")
	var out strings.Builder
	s := newSessionEnv(t, n, home, Config{}, func(e *Env) { e.Terminal, e.In, e.Out = true, strings.NewReader("n\ny\n"), &out })
	if err := s.Exec(context.Background(), "expert"); err == nil || s.Prompt() != "[LOGICAL] /east > " {
		t.Errorf("no: %v, prompt %q", err, s.Prompt())
	}
	if err := s.Exec(context.Background(), "expert"); err != nil || s.Prompt() != "[LOGICAL:EXPERT] /east > " {
		t.Errorf("yes: %v, prompt %q", err, s.Prompt())
	}
	if !strings.Contains(out.String(), "WARNING: This is an expert-level command:") || !strings.Contains(out.String(), "Do you want to continue? (y/n)> ") {
		t.Errorf("output %q", out.String())
	}
}

func TestMMCctrl(t *testing.T) {
	n := deployment()
	home := testInstall(t, "west3", config.CrossSiteInstall, "")
	r := runMain(t, n, home, "ls\n")
	if r.code != ExitOK {
		t.Fatalf("exit %d: %s", r.code, r.err)
	}
	for i, h := range []string{"west1", "west2", "west3"} {
		want := []string{"|" + h + "(cross-site replicator, services=1)", "| east(slave:ONLINE, appliedLastSeqno=" + string(rune('5'+i)) + ", appliedLatency=0.4"}
		for _, w := range want {
			if !strings.Contains(r.out, w) {
				t.Errorf("mm ls lacks %q:\n%s", w, r.out)
			}
		}
	}
	if !strings.Contains(r.out, "source=east2 (thl://10.9.1.2:2112/), east primary=east1") {
		t.Errorf("source and origin primary missing:\n%s", r.out)
	}
	r = runMain(t, n, home, "replicator west3 offline -service east\nreplicator west3 reset -service east\n")
	if r.code != ExitFailed || !strings.Contains(r.err, "line 2: replicator west3 reset: a script must give -y to delete the THL and tracking schema of service east on west3") {
		t.Errorf("reset without -y: exit %d %q", r.code, r.err)
	}
	r = runMain(t, n, home, "replicator west3 reset -service east -y\nreplicator west3 online\nreplicator east1 online\n")
	if got := strings.Join(n.replicators["10.9.2.3:10002"].calls, ","); got != "offline east,reset east thl=true db=true,online " {
		t.Errorf("west3's cross-site replicator got %q", got)
	}
	if r.code != ExitFailed || !strings.Contains(r.err, "line 3: replicator east1: east1 runs no cross-site replicator of west (hosts: west1, west2, west3)") {
		t.Errorf("exit %d %q", r.code, r.err)
	}
	// exit-mm reaches the cluster of the same site; mm comes back.
	r = runMain(t, n, home, "exit-mm\nls west3\nmm\nls west1\n")
	if r.code != ExitOK || !strings.Contains(r.out, "COORDINATOR[west3:AUTOMATIC:ONLINE]") || !strings.Contains(r.out, "CROSS-SITE REPLICATORS OF west:") {
		t.Errorf("exit-mm/mm: exit %d %q\n%s", r.code, r.err, r.out)
	}
	// cctrl -mm from the cluster install does the same.
	r = runMain(t, n, testInstall(t, "east2", config.ClusterInstall, ""), "ls east2\n", "-mm")
	if r.code != ExitOK || !strings.Contains(r.out, "| west(slave:ONLINE, appliedLastSeqno=6") {
		t.Errorf("cctrl -mm: exit %d %q\n%s", r.code, r.err, r.out)
	}
}

func TestReplicatorStatus(t *testing.T) {
	n := deployment()
	home := testInstall(t, "east1", config.ClusterInstall, "")
	r := runMain(t, n, home, "replicator east3 status\n")
	want := "NAME              VALUE\n----              -----\nappliedLastSeqno : 213\nrole             : slave\nstate            : ONLINE\n"
	if r.code != ExitOK || r.out != want {
		t.Errorf("exit %d %q\n%s", r.code, r.err, r.out)
	}
}

func newSession(t *testing.T, n *fakeNet, home string, cfg Config) *Session {
	return newSessionEnv(t, n, home, cfg, nil)
}

func newSessionEnv(t *testing.T, n *fakeNet, home string, cfg Config, change func(*Env)) *Session {
	t.Helper()
	b, err := install.Open(home)
	if err != nil {
		t.Fatal(err)
	}
	env := Env{DialManager: n.dialManager, DialReplicator: n.dialReplicator}
	if change != nil {
		change(&env)
	}
	d := DefaultConfig()
	d.Host, d.Port, d.Service, d.MM = cfg.Host, cfg.Port, cfg.Service, cfg.MM
	s, err := New(d, env, b)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func TestConnect(t *testing.T) {
	n := deployment()
	home := testInstall(t, "east1", config.ClusterInstall, "")
	s := newSession(t, n, home, Config{})
	if msg, err := s.Connect(context.Background()); err != nil || msg != "east: session established" {
		t.Errorf("Connect: %q, %v", msg, err)
	}
	for _, m := range n.managers {
		m.down = true
	}
	s = newSession(t, n, home, Config{})
	if _, err := s.Connect(context.Background()); err == nil || !strings.Contains(err.Error(), "no manager of east answers") {
		t.Errorf("Connect with every manager down: %v", err)
	}
	mm := newSession(t, n, testInstall(t, "west3", config.CrossSiteInstall, ""), Config{MM: true})
	if msg, err := mm.Connect(context.Background()); err != nil || msg != "west: session established (cross-site replicators)" {
		t.Errorf("mm Connect: %q, %v", msg, err)
	}
}
