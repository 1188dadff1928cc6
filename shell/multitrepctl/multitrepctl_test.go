package multitrepctl

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/carbidedb/carbide/internal/config"
	"github.com/carbidedb/carbide/internal/install"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// result is one run of Main.
type result struct {
	code     int
	out, err string
}

// runMain runs multi_trepctl against n with the environment env.
func runMain(t *testing.T, n *fakeNet, env map[string]string, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	e := Env{Out: &out, Err: &errOut, Getenv: func(k string) string { return env[k] }, Name: "multi_trepctl", Dial: n.dial}
	code := Main(context.Background(), args, e)
	return result{code, out.String(), errOut.String()}
}

// golden compares got with testdata/name, or rewrites it under -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to write it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s:\n--- got\n%s--- want\n%s", path, got, want)
	}
}

func TestByServiceIsTheGuidesTable(t *testing.T) {
	n := guideNet(t)
	ini := testINI(t, "")
	for _, args := range [][]string{{"--by-service"}, {"-by-service"}, {"list", "--by-service"}, {"--output=info", "--by-service", "list"}} {
		r := runMain(t, n, nil, append([]string{"--ini", ini}, args...)...)
		if r.code != ExitOK || r.err != "" {
			t.Fatalf("%v: exit %d: %s", args, r.code, r.err)
		}
		golden(t, "by-service.golden", r.out)
	}
}

func TestDefaultOrderIsHostThenService(t *testing.T) {
	r := runMain(t, guideNet(t), nil, "--ini", testINI(t, ""))
	if r.code != ExitOK {
		t.Fatalf("exit %d: %s", r.code, r.err)
	}
	golden(t, "list.golden", r.out)
}

func TestFiltersAndFormats(t *testing.T) {
	n := guideNet(t)
	ini := testINI(t, "")
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--hosts", "west2,east1", "--output", "name"}, "east1:east\neast1:west\nwest2:east\nwest2:west\n"},
		{[]string{"--services=west", "--by-service", "--output=name"}, "west1:west\neast1:west\neast2:west\neast3:west\nwest2:west\nwest3:west\n"},
		{[]string{"--hosts=east3", "--services=west", "--output=tab", "--fields=host,servicename,appliedlastseqno"},
			"host\tservicename\tappliedlastseqno\neast3\twest\t213\n"},
		{[]string{"--hosts=east3", "--output=tab", "--hide-headers", "--fields=HOST,servicename,timeinstateseconds"},
			"east3\teast\t12.5\neast3\twest\t12.5\n"},
		{[]string{"--hosts=east1", "--services=east", "--output=list", "position"},
			"host: east1\nservicename: east\nrole: master\nstate: ONLINE\nappliedlastseqno: 5\nappliedlasteventid: mysql-bin.000002:0000000000001005;-1\n"},
		{[]string{"--services=east", "--hide-headers", "--sort-by=appliedlatency", "--fields=host,appliedlatency"},
			"| east1 | 0.322 |\n| east2 | 0.415 |\n| east3 | 0.421 |\n| west1 | 0.422 |\n| west2 | 0.435 |\n| west3 | 0.460 |\n"},
		{[]string{"--services=west", "--output=name", "--sort-by", "appliedlatency"},
			"west1:west\nwest2:west\neast2:west\neast1:west\nwest3:west\neast3:west\n"},
	}
	for _, c := range cases {
		r := runMain(t, n, nil, append([]string{"--ini", ini}, c.args...)...)
		if r.code != ExitOK || r.out != c.want {
			t.Errorf("%v: exit %d, stderr %q, output\n%s\nwant\n%s", c.args, r.code, r.err, r.out, c.want)
		}
	}
}

