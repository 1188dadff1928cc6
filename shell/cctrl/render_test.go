package cctrl

import (
	"bytes"
	"regexp"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/carbidedb/carbide/rpc/gen/managerpb"
	"github.com/carbidedb/carbide/rpc/gen/replicatorpb"
)

// guideLs is the operator guide's sample ls ("Deployment: Multi-Site
// Active/Active"), as printed there: the guide's copy lost the spaces that
// pad each line to the box's width.
const guideLs = `
COORDINATOR[east3:AUTOMATIC:ONLINE]

ROUTERS:
+---------------------------------------------------------------------------------+
|connector@east1[6117](ONLINE, created=1, active=0) |
|connector@east2[6105](ONLINE, created=0, active=0) |
|connector@east3[6109](ONLINE, created=0, active=0) |
+---------------------------------------------------------------------------------+

DATASOURCES:
+---------------------------------------------------------------------------------+
|east1(master:ONLINE, progress=213, THL latency=0.921) |
|STATUS [OK] [2025/01/02 03:31:31 PM UTC] |
+---------------------------------------------------------------------------------+
| MANAGER(state=ONLINE) |
| REPLICATOR(role=master, state=ONLINE) |
| DATASERVER(state=ONLINE) |
| CONNECTIONS(created=1, active=0) |
+---------------------------------------------------------------------------------+
+---------------------------------------------------------------------------------+
|east2(slave:ONLINE, progress=213, latency=0.950) |
|STATUS [OK] [2025/01/02 03:31:31 PM UTC] |
+---------------------------------------------------------------------------------+
| MANAGER(state=ONLINE) |
| REPLICATOR(role=slave, master=east1, state=ONLINE) |
| DATASERVER(state=ONLINE) |
| CONNECTIONS(created=0, active=0) |
+---------------------------------------------------------------------------------+
+---------------------------------------------------------------------------------+
|east3(slave:ONLINE, progress=213, latency=0.942) |
|STATUS [OK] [2025/01/02 03:31:29 PM UTC] |
+---------------------------------------------------------------------------------+
| MANAGER(state=ONLINE) |
| REPLICATOR(role=slave, master=east1, state=ONLINE) |
| DATASERVER(state=ONLINE) |
| CONNECTIONS(created=0, active=0) |
+---------------------------------------------------------------------------------+`

var padding = regexp.MustCompile(` +\|$`)

func TestLsIsTheGuidesLayout(t *testing.T) {
	lines := LsLines(healthy(), LsOptions{})
	var unpadded []string
	for _, l := range lines {
		if strings.HasPrefix(l, "|") {
			l = padding.ReplaceAllString(l, " |")
		}
		unpadded = append(unpadded, l)
	}
	if got := strings.Join(unpadded, "\n"); got != guideLs {
		t.Errorf("ls differs from the guide:\n--- got\n%s\n--- guide\n%s", got, guideLs)
	}
}

func TestLsGolden(t *testing.T) {
	for _, sc := range scenarios() {
		t.Run(sc.name, func(t *testing.T) {
			lines := LsLines(sc.reply, sc.opts)
			checkBoxes(t, lines)
			golden(t, "ls-"+sc.name+".golden", strings.Join(lines, "\n")+"\n")
		})
	}
}

// checkBoxes checks that every box line is 83 characters wide.
func checkBoxes(t *testing.T, lines []string) {
	t.Helper()
	for _, l := range lines {
		if (strings.HasPrefix(l, "|") || strings.HasPrefix(l, "+")) && len(l) != BoxWidth {
			t.Errorf("box line is %d wide, not %d: %q", len(l), BoxWidth, l)
		}
	}
}

// The STATUS of each box, per scenario.
func TestDatasourceStatus(t *testing.T) {
	want := map[string][3]string{
		"healthy":           {StatusOK, StatusOK, StatusOK},
		"lagging":           {StatusOK, StatusOK, StatusOK},
		"shunned":           {StatusOK, StatusDiminished, StatusOK},
		"failover":          {StatusDiminished, StatusOK, StatusOK},
		"primary-failed":    {StatusCritical, StatusOK, StatusOK},
		"writable-lost":     {StatusCritical, StatusOK, StatusOK},
		"maintenance":       {StatusOK, StatusOK, StatusOK},
		"no-coordinator":    {StatusOK, StatusDiminished, StatusDiminished},
		"connector-offline": {StatusOK, StatusOK, StatusOK},
	}
	for _, sc := range scenarios() {
		w, ok := want[sc.name]
		if !ok {
			continue
		}
		for i, d := range sc.reply.GetDatasources() {
			if got := DatasourceStatus(sc.reply, d); got != w[i] {
				t.Errorf("%s: %s is %s, want %s", sc.name, d.GetHost(), got, w[i])
			}
		}
	}
}

