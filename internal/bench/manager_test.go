package bench

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"google.golang.org/grpc"

	"github.com/carbidedb/carbide/internal/config"
	"github.com/carbidedb/carbide/internal/security"
	"github.com/carbidedb/carbide/rpc/command"
	"github.com/carbidedb/carbide/rpc/gen/managerpb"
)

// managerReps is how many switches (or failovers) each manager benchmark
// measures, whatever b.N.
var managerReps = envInt("CARBIDE_BENCH_REPS", 10)

// managerNet is the manager benchmarks' address block (127.241.S.H), away
// from crossNet, the e2e tests' 150-189 and bench.sh's 251.
const managerNet = 241

// managerLoad is how long the writer writes to a settled primary before
// the next switch or kill, so that replication is busy when it comes.
const managerLoad = time.Second

// managerRPCPort is manager-rpc-port's default.
const managerRPCPort = 9997

// Targets of the manager, printed beside the figures.
const (
	switchTarget      = time.Second     // p50 write-unavailability of a switch
	failoverTarget    = time.Second     // p50 kill -9 to first write
	failoverMaxTarget = 2 * time.Second // max of the same
)

// managerINI is one site of three hosts, no cross-site service (the e2e
// tests' oneSite).
const managerINI = `[defaults]
install-directory=/opt/continuent
replication-user=tungsten
replication-password=secret
application-user=app_user
application-password=secret
replicator-rest-api=false
channels=4
property=replicator.prometheus.exporter.enabled=false

[east]
topology=clustered
members=east1,east2,east3
master=east1
`

var managerHosts = []string{"east1", "east2", "east3"}

