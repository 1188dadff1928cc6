package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/carbidedb/carbide/internal/consistency"
	"github.com/carbidedb/carbide/internal/mysqld"
)

// checkNet is BenchmarkClusterCheck's address block (127.244.S.H), away
// from the other benchmarks', the e2e tests' 150-189 and bench.sh's 251.
const checkNet = 244

// The load of BenchmarkClusterCheck; the environment may shrink it for a
// quick run.
var (
	// checkRows is each sysbench table's rows: by default 8 tables of
	// about 1 GB together (a row takes about 230 bytes with its index).
	checkRows = envInt("CARBIDE_BENCH_CHECK_ROWS", 1024<<20/230/checkTables)
	// checkRuns is how many times each way is timed, in alternation.
	checkRuns = envInt("CARBIDE_BENCH_CHECK_RUNS", 3)
	// checkWriteRate is the writer's UPDATEs per second on east1.
	checkWriteRate = envInt("CARBIDE_BENCH_CHECK_WRITE_RATE", 200)
)

const checkTables = 8

// BenchmarkClusterCheck times cctrl's `cluster check` on the sample
// topology (examples/msaa.ini, six hosts of real processes) over a sysbench
// database of about 1 GB (8 tables of CARBIDE_BENCH_CHECK_ROWS rows,
// prepared through east1 and replicated to every host), beside a checksum
// by hand on one host:
//
//   - cluster-check: `cluster check -json sbtest` piped into east1's cctrl
//     (service east: its master east1 cuts the chunks; east2, east3 and the
//     west hosts' cross-site replicators checksum each at its marker); it
//     must find every table equal; master-s is when east1 wrote the last
//     marker, the rest is waiting for the other hosts;
//   - chunked-crc32-one-host-baseline: pt-table-checksum's query (COUNT(*),
//     BIT_XOR of CRC32(CONCAT_WS('#', cols, CONCAT(ISNULL(col)...)))) over
//     one connection to east1, chunk after chunk by id BETWEEN a AND b,
//     each table in as many chunks of equal id span as the warm-up check
//     cut it into;
//   - check-query-one-host: the check's own query (consistency.ChecksumQuery,
//     a CRC32 and a CRC32C per row) over the same chunks the same way.
//
// After a warm-up check, each way runs CARBIDE_BENCH_CHECK_RUNS times (3),
// alternating which goes first; a row is the median run, with the fastest
// and slowest. db-cpu-s is the six mariadbd's CPU meanwhile, repl-cpu-s the
// twelve replicators'. Then a writer UPDATEs random rows of the sysbench
// tables on east1 (CARBIDE_BENCH_CHECK_WRITE_RATE a second, one connection)
// during a check (writes-during-check: it must find every table equal too)
// and as long again with none (writes-alone-baseline): its longest
// statement, the lock waits the six databases counted, and the longest
// apply latency of service east on the other hosts. Once, whatever b.N.
func BenchmarkClusterCheck(b *testing.B) {
	requireEnabled(b)
	ini, err := os.ReadFile("../../examples/msaa.ini")
	if err != nil {
		b.Fatal(err)
	}
	x := upSandbox(b, "examples/msaa.ini", ini, checkNet)
	for _, h := range crossHosts {
		x.dbs[h] = x.open(b, h)
	}
	c := &checkBench{x: x}
	b.Cleanup(func() { c.flushNotes(b) }) // what was not logged yet, on a failure
	c.load(b)
	c.findProcs(b)

	warm := c.check(b, false)
	c.notef("warm-up check: %s, %d rows in %d chunks, %d round(s)", warm.elapsed.Round(time.Millisecond), warm.rows, warm.chunks, warm.rounds)
	c.setChunks(b, warm)

	ways := []string{"cluster-check", "chunked-crc32-one-host-baseline", "check-query-one-host"}
	runs := map[string][]checkRun{}
	for k := range checkRuns {
		order := slices.Clone(ways)
		if k%2 == 1 {
			slices.Reverse(order)
		}
		for _, way := range order {
			var r checkRun
			pressure := readStall()
			switch way {
			case "cluster-check":
				r = c.check(b, false)
			case "chunked-crc32-one-host-baseline":
				r = c.oneHost(b, c.crc32Query)
			default:
				r = c.oneHost(b, c.checkQuery)
			}
			c.notef("run %d %s: %s, %d rows, %d chunks, %d round(s) (last marker at %s), mariadbd CPU %s, replicators' CPU %s; %s",
				k, way, r.elapsed.Round(time.Millisecond), r.rows, r.chunks, r.rounds, r.master.Round(time.Millisecond),
				r.dbCPU.Round(10*time.Millisecond), r.replCPU.Round(10*time.Millisecond), pressure.since())
			runs[way] = append(runs[way], r)
		}
	}
	base := medianRun(runs["chunked-crc32-one-host-baseline"])
	for _, way := range ways {
		m := medianRun(runs[way])
		lo, hi := runs[way][0].elapsed, runs[way][0].elapsed
		for _, r := range runs[way] {
			lo, hi = min(lo, r.elapsed), max(hi, r.elapsed)
		}
		metrics := map[string]float64{
			"rows/s": float64(m.rows) / m.elapsed.Seconds(), "rows": float64(m.rows), "chunks": float64(m.chunks),
			"min-s": lo.Seconds(), "max-s": hi.Seconds(), "db-cpu-s": m.dbCPU.Seconds(), "repl-cpu-s": m.replCPU.Seconds(),
			"MB": c.sizeMB, "time-vs-baseline": m.elapsed.Seconds() / base.elapsed.Seconds(),
		}
		if way == "cluster-check" {
			metrics["rounds"], metrics["master-s"] = float64(m.rounds), m.master.Seconds()
		}
		b.Run(way, func(b *testing.B) {
			if way == "cluster-check" {
				c.flushNotes(b)
			}
			result{elapsed: m.elapsed, metrics: metrics}.report(b)
		})
	}

	// A writer during a check, and alone as long; each starts with every
	// host caught up.
	var under checkRun
	c.settle(b, 10*time.Minute)
	during := c.writeWhile(b, func() { under = c.check(b, true) }, 0)
	c.settle(b, 10*time.Minute)
	alone := c.writeWhile(b, nil, during.elapsed)
	c.notef("check under writes: %s (master's last marker at %s), %d round(s)", under.elapsed.Round(time.Millisecond), under.master.Round(time.Millisecond), under.rounds)
	b.Run("writes-during-check", func(b *testing.B) {
		c.flushNotes(b)
		m := during.metrics()
		m["check-s"], m["rounds"], m["master-s"] = under.elapsed.Seconds(), float64(under.rounds), under.master.Seconds()
		result{elapsed: during.elapsed, metrics: m}.report(b)
	})
	b.Run("writes-alone-baseline", func(b *testing.B) { result{elapsed: alone.elapsed, metrics: alone.metrics()}.report(b) })
}

