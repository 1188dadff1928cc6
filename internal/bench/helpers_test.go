package bench

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/carbidedb/carbide/internal/mysqld"
	"github.com/carbidedb/carbide/internal/position"
	"github.com/carbidedb/carbide/internal/testutil"
)

// enableEnv must be "1" for the benchmarks of this package to run.
const enableEnv = "CARBIDE_BENCH_REPLICATION"

// The accounts every server gets (testutil.SampleUsers): all privileges.
const (
	dbUser     = "tungsten"
	dbPassword = "secret"
)

// requireEnabled skips b unless the replication benchmarks were asked for
// and MariaDB and sysbench are installed.
func requireEnabled(b *testing.B) {
	b.Helper()
	if os.Getenv(enableEnv) != "1" {
		b.Skipf("set %s=1 to run the replication benchmarks (make bench does); they take minutes", enableEnv)
	}
	testutil.RequireDB(b)
	testutil.RequireSysbench(b)
}

// envInt reads a positive integer from the environment (for quicker runs
// while working on the benchmarks), or returns def.
func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// server is a mariadbd started by the benchmark, with a root pool.
type server struct {
	*mysqld.Server
	db *sql.DB
}

// startServer starts mariadbd in dir: on dir/data when it already holds a
// datadir (a snapshot copy, a restart), else on a copy of the template.
// options are extra my.cnf lines. A cleanup stops it.
func startServer(b *testing.B, dir string, id uint32, tmpl *mysqld.Template, options ...string) *server {
	b.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	testutil.Claim(b, dir)
	cfg := mysqld.Config{Dir: dir, ServerID: id, Users: testutil.SampleUsers, Options: options}
	var srv *mysqld.Server
	var err error
	for attempt := 1; ; attempt++ {
		cfg.Address = testutil.FreeAddress(mysqld.DefaultPort)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		srv, err = mysqld.Start(ctx, cfg, tmpl)
		cancel()
		if err == nil {
			break
		}
		if !errors.Is(err, mysqld.ErrAddressInUse) || attempt == 5 {
			b.Fatalf("start mariadbd in %s: %v", dir, err)
		}
	}
	return wrap(b, srv)
}

// restart starts s again on its datadir and address after a Stop.
func (s *server) restart(b *testing.B) *server {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := mysqld.Start(ctx, s.Config(), nil)
	if err != nil {
		b.Fatalf("restart mariadbd in %s: %v", s.Dir(), err)
	}
	return wrap(b, srv)
}

func wrap(b *testing.B, srv *mysqld.Server) *server {
	db, err := srv.DB()
	if err != nil {
		srv.Stop(context.Background())
		b.Fatal(err)
	}
	s := &server{Server: srv, db: db}
	b.Cleanup(func() { s.stop(b) })
	return s
}

// stop shuts the server down cleanly; stopping twice does nothing.
func (s *server) stop(b *testing.B) {
	s.db.Close()
	if err := s.Server.Stop(context.Background()); err != nil {
		b.Errorf("stop mariadbd in %s: %v", s.Dir(), err)
	}
}

func (s *server) exec(b *testing.B, stmts ...string) {
	b.Helper()
	for _, q := range stmts {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		_, err := s.db.ExecContext(ctx, q)
		cancel()
		if err != nil {
			b.Fatalf("%s: %s: %v", s.Addr(), q, err)
		}
	}
}

// masterStatus is SHOW MASTER STATUS: the end of the binlog.
func (s *server) masterStatus(b *testing.B) position.Position {
	b.Helper()
	rows, err := s.db.Query("SHOW MASTER STATUS")
	if err != nil {
		b.Fatal(err)
	}
	defer rows.Close()
	m := rowMap(b, rows)
	if m == nil {
		b.Fatalf("%s: SHOW MASTER STATUS is empty: is the binlog on?", s.Addr())
	}
	off, err := strconv.ParseUint(m["Position"], 10, 64)
	if err != nil {
		b.Fatal(err)
	}
	return position.Position{File: m["File"], Offset: off}
}

// rowMap reads the first row of rows as column → text (NULL as "").
func rowMap(b *testing.B, rows *sql.Rows) map[string]string {
	b.Helper()
	cols, err := rows.Columns()
	if err != nil {
		b.Fatal(err)
	}
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			b.Fatal(err)
		}
		return nil
	}
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		b.Fatal(err)
	}
	m := make(map[string]string, len(cols))
	for i, c := range cols {
		m[c] = vals[i].String
	}
	return m
}

// slaveStatus is SHOW SLAVE STATUS (nil when no replication is set up).
func (s *server) slaveStatus(ctx context.Context) (map[string]string, error) {
	rows, err := s.db.QueryContext(ctx, "SHOW SLAVE STATUS")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	if !rows.Next() {
		return nil, rows.Err()
	}
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		return nil, err
	}
	m := make(map[string]string, len(cols))
	for i, c := range cols {
		m[c] = vals[i].String
	}
	return m, nil
}

