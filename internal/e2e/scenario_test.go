package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/carbidedb/carbide/internal/testutil"
)

// A scenario is one of the guide's procedures as a script of the
// commands an operator types, run on a sandbox as written (host names and
// the paths of the sandbox aside). docs/operations.md shows each one.
//
// Lines:
//
//	# comment                       (and blank lines)
//	HOST$ shell command             run in bash on HOST, with its installs'
//	                                share/env.sh sourced (trepctl, mm_trepctl,
//	                                tprovision ...); $SANDBOX is the sandbox
//	                                directory, $EXAMPLES the repository's
//	                                examples/, `sandbox` is on PATH and
//	                                `mysql -uroot` reaches HOST's database
//	HOST cctrl> command             a line for cctrl on HOST; consecutive
//	                                lines for one host are one cctrl session
//	                                (so `set force true` holds), piped in
//
// HOST may be a brace list as the guide writes it: east{2,3}$ runs on
// east2, then east3. Every command must succeed.
type scenarioStep struct {
	line  int
	hosts []string
	cctrl []string // cctrl session lines, or
	shell string   // a shell command
}

var (
	shellLine = regexp.MustCompile(`^([a-z0-9{},]+)\$ (.+)$`)
	cctrlLine = regexp.MustCompile(`^([a-z0-9]+) cctrl> (.+)$`)
	braces    = regexp.MustCompile(`^([a-z]+)\{([0-9,]+)\}$`)
)

func parseScenario(t *testing.T, path string) []scenarioStep {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var steps []scenarioStep
	for i, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if m := cctrlLine.FindStringSubmatch(l); m != nil {
			if n := len(steps); n > 0 && steps[n-1].cctrl != nil && steps[n-1].hosts[0] == m[1] {
				steps[n-1].cctrl = append(steps[n-1].cctrl, m[2])
				continue
			}
			steps = append(steps, scenarioStep{line: i + 1, hosts: []string{m[1]}, cctrl: []string{m[2]}})
			continue
		}
		m := shellLine.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("%s:%d: not a scenario line: %q", path, i+1, l)
		}
		hosts := []string{m[1]}
		if bm := braces.FindStringSubmatch(m[1]); bm != nil {
			hosts = nil
			for _, n := range strings.Split(bm[2], ",") {
				hosts = append(hosts, bm[1]+n)
			}
		}
		steps = append(steps, scenarioStep{line: i + 1, hosts: hosts, shell: m[2]})
	}
	return steps
}

// runScenario runs the script's steps on s, failing the test at the
// first command that fails.
func (s *site) runScenario(path string) {
	s.t.Helper()
	name := filepath.Base(path)
	for _, st := range parseScenario(s.t, path) {
		for _, h := range st.hosts {
			begin := time.Now()
			var out string
			var err error
			what := st.shell
			if st.cctrl != nil {
				what = "cctrl: " + strings.Join(st.cctrl, "; ")
				r := s.runCctrl(h, "continuent", "cctrl", strings.Join(st.cctrl, "\n")+"\n")
				out = r.out + r.err
				if r.code != 0 {
					err = fmt.Errorf("exit %d", r.code)
				}
			} else {
				out, err = s.shellOn(h, st.shell)
			}
			s.t.Logf("%s:%d %s$ %s (%.1f s)\n%s", name, st.line, h, what, time.Since(begin).Seconds(), strings.TrimRight(out, "\n"))
			if err != nil {
				s.t.Fatalf("%s:%d on %s: %s failed: %v", name, st.line, h, what, err)
			}
			time.Sleep(scenarioPause())
		}
	}
}