// checkBench is BenchmarkClusterCheck's sandbox and database.
type checkBench struct {
	x      *crossSite
	tables []checkTable
	sizeMB float64
	// dbPIDs are the six mariadbd, replPIDs the twelve replicators.
	dbPIDs, replPIDs []int
	// notes are logged by the next row (a parent benchmark's own log is
	// not shown when it passes).
	notes   []string
	settled int // rows settle wrote
}

func (c *checkBench) notef(format string, args ...any) {
	c.notes = append(c.notes, fmt.Sprintf(format, args...))
}

func (c *checkBench) flushNotes(b *testing.B) {
	for _, n := range c.notes {
		b.Log(n)
	}
	c.notes = nil
}

// checkTable is a sysbench table and how the one-host runs cut it.
type checkTable struct {
	name         string // sbtestN
	cols         []string
	minID, maxID int64
	span         int64 // ids per chunk
}

// load prepares the sysbench tables through east1 and waits until every
// host has applied them.
func (c *checkBench) load(b *testing.B) {
	b.Helper()
	x := c.x
	x.exec(b, "east1", "CREATE DATABASE sbtest")
	host, _ := hostPort(x.addr("east1"))
	begin := time.Now()
	prep := exec.Command("sysbench", "--db-driver=mysql", "--mysql-host="+host, "--mysql-port=13306", "--mysql-user="+dbUser,
		"--mysql-password="+dbPassword, "--mysql-db=sbtest", "--tables="+strconv.Itoa(checkTables), "--table-size="+strconv.Itoa(checkRows),
		"--threads=2", "oltp_read_only", "prepare")
	if out, err := prep.CombinedOutput(); err != nil || strings.Contains(string(out), "FATAL") {
		b.Fatalf("sysbench prepare: %v\n%s", err, out)
	}
	prepared := time.Since(begin)
	x.exec(b, "east1", "CREATE DATABASE checkbench", "CREATE TABLE checkbench.applied (id INT PRIMARY KEY)")
	c.settle(b, time.Hour)
	var names []string
	for i := 1; i <= checkTables; i++ {
		t := checkTable{name: fmt.Sprintf("sbtest%d", i), cols: []string{"id", "k", "c", "pad"}} // sysbench's
		if err := x.dbs["east1"].QueryRow("SELECT MIN(id), MAX(id) FROM sbtest."+t.name).Scan(&t.minID, &t.maxID); err != nil {
			b.Fatal(err)
		}
		c.tables = append(c.tables, t)
		names = append(names, "sbtest."+t.name)
	}
	x.exec(b, "east1", "ANALYZE TABLE "+strings.Join(names, ", "))
	var size int64
	if err := x.dbs["east1"].QueryRow("SELECT SUM(data_length + index_length) FROM information_schema.tables WHERE table_schema = 'sbtest'").Scan(&size); err != nil {
		b.Fatal(err)
	}
	c.sizeMB = float64(size) / (1 << 20)
	c.notef("database: %d tables of %d rows, %.0f MB on east1; sysbench prepare took %s, every host had it %s later",
		checkTables, checkRows, c.sizeMB, prepared.Round(time.Second), (time.Since(begin) - prepared).Round(time.Second))
}