// changeMaster points s's native replication at primary from pos
// (binlog file and offset, not GTID).
func (s *server) changeMaster(b *testing.B, primary *server, pos position.Position) {
	b.Helper()
	host, port := hostPort(primary.Addr())
	s.exec(b, fmt.Sprintf("CHANGE MASTER TO MASTER_HOST='%s', MASTER_PORT=%d, MASTER_USER='%s', MASTER_PASSWORD='%s', "+
		"MASTER_LOG_FILE='%s', MASTER_LOG_POS=%d, MASTER_USE_GTID=no", host, port, dbUser, dbPassword, pos.File, pos.Offset))
}

// waitCaughtUp waits until s's SQL thread has executed the primary's
// binlog up to end, failing on a replication error.
func (s *server) waitCaughtUp(ctx context.Context, end position.Position, poll time.Duration) error {
	for {
		st, err := s.slaveStatus(ctx)
		if err != nil {
			return err
		}
		if st == nil {
			return errors.New("no replication configured")
		}
		if st["Last_SQL_Errno"] != "0" || st["Last_IO_Errno"] != "0" {
			return fmt.Errorf("replication failed: SQL %s %s; IO %s %s", st["Last_SQL_Errno"], st["Last_SQL_Error"], st["Last_IO_Errno"], st["Last_IO_Error"])
		}
		off, _ := strconv.ParseUint(st["Exec_Master_Log_Pos"], 10, 64)
		if (position.Position{File: st["Relay_Master_Log_File"], Offset: off}).Compare(end) >= 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not caught up with %s (executed up to %s:%d): %w", end, st["Relay_Master_Log_File"], off, ctx.Err())
		case <-time.After(poll):
		}
	}
}

// waitBufferPoolLoaded waits (up to a minute) until InnoDB has loaded the
// buffer pool dump it found at start, so that no measurement pays for it.
func (s *server) waitBufferPoolLoaded(b *testing.B) {
	b.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		var name, status string
		if err := s.db.QueryRow("SHOW GLOBAL STATUS LIKE 'Innodb_buffer_pool_load_status'").Scan(&name, &status); err != nil {
			b.Fatal(err)
		}
		if strings.Contains(status, "completed") || strings.Contains(status, "not started") || status == "" {
			return
		}
		if time.Now().After(deadline) {
			b.Logf("%s: buffer pool load still running after a minute (%s); measuring anyway", s.Addr(), status)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// checksums returns CHECKSUM TABLE of each table.
func (s *server) checksums(b *testing.B, tables []string) []string {
	b.Helper()
	var out []string
	for _, t := range tables {
		var name string
		var sum sql.NullString
		if err := s.db.QueryRow("CHECKSUM TABLE "+t).Scan(&name, &sum); err != nil {
			b.Fatal(err)
		}
		out = append(out, sum.String)
	}
	return out
}

// cpuTime is the CPU time (user + system) process pid has used.
func cpuTime(pid int) time.Duration {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(data[i+2:]))
	// Fields after the command: state(0) ... utime(11) stime(12), in clock
	// ticks (100 per second on Linux).
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+s) * 10 * time.Millisecond
}

// selfCPU is the CPU time this process has used.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func hostPort(addr string) (string, int) {
	i := strings.LastIndexByte(addr, ':')
	p, _ := strconv.Atoi(addr[i+1:])
	return addr[:i], p
}