func TestJSON(t *testing.T) {
	r := runMain(t, guideNet(t), nil, "--ini", testINI(t, ""), "--output", "json", "--by-service", "--services", "west")
	if r.code != ExitOK {
		t.Fatalf("exit %d: %s", r.code, r.err)
	}
	var got []map[string]string
	if err := json.Unmarshal([]byte(r.out), &got); err != nil {
		t.Fatalf("%v:\n%s", err, r.out)
	}
	if len(got) != 6 || got[0]["host"] != "west1" || got[0]["role"] != "master" || got[0]["appliedlastseqno"] != "213" || got[0]["appliedlatency"] != "0.035" {
		t.Fatalf("json rows: %v", got)
	}
	// Keys come in column order.
	first := r.out[:strings.Index(r.out, "}")]
	if !(strings.Index(first, `"host"`) < strings.Index(first, `"servicename"`) && strings.Index(first, `"state"`) < strings.Index(first, `"appliedlatency"`)) {
		t.Errorf("keys out of column order:\n%s", first)
	}
	r = runMain(t, newFakeNet(t), nil, "--ini", testINI(t, ""), "--output", "json", "--hosts", "east1")
	if r.code != ExitFailed || !strings.Contains(r.out, `"state": "NOT RUNNING"`) {
		t.Errorf("json of dead replicators: exit %d\n%s", r.code, r.out)
	}
}

func TestDeadReplicatorIsARowAndExit1(t *testing.T) {
	n := guideNet(t)
	n.remove(rmiAddr("east2", "east"))
	n.remove(rmiAddr("west3", "east"))
	r := runMain(t, n, nil, "--ini", testINI(t, ""), "--by-service")
	if r.code != ExitFailed {
		t.Fatalf("exit %d, want 1; stderr %s", r.code, r.err)
	}
	golden(t, "dead.golden", r.out)
	for _, want := range []string{
		"multi_trepctl: the replicator of east2 at 10.9.1.2:10000 does not answer (is it running? replicator start)",
		"multi_trepctl: the cross-site replicator of west3 at 10.9.2.3:10002 does not answer (is it running? mm_replicator start)",
	} {
		if !strings.Contains(r.err, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.err)
		}
	}
	if lines := strings.Count(r.err, "\n"); lines != 2 {
		t.Errorf("want one line per dead replicator, got:\n%s", r.err)
	}
}

func TestHungReplicatorTimesOut(t *testing.T) {
	n := guideNet(t)
	n.reps[rmiAddr("east3", "west")].block = make(chan struct{})
	start := time.Now()
	r := runMain(t, n, nil, "--ini", testINI(t, ""), "--timeout", "200ms", "--hosts", "east3", "--output", "tab", "--hide-headers", "--fields", "servicename,state")
	if r.code != ExitFailed || r.out != "east\tONLINE\nwest\tNO ANSWER\n" || !strings.Contains(r.err, "did not answer in time") {
		t.Errorf("exit %d\n%s%s", r.code, r.out, r.err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %s with a 200ms timeout", d)
	}
}

func TestUsageErrors(t *testing.T) {
	n := guideNet(t)
	ini := testINI(t, "")
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--output", "xml"}, `--output takes info, tab, list, json or name, not "xml"`},
		{[]string{"frob"}, `unknown command "frob"`},
		{[]string{"--hosts", "east9"}, "host east9 is not in the configuration (hosts: east1, east2, east3, west1, west2, west3)"},
		{[]string{"--services", "north"}, "service north is not in the configuration (services: east, west)"},
		{[]string{"--fields", "host,sequence"}, "no replicator has a field sequence"},
		{[]string{"--sort-by", "bogus"}, "no replicator has a field bogus"},
		{[]string{"run"}, "run needs a trepctl command"},
		{[]string{"list", "-name", "x"}, "-name goes with heartbeat only"},
		{[]string{"list", "extra"}, `unexpected argument "extra" after list`},
		{[]string{"--frob"}, "flag provided but not defined: -frob"},
		{[]string{"--timeout", "0s"}, "--timeout must be positive"},
	}
	for _, c := range cases {
		r := runMain(t, n, nil, append([]string{"--ini", ini}, c.args...)...)
		if r.code != ExitUsage || !strings.Contains(r.err, c.want) || strings.Count(r.err, "\n") != 1 || r.out != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 2 and one line with %q", c.args, r.code, r.out, r.err, c.want)
		}
	}
	r := runMain(t, n, nil, "--help")
	if r.code != ExitOK || !strings.HasPrefix(r.out, "usage: multi_trepctl") {
		t.Errorf("--help: exit %d %q", r.code, r.out)
	}
	r = runMain(t, n, nil)
	if r.code != ExitFailed || !strings.Contains(r.err, "no configuration to read the hosts from") {
		t.Errorf("no configuration: exit %d %q", r.code, r.err)
	}
}