// settle writes a row on east1 (outside sbtest, so not checked) and waits
// until every host has it: then every host has applied what east1 had
// (each stream is applied in order).
func (c *checkBench) settle(b *testing.B, timeout time.Duration) {
	b.Helper()
	c.settled++
	c.x.exec(b, "east1", fmt.Sprintf("INSERT INTO checkbench.applied VALUES (%d)", c.settled))
	deadline := time.Now().Add(timeout)
	for _, h := range crossHosts {
		for {
			var n int
			c.x.dbs[h].QueryRow("SELECT COUNT(*) FROM checkbench.applied WHERE id = ?", c.settled).Scan(&n)
			if n == 1 {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("%s did not apply east1's writes within %s", h, timeout)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
}

// findProcs finds the sandbox's mariadbd (pid files) and replicators
// (processes whose --home is in the sandbox).
func (c *checkBench) findProcs(b *testing.B) {
	b.Helper()
	for _, h := range crossHosts {
		pid, ok := mysqld.ReadPID(filepath.Join(c.x.cfg.Dir, h, "mysql"))
		if !ok {
			b.Fatalf("%s: no running mariadbd", h)
		}
		c.dbPIDs = append(c.dbPIDs, pid)
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		data, _ := os.ReadFile(p)
		args := strings.Split(string(data), "\x00")
		if filepath.Base(args[0]) == "replicator" && slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "--home="+c.x.cfg.Dir) }) {
			pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
			c.replPIDs = append(c.replPIDs, pid)
		}
	}
}

// cpu is the CPU time the mariadbd and the replicators used so far.
func (c *checkBench) cpu() (db, repl time.Duration) {
	for _, p := range c.dbPIDs {
		db += cpuTime(p)
	}
	for _, p := range c.replPIDs {
		repl += cpuTime(p)
	}
	return db, repl
}

// checkRun is one timed run of a way of checking.
type checkRun struct {
	elapsed        time.Duration
	rows           int64
	chunks         int
	rounds         int           // the check's rounds: 1, and one per retry of changing chunks
	master         time.Duration // to the first round's last marker
	dbCPU, replCPU time.Duration
	tables         map[string]checkTableReport // the check's, by schema.table
}

// checkTableReport is a table of `cluster check -json`.
type checkTableReport struct {
	Table  string `json:"table"`
	Chunks int    `json:"chunks"`
	Rows   int64  `json:"rows"`
}