// copyDatadir copies a stopped server's datadir to dst/data, without its
// binlogs, relay logs and replication state: a replica starts its own.
func copyDatadir(b *testing.B, src, dst string) {
	b.Helper()
	if err := os.MkdirAll(dst, 0o755); err != nil {
		b.Fatal(err)
	}
	out, err := exec.Command("cp", "-a", "--sparse=always", src, filepath.Join(dst, "data")).CombinedOutput()
	if err != nil {
		b.Fatalf("copy %s: %v\n%s", src, err, out)
	}
	for _, pat := range []string{"mysql-bin.*", "relay-bin.*", "master.info", "relay-log.info", "multi-master.info"} {
		files, _ := filepath.Glob(filepath.Join(dst, "data", pat))
		for _, f := range files {
			if err := os.Remove(f); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// sysbench runs sysbench oltp_write_only against srv's sbtest database.
func sysbench(b *testing.B, srv *server, tables, tableSize int, args ...string) string {
	b.Helper()
	host, port := hostPort(srv.Addr())
	all := append([]string{"oltp_write_only", "--db-driver=mysql",
		"--mysql-host=" + host, "--mysql-port=" + strconv.Itoa(port),
		"--mysql-user=" + dbUser, "--mysql-password=" + dbPassword, "--mysql-db=sbtest",
		"--tables=" + strconv.Itoa(tables), "--table-size=" + strconv.Itoa(tableSize)}, args...)
	out, err := exec.Command("sysbench", all...).CombinedOutput()
	if err != nil {
		b.Fatalf("sysbench %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

var sysbenchTx = regexp.MustCompile(`transactions:\s+(\d+)\s+\(([\d.]+) per sec`)

// percentile returns the p-th percentile (0-100) of sorted values.
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func sortedCopy(v []float64) []float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s
}

// statusNames are the SHOW GLOBAL STATUS counters logged per transaction
// for each way of applying: what the server did for it.
var statusNames = []string{"Innodb_data_fsyncs", "Binlog_commits", "Binlog_group_commits", "Innodb_buffer_pool_reads", "Com_commit", "Questions"}

// status reads the statusNames counters.
func (s *server) status(b *testing.B) map[string]float64 {
	b.Helper()
	rows, err := s.db.Query("SHOW GLOBAL STATUS")
	if err != nil {
		b.Fatal(err)
	}
	defer rows.Close()
	want := map[string]bool{}
	for _, n := range statusNames {
		want[n] = true
	}
	out := map[string]float64{}
	for rows.Next() {
		var name, value string
		if err := rows.Scan(&name, &value); err != nil {
			b.Fatal(err)
		}
		if want[name] {
			out[name], _ = strconv.ParseFloat(value, 64)
		}
	}
	return out
}

// perTx describes the change of the counters from before to after, per
// transaction.
func perTx(before, after map[string]float64, txns int) string {
	var parts []string
	for _, n := range statusNames {
		parts = append(parts, fmt.Sprintf("%s %.2f", n, (after[n]-before[n])/float64(txns)))
	}
	return strings.Join(parts, ", ")
}

// waitIdle waits until process pid has used under 5% of a core over half a
// second (mariadbd purging and flushing after a load), at most timeout.
func waitIdle(pid int, timeout time.Duration) time.Duration {
	begin := time.Now()
	const window = 500 * time.Millisecond
	for time.Since(begin) < timeout {
		c0 := cpuTime(pid)
		time.Sleep(window)
		if cpuTime(pid)-c0 < window/20 {
			break
		}
	}
	return time.Since(begin)
}

// stall is the machine's pressure stall information (/proc/pressure):
// how long some task waited for a CPU, and for I/O, since boot.
type stall struct {
	at      time.Time
	cpu, io time.Duration
	// stolen and ticks are /proc/stat's steal and all CPU time, in ticks:
	// the hypervisor running someone else on this VM's CPUs slows every
	// process here alike.
	stolen, ticks int64
}

// readSteal returns /proc/stat's steal time and all CPU time, in ticks.
func readSteal() (stolen, all int64) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(data), "\n")
	for i, f := range strings.Fields(line)[1:] {
		n, _ := strconv.ParseInt(f, 10, 64)
		if i == 7 {
			stolen = n
		}
		if i < 8 { // guest time is counted in user time already
			all += n
		}
	}
	return stolen, all
}

func readStall() stall {
	s := stall{at: time.Now()}
	read := func(name string) time.Duration {
		data, err := os.ReadFile("/proc/pressure/" + name)
		if err != nil {
			return 0
		}
		// "some avg10=… avg60=… avg300=… total=<µs>"
		line, _, _ := strings.Cut(string(data), "\n")
		if i := strings.Index(line, "total="); i >= 0 {
			us, _ := strconv.ParseInt(strings.TrimSpace(line[i+len("total="):]), 10, 64)
			return time.Duration(us) * time.Microsecond
		}
		return 0
	}
	s.cpu, s.io = read("cpu"), read("io")
	s.stolen, s.ticks = readSteal()
	return s
}

// stolenSince returns the share of CPU time stolen between s and now, in
// percent; false when the kernel does not say.
func (s stall) stolenSince(now stall) (float64, bool) {
	d := now.ticks - s.ticks
	if d <= 0 {
		return 0, false
	}
	return 100 * float64(now.stolen-s.stolen) / float64(d), true
}

// since describes the pressure since s: the share of wall time in which
// some task (ours or anyone's on the machine) waited for a CPU or for I/O.
func (s stall) since() string {
	now := readStall()
	wall := now.at.Sub(s.at)
	if wall <= 0 || (now.cpu == 0 && now.io == 0) {
		return "pressure unknown"
	}
	steal := ""
	if pct, ok := s.stolenSince(now); ok {
		steal = fmt.Sprintf("; CPU time stolen by the hypervisor %.1f%%", pct)
	}
	return fmt.Sprintf("CPU pressure %.0f%%, I/O pressure %.0f%% of the time%s", 100*float64(now.cpu-s.cpu)/float64(wall), 100*float64(now.io-s.io)/float64(wall), steal)
}