// BenchmarkManagerSwitch measures a planned switch under a write load. A
// writer (application user, one connection per host) inserts a row, pauses
// 1 ms and inserts the next, into whichever host takes its writes; on an
// error it tries the next host at once. managerReps times, `switch` goes
// through a replica's manager and the write-unavailability is measured
// from the writer's last acknowledged INSERT on the old primary to its
// first on the new one; the command's own duration is reported beside it.
// At the end every host must hold exactly the acknowledged rows.
func BenchmarkManagerSwitch(b *testing.B) {
	requireEnabled(b)
	m := startManagerSite(b)
	w := m.startWriter(b)
	var gaps, cmds []float64
	var reps []string
	for rep := 1; rep <= managerReps; rep++ {
		from := m.settle(b, w)
		asker := m.replicaOf(from)
		mark := w.mark()
		begin := time.Now()
		lines, err := m.command(asker, 2*time.Minute, "switch")
		took := time.Since(begin)
		if err != nil {
			m.logManagers(b, begin.Add(-time.Second), time.Now())
			b.Fatalf("switch %d through %s (primary %s): %v", rep, asker, from, err)
		}
		to := m.status(b, asker).GetPrimary()
		if to == from {
			b.Fatalf("switch %d: %s is still the primary after %v", rep, from, lines)
		}
		first, at, err := w.waitAck(mark, 30*time.Second, func(a ack) bool { return a.host == to })
		if err != nil {
			m.logManagers(b, begin.Add(-time.Second), time.Now())
			b.Fatalf("switch %d %s -> %s: %v (%s)", rep, from, to, err, w.describe())
		}
		last, ok := w.lastBefore(at, from)
		if !ok {
			b.Fatalf("switch %d: no write acknowledged by %s before the switch", rep, from)
		}
		gap := first.at.Sub(last.at)
		if n := first.id - last.id - 1; n > 0 {
			b.Errorf("switch %d %s -> %s: %d writes acknowledged by the third host between the old and the new primary", rep, from, to, n)
		}
		m.checkOneWritable(b, fmt.Sprintf("after switch %d", rep))
		gaps = append(gaps, ms(gap))
		cmds = append(cmds, ms(took))
		blocked := "?"
		if match := writesBlocked.FindStringSubmatch(strings.Join(lines, " ")); match != nil {
			blocked = match[1]
		}
		reps = append(reps, fmt.Sprintf("%s→%s %.0f/%s/%.0f", from, to, ms(gap), blocked, ms(took)))
	}
	// go test keeps only the first 10 lines a benchmark logs: one line
	// for all repetitions.
	b.Logf("switches (write-unavailability / the manager's \"writes blocked\" / command, ms): %s", strings.Join(reps, ", "))
	m.settle(b, w)
	w.stop()
	b.Logf("writer: %s", w.describe())
	if lost := m.compareRows(b, w); lost > 0 {
		b.Errorf("%d acknowledged writes lost", lost)
	}

	g, c := sortedCopy(gaps), sortedCopy(cmds)
	b.Logf("write-unavailability over %d switches: p50 %.0f ms, max %.0f ms (target p50 ≤ %v); switch command p50 %.0f ms, max %.0f ms",
		len(g), percentile(g, 50), g[len(g)-1], switchTarget, percentile(c, 50), c[len(c)-1])
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(percentile(g, 50), "switch-p50-ms")
	b.ReportMetric(g[len(g)-1], "switch-max-ms")
	b.ReportMetric(percentile(c, 50), "switch-cmd-p50-ms")
	b.ReportMetric(float64(len(g)), "ops") // scripts/bench.sh shows it as the ops measured
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// writesBlocked is the manager's own figure in its switch reply.
var writesBlocked = regexp.MustCompile(`writes blocked (\d+) ms`)

// managerSite is a running one-site sandbox with a client per manager.
type managerSite struct {
	*crossSite
	managers map[string]managerpb.ManagerClient
}

// startManagerSite builds the programs, brings managerINI up in a sandbox
// and creates app.t; a cleanup takes the sandbox down (logging the
// agents' logs when b failed).
func startManagerSite(b *testing.B) *managerSite {
	b.Helper()
	return startManagerSiteOn(b, "one site (east1..east3)", []byte(managerINI), nil)
}

// startManagerSiteOn is startManagerSite for ini (whose site east is
// east1..east3), on the WAN bed when wan is not nil.
func startManagerSiteOn(b *testing.B, name string, ini []byte, wan *config.WAN) *managerSite {
	b.Helper()
	m := &managerSite{crossSite: upSandboxOn(b, name, ini, managerNet, wan), managers: map[string]managerpb.ManagerClient{}}
	for _, h := range managerHosts {
		m.dbs[h] = m.db(b, h, dbUser, dbPassword)
		ip, _ := hostPort(m.addr(h))
		conn, err := grpc.NewClient(fmt.Sprintf("%s:%d", ip, managerRPCPort), security.Insecure("secret").ControlDialOptions(nil)...)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { conn.Close() })
		m.managers[h] = managerpb.NewManagerClient(conn)
	}
	// Only the primary takes the writer's rows; the replicas apply the
	// table before them.
	m.exec(b, "east1", "CREATE DATABASE app",
		"CREATE TABLE app.t (id BIGINT PRIMARY KEY, host VARCHAR(8), at DATETIME(6))")
	return m
}

// db opens a pool to host's database. The driver's own log stays quiet:
// the benchmark kills servers under open connections on purpose.
func (m *managerSite) db(b *testing.B, host, user, password string) *sql.DB {
	b.Helper()
	mc := mysql.NewConfig()
	mc.User, mc.Passwd, mc.Net, mc.Addr = user, password, "tcp", m.addr(host)
	mc.Timeout, mc.ReadTimeout, mc.WriteTimeout = 2*time.Second, 5*time.Second, 5*time.Second
	mc.InterpolateParams = true // one round trip per statement
	mc.Logger = &mysql.NopLogger{}
	conn, err := mysql.NewConnector(mc)
	if err != nil {
		b.Fatal(err)
	}
	return sql.OpenDB(conn)
}

// replicaOf is a host other than primary, whose manager is asked while
// primary's database is switched away or killed.
func (m *managerSite) replicaOf(primary string) string {
	if primary == managerHosts[0] {
		return managerHosts[1]
	}
	return managerHosts[0]
}