// check runs `cluster check -json sbtest` through east1's cctrl and fails
// b (with its whole output) unless it finds every table equal. With
// underWrites it runs the text form instead, whose report and progress
// (on stderr) go to the notes; it reports no rows.
func (c *checkBench) check(b *testing.B, underWrites bool) checkRun {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(c.x.cfg.Dir, "east1", "continuent", "bin", "cctrl"))
	cmd.Env = append(os.Environ(), "CARBIDE_HOME=", "NO_COLOR=1")
	what, input := "cluster check", "cluster check -json sbtest\n"
	if underWrites {
		what, input = "cluster check under writes", "cluster check sbtest\n"
	}
	cmd.Stdin = strings.NewReader(input)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	var since string
	if err := c.x.dbs["east1"].QueryRow("SELECT NOW(6)").Scan(&since); err != nil {
		b.Fatal(err)
	}
	db0, repl0 := c.cpu()
	begin := time.Now()
	err := cmd.Run()
	r := checkRun{elapsed: time.Since(begin), tables: map[string]checkTableReport{}}
	db1, repl1 := c.cpu()
	r.dbCPU, r.replCPU = db1-db0, repl1-repl0
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		b.Fatalf("%s: %v", what, err)
	}
	text := out.String()
	if underWrites {
		if err != nil {
			b.Fatalf("%s after %s: %v, want exit 0 (every table equal)\nstdout:\n%s\nstderr:\n%s", what, r.elapsed.Round(time.Millisecond), err, text, errOut.String())
		}
		c.notef("%s: %s\nstdout:\n%s\nstderr:\n%s", what, r.elapsed.Round(time.Millisecond), text, errOut.String())
	} else {
		var rep struct {
			Equal  bool               `json:"equal"`
			Tables []checkTableReport `json:"tables"`
		}
		jerr := errors.New("no JSON object in the output")
		if i := strings.IndexByte(text, '{'); i >= 0 {
			jerr = json.NewDecoder(strings.NewReader(text[i:])).Decode(&rep)
		}
		if err != nil || jerr != nil || !rep.Equal || len(rep.Tables) != checkTables {
			b.Fatalf("%s after %s: %v (JSON: %v), equal %v, %d tables, want exit 0, every table equal, %d tables\nstdout:\n%s\nstderr:\n%s",
				what, r.elapsed.Round(time.Millisecond), err, jerr, rep.Equal, len(rep.Tables), checkTables, text, errOut.String())
		}
		for _, t := range rep.Tables {
			r.rows += t.Rows
			r.chunks += t.Chunks
			r.tables[t.Table] = t
		}
		if r.rows != int64(checkTables*checkRows) {
			b.Errorf("%s counted %d rows, want %d", what, r.rows, checkTables*checkRows)
		}
	}
	// Each round of the check (the first, and each retry of the chunks
	// that changed between snapshots) writes markers of its own check id;
	// the first round's last marker is when the master was done with it
	// (the rest is waiting for the other hosts, and the retries).
	var us int64
	if err := c.x.dbs["east1"].QueryRow(`SELECT COUNT(DISTINCT check_id), TIMESTAMPDIFF(MICROSECOND, ?, MAX(IF(check_id = first, ts, NULL)))
FROM tungsten_east.consistency, (SELECT MIN(check_id) first FROM tungsten_east.consistency WHERE ts >= ?) f WHERE ts >= ?`, since, since, since).Scan(&r.rounds, &us); err != nil {
		b.Fatal(err)
	}
	r.master = time.Duration(us) * time.Microsecond
	return r
}

// setChunks makes the one-host runs cut each table into as many chunks
// as check did, of equal id spans.
func (c *checkBench) setChunks(b *testing.B, check checkRun) {
	b.Helper()
	for i := range c.tables {
		t := &c.tables[i]
		tr, ok := check.tables["sbtest."+t.name]
		if !ok || tr.Chunks == 0 {
			b.Fatalf("the check did not report sbtest.%s", t.name)
		}
		n := t.maxID - t.minID + 1
		t.span = (n + int64(tr.Chunks) - 1) / int64(tr.Chunks)
	}
}