// shellOn runs a command in bash as an operator logged in on host.
func (s *site) shellOn(host, command string) (string, error) {
	var env strings.Builder
	for _, inst := range []string{"continuent", "replicator"} {
		p := filepath.Join(s.cfg.Dir, host, inst, "share", "env.sh")
		if _, err := os.Stat(p); err == nil {
			fmt.Fprintf(&env, ". %s\n", p)
		}
	}
	cmd := exec.Command("bash", "-c", env.String()+"set -e\n"+command)
	// The mysql client reaches the host's own database, as on the host.
	examples, _ := filepath.Abs("../../examples")
	cmd.Env = append(os.Environ(), "CARBIDE_HOME=", "NO_COLOR=1", "SANDBOX="+s.cfg.Dir, "EXAMPLES="+examples, "MYSQL_HOST="+s.addr(host), "MYSQL_TCP_PORT=13306",
		"PATH="+filepath.Join(release, "bin")+":"+os.Getenv("PATH"))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// startMSAA starts the guide's sample topology (examples/msaa.ini) with
// an app schema: app.shared written by both sites, app.east and app.west
// by one site each.
func startMSAA(t *testing.T) *site {
	t.Helper()
	return startMSAAWith(t)
}

// startMSAAWith is startMSAA with keys added to [defaults].
func startMSAAWith(t *testing.T, keys ...string) *site {
	t.Helper()
	s := startSandbox(t, msaaINI(t, keys...))
	s.exec("east1", "CREATE DATABASE app",
		"CREATE TABLE app.shared (id INT AUTO_INCREMENT PRIMARY KEY, site VARCHAR(10), n INT)",
		"CREATE TABLE app.east (id INT AUTO_INCREMENT PRIMARY KEY, n INT)")
	s.sameEverywhere(30*time.Second, allHosts, "app")
	s.exec("west1", "CREATE TABLE app.west (id INT AUTO_INCREMENT PRIMARY KEY, n INT)")
	s.sameEverywhere(30*time.Second, allHosts, "app")
	return s
}

// msaaINI is examples/msaa.ini with keys added to [defaults].
func msaaINI(t *testing.T, keys ...string) string {
	t.Helper()
	ini, err := os.ReadFile("../../examples/msaa.ini")
	if err != nil {
		t.Fatal(err)
	}
	add := ""
	for _, k := range keys {
		add += k + "\n"
	}
	return strings.Replace(string(ini), "[defaults]\n", "[defaults]\n"+add, 1)
}

// siteWriter inserts into app.shared and app.<site> on host until
// stopped, counting the acknowledged inserts of each table.
type siteWriter struct {
	site        string
	shared, own atomic.Int64
	stop, done  chan struct{}
}

func startSiteWriter(s *site, host, siteName string, pause time.Duration) *siteWriter {
	w := &siteWriter{site: siteName, stop: make(chan struct{}), done: make(chan struct{})}
	db := s.db(host)
	go func() {
		defer close(w.done)
		for i := 0; ; i++ {
			select {
			case <-w.stop:
				return
			case <-time.After(pause):
			}
			if _, err := db.Exec("INSERT INTO app.shared (site, n) VALUES (?, ?)", siteName, i); err == nil {
				w.shared.Add(1)
			}
			if _, err := db.Exec("INSERT INTO app."+siteName+" (n) VALUES (?)", i); err == nil {
				w.own.Add(1)
			}
		}
	}()
	return w
}

// bothSitesWrite writes on east1 and west1 for a third of the soak and
// returns the two writers, stopped.
func (s *site) bothSitesWrite() []*siteWriter {
	ws := []*siteWriter{startSiteWriter(s, "east1", "east", time.Millisecond), startSiteWriter(s, "west1", "west", time.Millisecond)}
	time.Sleep(soak() / 3)
	for _, w := range ws {
		w.halt()
	}
	return ws
}

func (w *siteWriter) halt() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
}

// healthy waits until both sites have every datasource, replicator,
// cross-site service and connector ONLINE under AUTOMATIC policy.
func (s *site) healthy(timeout time.Duration) {
	s.t.Helper()
	s.healthyOn(timeout, []string{"east1", "west1"}, allHosts)
}

// healthyOn is healthy for the sites of managers and the hosts given.
func (s *site) healthyOn(timeout time.Duration, managers, hosts []string) {
	s.t.Helper()
	for _, h := range managers {
		s.waitStatus(h, timeout, "site healthy", siteOnline)
	}
	testutil.Eventually(s.t, timeout, func() error {
		for _, h := range hosts {
			out, err := s.tool(h, "replicator", "mm_trepctl", "services")
			if err != nil || strings.Contains(out, "OFFLINE") || !strings.Contains(out, "ONLINE") {
				return fmt.Errorf("%s cross-site: %v %s", h, err, out)
			}
		}
		return nil
	})
}