// command runs a cctrl command on host's manager (forwarded to the
// coordinator).
func (m *managerSite) command(host string, timeout time.Duration, args ...string) ([]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := command.Parse(args)
	if err != nil {
		return nil, err
	}
	r, err := m.managers[host].Command(ctx, req)
	if err != nil {
		return nil, err
	}
	return r.GetLines(), nil
}

// commandForce runs a command with cctrl's `set force true`.
func (m *managerSite) commandForce(host string, timeout time.Duration, args ...string) ([]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := command.Parse(args)
	if err != nil {
		return nil, err
	}
	req.Force = true
	r, err := m.managers[host].Command(ctx, req)
	if err != nil {
		return nil, err
	}
	return r.GetLines(), nil
}

// dropOrphans deletes from host, with sql_log_bin=0, the rows of INSERTs
// the writer sent to host without an answer: committed there, never
// replicated (the writer wrote those ids again elsewhere).
func (m *managerSite) dropOrphans(b *testing.B, w *appWriter, host, primary string) (int64, error) {
	w.mu.Lock()
	ids := append([]int64(nil), w.unansweredIDs...)
	w.mu.Unlock()
	if len(ids) == 0 {
		return 0, fmt.Errorf("the writer has no unanswered INSERT")
	}
	db := m.db(b, host, "tungsten", "secret")
	defer db.Close()
	db.SetMaxOpenConns(1)
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "SET SESSION sql_log_bin=0"); err != nil {
		return 0, err
	}
	pdb := m.db(b, primary, "tungsten", "secret")
	defer pdb.Close()
	var n int64
	for _, id := range ids {
		var by string
		if err := pdb.QueryRowContext(ctx, "SELECT host FROM app.t WHERE id = ?", id).Scan(&by); err == nil && by == host {
			continue // it did reach the site: not an orphan
		}
		r, err := conn.ExecContext(ctx, "DELETE FROM app.t WHERE id = ? AND host = ?", id, host)
		if err != nil {
			return n, err
		}
		k, _ := r.RowsAffected()
		n += k
	}
	return n, nil
}

func (m *managerSite) status(b *testing.B, host string) *managerpb.StatusReply {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r, err := m.managers[host].Status(ctx, &managerpb.StatusRequest{})
	if err != nil {
		b.Fatalf("status from %s: %v", host, err)
	}
	return r
}