// crc32Query is pt-table-checksum's chunk query of t, on id ? to ?.
func (c *checkBench) crc32Query(t *checkTable) string {
	cols := make([]string, len(t.cols))
	nulls := make([]string, len(t.cols))
	for i, col := range t.cols {
		cols[i] = consistency.QuoteIdent(col)
		nulls[i] = "ISNULL(" + cols[i] + ")"
	}
	return "SELECT COUNT(*), COALESCE(BIT_XOR(CAST(CRC32(CONCAT_WS('#', " + strings.Join(cols, ", ") + ", CONCAT(" + strings.Join(nulls, ", ") +
		"))) AS UNSIGNED)), 0) FROM sbtest." + consistency.QuoteIdent(t.name) + " WHERE id BETWEEN ? AND ?"
}

// checkQuery is the check's own chunk query of t, on id ? to ?.
func (c *checkBench) checkQuery(t *checkTable) string {
	return consistency.ChecksumQuery(&consistency.Table{Schema: "sbtest", Name: t.name, Columns: t.cols}, " WHERE id BETWEEN ? AND ?")
}

// oneHost runs query over every chunk of every table, one after the
// other, on one connection to east1.
func (c *checkBench) oneHost(b *testing.B, query func(*checkTable) string) checkRun {
	b.Helper()
	ctx := context.Background()
	conn, err := c.x.dbs["east1"].Conn(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	db0, repl0 := c.cpu()
	begin := time.Now()
	var r checkRun
	for i := range c.tables {
		t := &c.tables[i]
		stmt, err := conn.PrepareContext(ctx, query(t))
		if err != nil {
			b.Fatal(err)
		}
		for lo := t.minID; lo <= t.maxID; lo += t.span {
			var n int64
			var sum string
			if err := stmt.QueryRowContext(ctx, lo, lo+t.span-1).Scan(&n, &sum); err != nil {
				b.Fatalf("chunk %d.. of %s: %v", lo, t.name, err)
			}
			r.rows += n
			r.chunks++
		}
		stmt.Close()
	}
	r.elapsed = time.Since(begin)
	db1, repl1 := c.cpu()
	r.dbCPU, r.replCPU = db1-db0, repl1-repl0
	return r
}

// medianRun is the run of median time (the upper one of an even count).
func medianRun(rs []checkRun) checkRun {
	s := slices.Clone(rs)
	slices.SortFunc(s, func(x, y checkRun) int { return int(x.elapsed - y.elapsed) })
	return s[len(s)/2]
}

// writerRun is what the writer saw: each statement's latency.
type writerRun struct {
	lat     []float64 // ms
	elapsed time.Duration
	err     error
	// locks are the lock waits on the six databases meanwhile
	// (lockCounters); lag the longest apply latency of service east.
	locks map[string]float64
	lag   time.Duration
}

// write UPDATEs random rows of the sysbench tables on east1, one
// autocommit statement at a time on one connection, checkWriteRate a
// second (a statement due while another runs starts as soon as it ends),
// until stop is closed.
func (c *checkBench) write(stop <-chan struct{}) writerRun {
	ctx := context.Background()
	var w writerRun
	conn, err := c.x.dbs["east1"].Conn(ctx)
	if err != nil {
		w.err = err
		return w
	}
	defer conn.Close()
	r := rand.New(rand.NewPCG(1, uint64(time.Now().UnixNano())))
	gap := time.Second / time.Duration(checkWriteRate)
	begin := time.Now()
	for i := 0; ; i++ {
		select {
		case <-stop:
			w.elapsed = time.Since(begin)
			return w
		case <-time.After(time.Until(begin.Add(time.Duration(i) * gap))):
		}
		t := c.tables[r.IntN(len(c.tables))]
		id := t.minID + r.Int64N(t.maxID-t.minID+1)
		t0 := time.Now()
		if _, err := conn.ExecContext(ctx, "UPDATE sbtest."+t.name+" SET k = k + 1 WHERE id = ?", id); err != nil {
			w.err = fmt.Errorf("UPDATE sbtest.%s id %d: %w", t.name, id, err)
			return w
		}
		w.lat = append(w.lat, float64(time.Since(t0).Microseconds())/1000)
	}
}

// metrics are the writer's latencies and rate.
func (w writerRun) metrics() map[string]float64 {
	s := sortedCopy(w.lat)
	m := map[string]float64{
		"writes": float64(len(s)), "writes/s": float64(len(s)) / w.elapsed.Seconds(),
		"p50-ms": percentile(s, 50), "p99-ms": percentile(s, 99), "max-ms": percentile(s, 100),
		"max-lag-ms": float64(w.lag.Milliseconds()),
	}
	for k, v := range w.locks {
		m[k] = v
	}
	return m
}

// writeWhile runs the writer while fn runs (for d when fn is nil), and
// meanwhile polls the replicas' apply latency and counts lock waits.
func (c *checkBench) writeWhile(b *testing.B, fn func(), d time.Duration) writerRun {
	b.Helper()
	locks0 := c.lockCounters(b)
	stop := make(chan struct{})
	var w writerRun
	var lag time.Duration
	var lagErr error
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); w = c.write(stop) }()
	go func() { defer wg.Done(); lag, lagErr = c.maxLag(stop) }()
	end := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer end() // fn may end b
	if fn != nil {
		fn()
	} else {
		time.Sleep(d)
	}
	end()
	if w.err != nil {
		b.Fatalf("the writer on east1: %v", w.err)
	}
	if lagErr != nil {
		b.Fatalf("apply latency: %v", lagErr)
	}
	w.lag, w.locks = lag, c.lockCounters(b)
	for k, v := range locks0 {
		w.locks[k] -= v
	}
	return w
}