func TestHeartbeatOnEveryMaster(t *testing.T) {
	n := guideNet(t)
	r := runMain(t, n, nil, "--ini", testINI(t, ""), "heartbeat", "-name", "probe")
	want := "| host  | servicename | role   | heartbeat |\n| east1 | east        | master | ok        |\n| west1 | west        | master | ok        |\n"
	if r.code != ExitOK || r.out != want {
		t.Fatalf("exit %d, stderr %s\n%s", r.code, r.err, r.out)
	}
	for addr, f := range n.reps {
		want := ""
		switch addr {
		case rmiAddr("east1", "east"):
			want = "east/probe"
		case rmiAddr("west1", "west"):
			want = "west/probe"
		}
		if got := strings.Join(f.heartbeats, ","); got != want {
			t.Errorf("%s got heartbeats %q, want %q", addr, got, want)
		}
	}
}

func TestRunTrepctlEverywhere(t *testing.T) {
	n := guideNet(t)
	n.remove(rmiAddr("west2", "west"))
	r := runMain(t, n, nil, "--ini", testINI(t, ""), "--services", "west", "--by-service", "run", "qs")
	if r.code != ExitFailed {
		t.Errorf("exit %d, want 1 (west2's replicator is down)", r.code)
	}
	blocks := strings.Split(r.out, "\n\n")
	if len(blocks) != 6 {
		t.Fatalf("want 6 blocks, got %d:\n%s", len(blocks), r.out)
	}
	want := "# west1 west: trepctl -host 10.9.2.1 -port 10000 -service west qs\nState: ONLINE Seqno: 213 Latency: 0.035"
	if blocks[0] != want {
		t.Errorf("first block %q, want %q", blocks[0], want)
	}
	if !strings.HasPrefix(blocks[4], "# west2 west: trepctl -host 10.9.2.2 -port 10000 -service west qs\ntrepctl qs: the replicator at 10.9.2.2:10000 does not answer") {
		t.Errorf("dead block: %q", blocks[4])
	}
	if !strings.HasPrefix(blocks[1], "# east1 west: trepctl -host 10.9.1.1 -port 10002 -service west qs\n") {
		t.Errorf("second block: %q", blocks[1])
	}
	r = runMain(t, n, nil, "--ini", testINI(t, ""), "--hosts", "east1", "run", "frob")
	if r.code != ExitUsage || !strings.Contains(r.out, `unknown command "frob"`) {
		t.Errorf("run frob: exit %d\n%s", r.code, r.out)
	}
}

// Both wrappers bind an install through CARBIDE_HOME, and both show every
// replicator of the configuration.
func TestCarbideHomeShowsEverything(t *testing.T) {
	root := t.TempDir()
	ini := testINI(t, "\n[sandbox]\nroot="+root+"\n")
	cfg, err := config.Load(ini)
	if err != nil {
		t.Fatal(err)
	}
	staging := t.TempDir()
	os.MkdirAll(filepath.Join(staging, "bin"), 0o755)
	if _, err := install.Install(cfg, "west2", install.Options{Staging: staging, INI: []string{ini}}); err != nil {
		t.Fatal(err)
	}
	n := guideNet(t)
	for _, home := range []string{filepath.Join(root, "west2", "continuent"), filepath.Join(root, "west2", "replicator")} {
		r := runMain(t, n, map[string]string{install.EnvHome: home}, "--by-service")
		if r.code != ExitOK {
			t.Fatalf("%s: exit %d: %s", home, r.code, r.err)
		}
		golden(t, "by-service.golden", r.out)
	}
}