func TestLsDetails(t *testing.T) {
	for _, c := range []struct {
		scenario string
		want     []string
	}{
		{"shunned", []string{"|east2(slave:SHUNNED(MANUALLY-SHUNNED), progress=213, latency=0.950)", "REPLICATOR(role=slave, master=east1, state=OFFLINE:NORMAL)"}},
		{"failover", []string{"|east1(slave:FAILED(dataserver down), progress=213, latency=0.921)", "|east2(master:ONLINE, progress=220, THL latency=0.950)", "| REPLICATOR(role=slave, master=east2, state=ONLINE)", "DATASERVER(state=STOPPED)"}},
		{"ssl", []string{"|STATUS [OK] [2025/01/02 03:31:31 PM UTC][SSL]"}},
		{"maintenance", []string{"COORDINATOR[east3:MAINTENANCE:ONLINE]"}},
		{"connector-offline", []string{"|connector@east2[6105](OFFLINE, created=0, active=0)", "|connector@east3[-](ONLINE, created=0, active=0, NOT RUNNING)"}},
		{"no-coordinator", []string{"COORDINATOR[NONE:AUTOMATIC:OFFLINE] no quorum: this manager reaches 1 of the 3 managers of east", "|east2(slave:ONLINE, progress=-1, latency=-1.000)", "| MANAGER(state=STOPPED)"}},
		{"primary-failed", []string{"ALERT: 2025/01/02 15:31:02 primary east1 is FAILED(dataserver down); no candidate", "ALERT LOG: 2025/01/02 15:31:00 the replicator of east3", "|STATUS [CRITICAL]"}},
		{"writable-lost", []string{"TRANSITION: switch east1 -> east2"}},
		{"conflicts", []string{"| CONFLICTS(service=east, recorded=2): trepctl -service east conflicts", "| CONFLICTS(service=west, recorded=3): mm_trepctl -service west conflicts"}},
	} {
		var sc scenario
		for _, s := range scenarios() {
			if s.name == c.scenario {
				sc = s
			}
		}
		out := strings.Join(LsLines(sc.reply, sc.opts), "\n")
		for _, w := range c.want {
			if !strings.Contains(out, w) {
				t.Errorf("%s: ls lacks %q:\n%s", c.scenario, w, out)
			}
		}
	}
}

// TestLsConflicts: a host whose services recorded no conflict has no
// CONFLICTS line, and a host whose manager is stopped has none either
// (what it last said is stale, as its replicator's state is).
func TestLsConflicts(t *testing.T) {
	r := healthy()
	for _, d := range r.Datasources[1:] {
		d.Conflicts = []*managerpb.ServiceConflicts{{Service: "west", Recorded: 7, CrossSite: true}}
	}
	e3 := dsOf(r, "east3")
	e3.ManagerAlive, e3.ManagerState = false, "STOPPED"
	out := strings.Join(LsLines(r, LsOptions{}), "\n")
	if n := strings.Count(out, "CONFLICTS("); n != 1 || !strings.Contains(out, "CONFLICTS(service=west, recorded=7)") {
		t.Errorf("%d CONFLICTS lines, want east2's alone:\n%s", n, out)
	}
}

func TestLongTextWraps(t *testing.T) {
	lines := boxLine(" DATASERVER ERROR: " + strings.Repeat("word ", 40))
	if len(lines) < 2 {
		t.Fatalf("not wrapped: %q", lines)
	}
	for _, l := range lines {
		if len(l) != BoxWidth || !strings.HasPrefix(l, "|") || !strings.HasSuffix(l, "|") {
			t.Errorf("wrapped line %q", l)
		}
	}
	if !strings.HasPrefix(lines[1], "|   word") {
		t.Errorf("continuation is not indented: %q", lines[1])
	}
	// A word longer than the box is cut.
	for _, l := range boxLine(strings.Repeat("x", 200)) {
		if len(l) != BoxWidth {
			t.Errorf("line %d wide", len(l))
		}
	}
}