// waitStatus polls host's manager until cond holds, failing b (with the
// managers' logs of the wait) after timeout.
func (m *managerSite) waitStatus(b *testing.B, host string, timeout time.Duration, what string, cond func(*managerpb.StatusReply) error) *managerpb.StatusReply {
	b.Helper()
	begin := time.Now()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		r, err := m.managers[host].Status(ctx, &managerpb.StatusRequest{})
		cancel()
		if err == nil {
			if err = cond(r); err == nil {
				return r
			}
		}
		if time.Since(begin) > timeout {
			m.logManagers(b, begin.Add(-time.Second), time.Now())
			b.Fatalf("%s: not within %v (status from %s): %v", what, timeout, host, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func dsOf(r *managerpb.StatusReply, host string) *managerpb.Datasource {
	for _, d := range r.GetDatasources() {
		if d.GetHost() == host {
			return d
		}
	}
	return &managerpb.Datasource{}
}

// settle waits until the site is calm (no transition, every datasource,
// dataserver and replicator ONLINE) and the writer has written to the
// primary for managerLoad since; it returns the primary.
func (m *managerSite) settle(b *testing.B, w *appWriter) string {
	b.Helper()
	r := m.waitStatus(b, managerHosts[0], 2*time.Minute, "every datasource ONLINE", func(r *managerpb.StatusReply) error {
		if r.GetCoordinator() == "" || r.GetTransition() != "" {
			return fmt.Errorf("coordinator %q, transition %q", r.GetCoordinator(), r.GetTransition())
		}
		for _, d := range r.GetDatasources() {
			if d.GetState() != "ONLINE" || d.GetDataserver() != "ONLINE" || d.GetReplicatorState() != "ONLINE" {
				return fmt.Errorf("%s is %s (%s), dataserver %s, replicator %s", d.GetHost(), d.GetState(), d.GetReason(), d.GetDataserver(), d.GetReplicatorState())
			}
		}
		return nil
	})
	primary := r.GetPrimary()
	mark := w.mark()
	loaded := time.Now().Add(managerLoad)
	if _, _, err := w.waitAck(mark, 30*time.Second, func(a ack) bool { return a.host == primary && a.at.After(loaded) }); err != nil {
		b.Fatalf("the writer does not write to the primary %s: %v (%s)", primary, err, w.describe())
	}
	// Still calm after the load: a replica whose replicator failed on
	// the load is not taken for a healthy one.
	r = m.status(b, managerHosts[0])
	for _, d := range r.GetDatasources() {
		if r.GetPrimary() != primary || d.GetState() != "ONLINE" || d.GetReplicatorState() != "ONLINE" {
			out, _ := m.tool(d.GetHost(), "continuent", "trepctl", "status")
			b.Fatalf("after %v of writes to %s: primary %s, %s is %s, replicator %s; its trepctl status:\n%s",
				managerLoad, primary, r.GetPrimary(), d.GetHost(), d.GetState(), d.GetReplicatorState(), out)
		}
	}
	return primary
}

// recover runs `datasource host recover` through asker's manager, again
// every second while the manager says host is not ready yet (its
// database or replicator does not answer), 15 times at most; it returns
// the reply and the number of attempts.
func (m *managerSite) recover(asker, host string) ([]string, int, error) {
	var errs []string
	for attempt := 1; ; attempt++ {
		lines, err := m.command(asker, time.Minute, "datasource", host, "recover")
		if err == nil {
			return lines, attempt, nil
		}
		if len(errs) == 0 || errs[len(errs)-1] != err.Error() {
			errs = append(errs, err.Error())
		}
		if !strings.Contains(err.Error(), "does not answer") || attempt == 15 {
			return nil, attempt, fmt.Errorf("failed at attempt %d: %s", attempt, strings.Join(errs, " | then: "))
		}
		time.Sleep(time.Second)
	}
}

// caughtUp waits until host's replicator, as asker's manager reports it,
// is ONLINE and has applied what the primary had stored when the wait
// began; it returns an error as soon as the replicator reports an error.
func (m *managerSite) caughtUp(asker, host string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	target := int64(-1)
	last := "no status"
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		r, err := m.managers[asker].Status(ctx, &managerpb.StatusRequest{})
		cancel()
		if err == nil {
			if target < 0 {
				target = dsOf(r, r.GetPrimary()).GetMaxStoredSeqno()
			}
			d := dsOf(r, host)
			last = fmt.Sprintf("its datasource is %s, its replicator %s at seqno %d (the primary %s had stored %d); alerts %q",
				d.GetState(), d.GetReplicatorState(), d.GetAppliedSeqno(), r.GetPrimary(), target, r.GetAlerts())
			if strings.HasPrefix(d.GetReplicatorState(), "OFFLINE:ERROR") {
				return errors.New(last)
			}
			if d.GetReplicatorState() == "ONLINE" && d.GetAppliedSeqno() >= target {
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("not caught up within %v: %s", timeout, last)
}

// unanswered describes, on the given hosts, the rows of the INSERTs the writer
// got no answer for, and each host's binlog GTID state.
func (m *managerSite) unanswered(w *appWriter, hosts ...string) string {
	w.mu.Lock()
	ids := strings.Trim(strings.Join(strings.Fields(fmt.Sprint(w.unansweredIDs)), ","), "[]")
	w.mu.Unlock()
	var out []string
	for _, h := range hosts {
		var state string
		m.dbs[h].QueryRow("SELECT @@global.gtid_binlog_state").Scan(&state)
		line := fmt.Sprintf("%s: gtid_binlog_state %s; rows of unanswered INSERTs:", h, state)
		if ids != "" {
			rows, err := m.dbs[h].Query("SELECT id, host, DATE_FORMAT(at, '%T.%f') FROM app.t WHERE id IN (" + ids + ")")
			if err != nil {
				return err.Error()
			}
			for rows.Next() {
				var id int64
				var by, at string
				rows.Scan(&id, &by, &at)
				line += fmt.Sprintf(" %d (by %s at %s)", id, by, at)
			}
			rows.Close()
		}
		out = append(out, line)
	}
	return strings.Join(out, "\n")
}

// checkOneWritable fails b when more than one database has read_only off.
func (m *managerSite) checkOneWritable(b *testing.B, when string) {
	b.Helper()
	var writable []string
	for _, h := range managerHosts {
		var ro int
		if err := m.dbs[h].QueryRow("SELECT @@global.read_only").Scan(&ro); err == nil && ro == 0 {
			writable = append(writable, h)
		}
	}
	if len(writable) > 1 {
		b.Errorf("%s: %d writable databases: %v", when, len(writable), writable)
	}
}

// logTime is the time= attribute of a manager.log line (slog text).
var logTime = regexp.MustCompile(`^time=(\S+)`)

// logManagers logs every manager's log lines stamped between from and to.
func (m *managerSite) logManagers(b *testing.B, from, to time.Time) {
	b.Helper()
	for _, h := range managerHosts {
		path := filepath.Join(m.cfg.Dir, h, "continuent", "var", "log", "manager.log")
		f, err := os.Open(path)
		if err != nil {
			b.Logf("%s: %v", h, err)
			continue
		}
		var lines []string
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			match := logTime.FindStringSubmatch(sc.Text())
			if match == nil {
				continue
			}
			at, err := time.Parse(time.RFC3339Nano, match[1])
			if err == nil && !at.Before(from) && !at.After(to) {
				lines = append(lines, sc.Text())
			}
		}
		f.Close()
		b.Logf("--- %s manager.log %s to %s:\n%s", h, from.Format("15:04:05.000"), to.Format("15:04:05.000"), strings.Join(lines, "\n"))
	}
}

// compareRows waits up to a minute until every host holds as many rows
// as the writer had acknowledged, then describes any difference between
// a host's ids and the acknowledged ones. It returns how many
// acknowledged ids are missing on the host missing the most, failing b
// when a host holds rows never acknowledged.
func (m *managerSite) compareRows(b *testing.B, w *appWriter) int {
	b.Helper()
	acked := w.acked()
	counts := map[string]int64{}
	deadline := time.Now().Add(time.Minute)
	for {
		same := true
		for _, h := range managerHosts {
			var n int64
			if err := m.dbs[h].QueryRow("SELECT COUNT(*) FROM app.t").Scan(&n); err != nil {
				b.Fatalf("%s: count app.t: %v", h, err)
			}
			counts[h] = n
			same = same && n == int64(len(acked))
		}
		if same || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	b.Logf("acknowledged inserts: %d; COUNT(*) of app.t: %v", len(acked), counts)
	worst := 0
	for _, h := range managerHosts {
		ids := map[int64]bool{}
		rows, err := m.dbs[h].Query("SELECT id FROM app.t")
		if err != nil {
			b.Fatal(err)
		}
		for rows.Next() {
			var id int64
			rows.Scan(&id)
			ids[id] = true
		}
		rows.Close()
		var missing, extra []string
		for id, a := range acked {
			if !ids[id] {
				missing = append(missing, fmt.Sprintf("%d (acked by %s %s)", id, a.host, a.at.Format("15:04:05.000")))
			}
		}
		for id := range ids {
			if _, ok := acked[id]; !ok {
				extra = append(extra, fmt.Sprint(id))
			}
		}
		worst = max(worst, len(missing))
		if len(missing) > 0 {
			b.Logf("%s misses %d acknowledged rows: %s", h, len(missing), firstN(missing, 20))
		}
		if len(extra) > 0 {
			b.Errorf("%s holds %d rows never acknowledged: %s", h, len(extra), firstN(extra, 20))
		}
	}
	return worst
}

func firstN(s []string, n int) string {
	if len(s) > n {
		return strings.Join(s[:n], ", ") + fmt.Sprintf(" … (%d more)", len(s)-n)
	}
	return strings.Join(s, ", ")
}