// checkWriters compares every host's rows with the writers' counts.
func (s *site) checkWriters(ws ...*siteWriter) {
	s.t.Helper()
	s.checkWritersOn(allHosts, ws...)
}

func (s *site) checkWritersOn(hosts []string, ws ...*siteWriter) {
	s.t.Helper()
	for _, h := range hosts {
		for _, w := range ws {
			var shared, own int64
			s.db(h).QueryRow("SELECT COUNT(*) FROM app.shared WHERE site = ?", w.site).Scan(&shared)
			s.db(h).QueryRow("SELECT COUNT(*) FROM app." + w.site).Scan(&own)
			if shared != w.shared.Load() || own != w.own.Load() {
				s.t.Errorf("%s has %d shared and %d %s rows from %s; %d and %d were acknowledged", h, shared, own, w.site, w.site, w.shared.Load(), w.own.Load())
			}
		}
	}
}

// TestScenarioResetDataservice: the guide's "Resetting a single
// dataservice" (scenarios/reset-dataservice.txt) while west, the
// definitive copy, keeps taking writes; east had drifted. Afterwards every
// host is ONLINE, new writes flow both ways, and all six hosts hold the
// same data: every acknowledged write once.
func TestScenarioResetDataservice(t *testing.T) {
	s := startMSAA(t)
	before := s.bothSitesWrite()
	s.sameEverywhere(60*time.Second, allHosts, "app")
	// east drifts: rows lost on east2, a stray row on east3.
	s.exec("east2", "SET SESSION sql_log_bin=0", "DELETE FROM app.west ORDER BY id LIMIT 3")
	s.exec("east3", "SET SESSION sql_log_bin=0", "INSERT INTO app.east (n) VALUES (-1)")

	during := startSiteWriter(s, "west1", "west", 5*time.Millisecond)
	s.runScenario("scenarios/reset-dataservice.txt")
	during.halt()
	s.healthy(60 * time.Second)

	// New writes on both sites flow everywhere.
	after := s.bothSitesWrite()
	sums := s.sameEverywhere(60*time.Second, allHosts, "app")
	east, west := total("east", before[0], after[0]), total("west", before[1], during, after[1])
	t.Logf("after the reset: %d tables equal on all six hosts; acknowledged inserts: east %d+%d, west %d+%d (%d during the procedure)",
		len(sums), east.shared.Load(), east.own.Load(), west.shared.Load(), west.own.Load(), during.own.Load())
	s.checkWriters(east, west)
}

// total adds writers' counts up.
func total(site string, ws ...*siteWriter) *siteWriter {
	t := &siteWriter{site: site}
	for _, w := range ws {
		t.shared.Add(w.shared.Load())
		t.own.Add(w.own.Load())
	}
	return t
}

// connWriter inserts rows with increasing ids into app.conn through a
// host's connector, as an application would, retrying a failed insert
// until it is in (a duplicate key means an earlier try committed): at
// the end exactly acked rows exist.
type connWriter struct {
	acked      atomic.Int64
	failed     atomic.Int64
	stop, done chan struct{}
}