func TestColorKeepsTheLayout(t *testing.T) {
	ansi := regexp.MustCompile("\x1b\\[[0-9;]*m")
	for _, sc := range scenarios() {
		for _, l := range LsLines(sc.reply, sc.opts) {
			c := colorize(l)
			if ansi.ReplaceAllString(c, "") != l {
				t.Fatalf("colour changed the text of %q: %q", l, c)
			}
		}
	}
	if c := colorize("|STATUS [OK] [2025/01/02 03:31:31 PM UTC]"); !strings.Contains(c, "\x1b[32m[OK]\x1b[0m") {
		t.Errorf("[OK] not green: %q", c)
	}
	if c := colorize("east1(slave:FAILED(dataserver down)"); !strings.Contains(c, "\x1b[31;1mFAILED") {
		t.Errorf("FAILED not red: %q", c)
	}
}

func TestMMGolden(t *testing.T) {
	st := func(svc, state string, seqno int64, lat float64, uri string) *replicatorpb.ServiceStatus {
		return &replicatorpb.ServiceStatus{Service: svc, Role: "slave", State: state, AppliedLastSeqno: seqno, AppliedLatency: lat, MasterConnectUri: uri}
	}
	broken := st("east", "OFFLINE:ERROR", 4, 0, "thl://east2:2112/")
	broken.PendingErrorSeqno, broken.PendingError = 5, "history diverged at seqno 5: the origin's event id differs from the one stored here; reset this service (mm_trepctl -service east reset -all -y) after checking the data"
	hosts := []MMHost{
		{Host: "west1", Addr: "10.9.2.1:10002", Services: []MMService{{Status: st("east", "ONLINE", 5, 0.422, "thl://east2:2112/"), Source: "east2", OriginPrimary: "east1"}}},
		{Host: "west2", Addr: "10.9.2.2:10002", Services: []MMService{{Status: broken, Source: "east2", OriginPrimary: "east1"}}},
		{Host: "west3", Addr: "10.9.2.3:10002", Problem: "the cross-site replicator at 10.9.2.3:10002 does not answer (is it running? mm_replicator start): connection refused"},
	}
	lines := MMLines("west", hosts)
	checkBoxes(t, lines)
	golden(t, "mm-ls.golden", strings.Join(lines, "\n")+"\n")
}

// TestMMConflictsGolden: a service that recorded conflicts says how many
// and how to list them; one that recorded none says nothing of them.
func TestMMConflictsGolden(t *testing.T) {
	conflicted := &replicatorpb.ServiceStatus{Service: "east", Role: "slave", State: "ONLINE", AppliedLastSeqno: 9, AppliedLatency: 0.4, MasterConnectUri: "thl://east2:2113/", Conflicts: 3}
	clean := proto.Clone(conflicted).(*replicatorpb.ServiceStatus)
	clean.Conflicts = 0
	hosts := []MMHost{
		{Host: "west1", Addr: "10.9.2.1:10002", Services: []MMService{{Status: conflicted, Source: "east2", OriginPrimary: "east1"}}},
		{Host: "west2", Addr: "10.9.2.2:10002", Services: []MMService{{Status: clean, Source: "east2", OriginPrimary: "east1"}}},
	}
	lines := MMLines("west", hosts)
	checkBoxes(t, lines)
	golden(t, "mm-ls-conflicts.golden", strings.Join(lines, "\n")+"\n")
}

func TestResourcesGolden(t *testing.T) {
	var b bytes.Buffer
	r := healthy()
	dsOf(r, "east2").State, dsOf(r, "east2").Reason = "SHUNNED", "MANUALLY-SHUNNED"
	r.Routers[2].Alive = false
	if err := writeTable(&b, resourcesTable(r)); err != nil {
		t.Fatal(err)
	}
	golden(t, "ls-resources.golden", b.String())
}

func TestReportTimeIsUTC(t *testing.T) {
	r := &managerpb.StatusReply{TimeUnixMs: guideTime.UnixMilli()}
	if got := reportTime(r, &managerpb.Datasource{ReportAgeSeconds: 0.5}); got != "2025/01/02 03:31:30 PM UTC" {
		t.Errorf("reportTime = %q", got)
	}
}

// BenchmarkLsLines: drawing a three-host site.
func BenchmarkLsLines(b *testing.B) {
	r := healthy()
	for b.Loop() {
		LsLines(r, LsOptions{})
	}
}