// lockCounters sums over the six databases the waits for locks: InnoDB
// row lock waits (row-lock-waits) and the time they took
// (row-lock-wait-ms), and table lock waits (table-lock-waits).
func (c *checkBench) lockCounters(b *testing.B) map[string]float64 {
	b.Helper()
	names := map[string]string{"Innodb_row_lock_waits": "row-lock-waits", "Innodb_row_lock_time": "row-lock-wait-ms", "Table_locks_waited": "table-lock-waits"}
	out := map[string]float64{}
	for _, h := range crossHosts {
		rows, err := c.x.dbs[h].Query("SHOW GLOBAL STATUS WHERE Variable_name IN ('Innodb_row_lock_waits', 'Innodb_row_lock_time', 'Table_locks_waited')")
		if err != nil {
			b.Fatal(err)
		}
		for rows.Next() {
			var name string
			var v float64
			if err := rows.Scan(&name, &v); err != nil {
				b.Fatal(err)
			}
			out[names[name]] += v
		}
		rows.Close()
	}
	return out
}

// maxLag polls carbide_replicator_applied_latency_seconds of service east
// every 100 ms on every host that applies it (east2, east3: the cluster
// replicators' metrics, :8091; west1-3: the cross-site ones', :28091, as
// examples/msaa.ini sets them) until stop is closed, and returns the
// largest seen: how far behind the check held a replica's stream.
func (c *checkBench) maxLag(stop <-chan struct{}) (time.Duration, error) {
	client := http.Client{Timeout: 5 * time.Second}
	var urls []string
	for _, h := range crossHosts[1:] {
		ip, _, _ := strings.Cut(c.x.addr(h), ":")
		port := map[bool]string{false: "8091", true: "28091"}[strings.HasPrefix(h, "west")]
		urls = append(urls, "http://"+ip+":"+port+"/metrics")
	}
	const name = `carbide_replicator_applied_latency_seconds{service="east"} `
	var worst float64
	for {
		for _, u := range urls {
			resp, err := client.Get(u)
			if err != nil {
				return 0, err
			}
			body, _ := io.ReadAll(resp.Body) // a short read: no sample
			resp.Body.Close()
			for _, l := range strings.Split(string(body), "\n") {
				if v, ok := strings.CutPrefix(l, name); ok {
					f, _ := strconv.ParseFloat(v, 64)
					worst = max(worst, f)
				}
			}
		}
		select {
		case <-stop:
			return time.Duration(worst * float64(time.Second)), nil
		case <-time.After(100 * time.Millisecond):
		}
	}
}