func startConnWriter(s *site, host string) *connWriter {
	w := &connWriter{stop: make(chan struct{}), done: make(chan struct{})}
	db := s.viaConnector(host)
	go func() {
		defer close(w.done)
		for id := int64(1); ; {
			select {
			case <-w.stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
			_, err := db.Exec("INSERT INTO app.conn (id) VALUES (?)", id)
			if err != nil && !strings.Contains(err.Error(), "Duplicate entry") {
				w.failed.Add(1)
				continue
			}
			w.acked.Store(id)
			id++
		}
	}()
	return w
}

func (w *connWriter) halt() {
	close(w.stop)
	<-w.done
}

// scenarioPause is the time between a scenario's steps: none in make
// test; under make chaos the writers run longer during the procedure.
func scenarioPause() time.Duration {
	if os.Getenv("CARBIDE_CHAOS") != "" {
		return time.Second
	}
	return 0
}

// TestScenarioResetAll: the guide's "Resetting all dataservices"
// (scenarios/reset-all.txt) with the applications stopped: afterwards
// every host is ONLINE, new writes on both sites reach all six hosts, and
// nothing written before or after is lost.
func TestScenarioResetAll(t *testing.T) {
	s := startMSAA(t)
	before := s.bothSitesWrite()
	s.sameEverywhere(60*time.Second, allHosts, "app")

	s.runScenario("scenarios/reset-all.txt")
	s.healthy(60 * time.Second)

	after := s.bothSitesWrite()
	sums := s.sameEverywhere(60*time.Second, allHosts, "app")
	east, west := total("east", before[0], after[0]), total("west", before[1], after[1])
	t.Logf("after the reset: %d tables equal on all six hosts; acknowledged inserts: east %d+%d, west %d+%d", len(sums), east.shared.Load(), east.own.Load(), west.shared.Load(), west.own.Load())
	s.checkWriters(east, west)
	// Each service's history started over: seqnos are small again.
	if seqno := s.field("east1", "appliedLastSeqno"); len(seqno) > 5 {
		t.Errorf("east1's appliedLastSeqno after the reset: %s", seqno)
	}
}

// TestScenarioMaintenance: the guide's "Dataserver maintenance"
// (scenarios/maintenance.txt): every east database restarted in turn,
// with a switch, while an application writes through east3's connector
// and west writes on: every host ONLINE at the end, every acknowledged
// write on all six hosts once.
func TestScenarioMaintenance(t *testing.T) {
	s := startMSAA(t)
	s.exec("east1", "CREATE TABLE app.conn (id INT PRIMARY KEY)")
	s.sameEverywhere(30*time.Second, allHosts, "app")
	app := startConnWriter(s, "east3")
	west := startSiteWriter(s, "west1", "west", 5*time.Millisecond)

	s.runScenario("scenarios/maintenance.txt")
	time.Sleep(soak() / 3)
	app.halt()
	west.halt()
	s.healthy(60 * time.Second)
	sums := s.sameEverywhere(60*time.Second, allHosts, "app")
	t.Logf("%d tables equal on all six hosts; %d rows through the connector (%d failed tries during the procedure), west %d+%d", len(sums), app.acked.Load(), app.failed.Load(), west.shared.Load(), west.own.Load())
	for _, h := range allHosts {
		var n int64
		s.db(h).QueryRow("SELECT COUNT(*) FROM app.conn").Scan(&n)
		if n != app.acked.Load() {
			t.Errorf("%s has %d rows written through the connector; %d were acknowledged", h, n, app.acked.Load())
		}
	}
	s.checkWriters(west)
}

// TestScenarioFixReplicationError: a local change on east2 makes its
// replicator stop on a primary's insert (the conflict policy is stop, as
// the guide's replicators did); status shows OFFLINE:ERROR with the seqno
// and both rows; the guide's fix (scenarios/fix-replication-error.txt: the
// row corrected with SQL_LOG_BIN=0, then online -skip-seqno) brings it
// back; every host ends equal.
func TestScenarioFixReplicationError(t *testing.T) {
	s := startMSAAWith(t, "repl-conflict-policy=stop")
	s.exec("east2", "SET SESSION sql_log_bin=0", "INSERT INTO app.east (id, n) VALUES (1000, -1)")
	s.exec("east1", "INSERT INTO app.east (id, n) VALUES (1000, 5)")
	seqno := s.field("east1", "appliedLastSeqno")
	testutil.Eventually(t, 20*time.Second, func() error {
		if st := s.field("east2", "state"); st != "OFFLINE:ERROR" {
			return fmt.Errorf("east2 is %s", st)
		}
		return nil
	})
	if got := s.field("east2", "pendingErrorSeqno"); got != seqno {
		t.Errorf("pendingErrorSeqno %s, want %s (the insert's)", got, seqno)
	}
	if e := s.field("east2", "pendingError"); !strings.Contains(e, "seqno="+seqno) || !strings.Contains(e, "conflict on app.east id=1000") {
		t.Errorf("pendingError: %s", e)
	}
	if e := s.field("east2", "pendingExceptionMessage"); !strings.Contains(strings.ToLower(e), "insert") {
		t.Errorf("pendingExceptionMessage does not show the statement: %s", e)
	}
	// Writes go on meanwhile; east2 catches up after the fix.
	east := startSiteWriter(s, "east1", "east", 2*time.Millisecond)
	west := startSiteWriter(s, "west1", "west", 2*time.Millisecond)
	s.runScenario("scenarios/fix-replication-error.txt")
	time.Sleep(soak() / 3)
	east.halt()
	west.halt()
	s.healthy(60 * time.Second)
	sums := s.sameEverywhere(60*time.Second, allHosts, "app")
	t.Logf("%d tables equal on all six hosts; acknowledged inserts: east %d+%d, west %d+%d", len(sums), east.shared.Load(), east.own.Load(), west.shared.Load(), west.own.Load())
	east.own.Add(1) // row 1000
	s.checkWriters(east, west)
}

// TestOffsetWarning: the guide's Prepare section asks each site that
// takes writes for its own auto-increment offset; when two sites' primaries
// share one, cctrl ls says so (on either site) until it is fixed.
func TestOffsetWarning(t *testing.T) {
	ini, err := os.ReadFile("../../examples/msaa.ini")
	if err != nil {
		t.Fatal(err)
	}
	s := startSandbox(t, string(ini))
	ls := func(host string) string { return s.runCctrl(host, "continuent", "cctrl", "ls\n").out }
	if out := ls("east1"); strings.Contains(out, "WARNING") {
		t.Fatalf("a warning with distinct offsets:\n%s", out)
	}
	s.exec("west1", "SET GLOBAL auto_increment_offset = 1")
	want := "WARNING: sites east and west take writes with the same auto_increment_offset 1 (east1, west1)"
	testutil.Eventually(t, 30*time.Second, func() error {
		for _, h := range []string{"east1", "west2"} {
			if out := ls(h); !strings.Contains(out, want) {
				return fmt.Errorf("ls on %s:\n%s", h, out)
			}
		}
		return nil
	})
	s.exec("west1", "SET GLOBAL auto_increment_offset = 2")
	testutil.Eventually(t, 30*time.Second, func() error {
		if out := ls("east1"); strings.Contains(out, "WARNING") {
			return fmt.Errorf("still warned:\n%s", out)
		}
		return nil
	})
}

var nineHosts = append(append([]string(nil), allHosts...), "north1", "north2", "north3")

// TestScenarioAddSite: the guide's "Adding a new Cluster/Dataservice"
// (scenarios/add-site.txt) while east and west take writes: north is made
// from a backup of west3, joins, and afterwards writes on all three sites
// reach all nine hosts, every acknowledged write once.
func TestScenarioAddSite(t *testing.T) {
	s := startMSAA(t)
	s.exec("west1", "CREATE TABLE app.north (id INT AUTO_INCREMENT PRIMARY KEY, n INT)")
	s.sameEverywhere(30*time.Second, allHosts, "app")
	during := []*siteWriter{startSiteWriter(s, "east1", "east", 5*time.Millisecond), startSiteWriter(s, "west1", "west", 5*time.Millisecond)}

	s.runScenario("scenarios/add-site.txt")
	s.healthyOn(60*time.Second, []string{"east1", "west1", "north1"}, nineHosts)
	for _, h := range allHosts {
		if out, _ := s.tool(h, "replicator", "mm_trepctl", "-service", "north", "status"); !strings.Contains(out, "ONLINE") {
			t.Errorf("%s has no ONLINE cross-site service north:\n%s", h, out)
		}
	}
	// New writes on all three sites.
	after := []*siteWriter{startSiteWriter(s, "east1", "east", time.Millisecond), startSiteWriter(s, "west1", "west", time.Millisecond),
		startSiteWriter(s, "north1", "north", time.Millisecond)}
	time.Sleep(soak() / 3)
	for _, w := range append(during, after...) {
		w.halt()
	}
	sums := s.sameEverywhere(90*time.Second, nineHosts, "app")
	east, west, north := total("east", during[0], after[0]), total("west", during[1], after[1]), after[2]
	t.Logf("%d tables equal on all nine hosts; acknowledged inserts: east %d+%d, west %d+%d, north %d+%d", len(sums),
		east.shared.Load(), east.own.Load(), west.shared.Load(), west.own.Load(), north.shared.Load(), north.own.Load())
	s.checkWritersOn(nineHosts, east, west, north)
}
