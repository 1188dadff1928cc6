package bench

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/carbidedb/carbide/router"
)

// connectorNet is the connector benchmark's address block (127.242.S.H).
const connectorNet = 242

// connectorINI is one site of three hosts with a connector on each.
var connectorINI = strings.Replace(managerINI, "master=east1\n", "master=east1\nconnectors=east1,east2,east3\n", 1)

// The three paths to the primary's database (east1), all on east1's address.
const (
	directPort    = 13306 // mariadbd
	connectorPort = 3306  // Carbide's connector on east1
	haproxyPort   = 6033  // HAProxy in TCP mode, configured to the primary
)

var connectorPaths = []struct {
	name string
	port int
}{{"direct", directPort}, {"connector", connectorPort}, {"haproxy", haproxyPort}}

// connectorRuns is how many times each path runs each load (alternated).
var connectorRuns = envInt("CARBIDE_BENCH_CONNECTOR_RUNS", 5)

// connectorSeconds is each sysbench run's length.
var connectorSeconds = envInt("CARBIDE_BENCH_CONNECTOR_SECONDS", 6)

// BenchmarkConnector compares the three ways an application reaches the
// primary, on one site of real processes (mariadbd, replicator, manager
// and connector per host): directly, through Carbide's connector on the
// primary's host, and through HAProxy in TCP mode (Debian's haproxy, its
// default two threads) listening on the same address and sending to the
// same mariadbd. sysbench oltp_point_select and oltp_read_only, 8 threads
// and 1, each path run connectorRuns times, alternated (direct, connector,
// haproxy, direct, ...) so that drift hits all three alike; the medians
// of QPS and p95 latency are reported with the ratios connector/haproxy
// and connector/direct. Then, for 8 threads, each path again at a fixed
// rate all three sustain (half the slowest path's median) for the
// latency each proxy adds: p95 through it minus p95 direct.
func BenchmarkConnector(b *testing.B) {
	requireEnabled(b)
	if _, err := exec.LookPath("haproxy"); err != nil {
		b.Fatal("haproxy not found; install it (scripts/install-deps.sh)")
	}
	x := upSandbox(b, "one site with connectors", []byte(connectorINI), connectorNet)
	host := fmt.Sprintf("127.%d.1.1", connectorNet)
	startHAProxy(b, host)
	x.dbs["east1"] = x.open(b, "east1")
	x.exec(b, "east1", "CREATE DATABASE sbtest")
	sb := func(args ...string) (string, error) {
		base := []string{"--db-driver=mysql", "--mysql-user=app_user", "--mysql-password=secret", "--mysql-db=sbtest",
			"--mysql-host=" + host, "--tables=4", "--table-size=10000"}
		out, err := exec.Command("sysbench", append(base, args...)...).CombinedOutput()
		return string(out), err
	}
	if out, err := sb("--mysql-port=13306", "--threads=4", "oltp_read_only", "prepare"); err != nil {
		b.Fatalf("sysbench prepare: %v\n%s", err, out)
	}
	proxyPID := map[int]int{connectorPort: readPID(b, filepath.Join(router.PIDFile(filepath.Join(x.cfg.Dir, "east1", "continuent"))))}
	proxyPID[haproxyPort] = haproxyPID(b)
	// cpu is the CPU time of the last run per query: the machine's
	// (every process and the kernel) and the proxy process's own.
	var cpu struct{ machine, proxy float64 }
	run := func(workload string, threads, port, rate int) (qps, p95 float64) {
		args := []string{"--mysql-port=" + strconv.Itoa(port), "--threads=" + strconv.Itoa(threads),
			"--time=" + strconv.Itoa(connectorSeconds), "--percentile=95"}
		if rate > 0 {
			args = append(args, "--rate="+strconv.Itoa(rate))
		}
		m0, p0 := machineCPU(b), processCPU(proxyPID[port])
		out, err := sb(append(args, workload, "run")...)
		if err != nil || strings.Contains(out, "FATAL") {
			b.Fatalf("sysbench %s on port %d: %v\n%s", workload, port, err, out)
		}
		m1, p1 := machineCPU(b), processCPU(proxyPID[port])
		queries := sbFloat(b, out, `queries:\s+(\d+)`)
		cpu.machine, cpu.proxy = float64((m1-m0).Microseconds())/queries, float64((p1-p0).Microseconds())/queries
		return sbFloat(b, out, `queries:\s+\d+\s+\(([\d.]+) per sec`), sbFloat(b, out, `95th percentile:\s+([\d.]+)`)
	}
	// Warm the buffer pool and every path once.
	for _, p := range connectorPaths {
		run("oltp_read_only", 4, p.port, 0)
	}

	only := os.Getenv("CARBIDE_BENCH_CONNECTOR_LOADS") // e.g. "oltp_point_select-8" while tuning
	for _, workload := range []string{"oltp_point_select", "oltp_read_only"} {
		for _, threads := range []int{8, 1} {
			if only != "" && !slices.Contains(strings.Split(only, ","), fmt.Sprintf("%s-%d", workload, threads)) {
				continue
			}
			qps := map[string][]float64{}
			p95 := map[string][]float64{}
			cpuMachine := map[string][]float64{}
			cpuProxy := map[string][]float64{}
			for i := 0; i < connectorRuns; i++ {
				for _, p := range connectorPaths {
					q, l := run(workload, threads, p.port, 0)
					qps[p.name] = append(qps[p.name], q)
					p95[p.name] = append(p95[p.name], l)
					cpuMachine[p.name] = append(cpuMachine[p.name], cpu.machine)
					cpuProxy[p.name] = append(cpuProxy[p.name], cpu.proxy)
				}
			}
			name := fmt.Sprintf("%s-%dthreads", strings.TrimPrefix(workload, "oltp_"), threads)
			med := func(m map[string][]float64, path string) float64 { return median(m[path]) }
			for _, p := range connectorPaths {
				metrics := map[string]float64{"qps": med(qps, p.name), "p95-ms": med(p95, p.name), "cpu-us/query": med(cpuMachine, p.name)}
				if p.name != "direct" {
					// What the path costs the machine beyond the direct
					// one, and the proxy process's part of it. At CPU
					// saturation direct's CPU per query over the path's
					// bounds the path's QPS over direct's.
					metrics["added-cpu-us/query"] = med(cpuMachine, p.name) - med(cpuMachine, "direct")
					metrics["proxy-cpu-us/query"] = med(cpuProxy, p.name)
					metrics["cpu-bound-vs-direct"] = med(cpuMachine, "direct") / med(cpuMachine, p.name)
				}
				if p.name == "connector" {
					metrics["vs-haproxy"] = med(qps, "connector") / med(qps, "haproxy")
					metrics["vs-direct"] = med(qps, "connector") / med(qps, "direct")
				}
				if p.name == "haproxy" {
					metrics["vs-direct"] = med(qps, "haproxy") / med(qps, "direct")
				}
				sub := name + "/" + p.name
				if p.name != "connector" {
					sub += "-baseline"
				}
				b.Run(sub, func(b *testing.B) { result{metrics: metrics}.report(b) })
			}
			if threads != 8 {
				continue
			}
			// The fixed rate: half the slowest path's QPS, in sysbench
			// transactions. sysbench's QPS counts every statement:
			// oltp_read_only runs 14 SELECTs between a BEGIN and a COMMIT.
			slowest := min(med(qps, "direct"), med(qps, "connector"), med(qps, "haproxy"))
			perTx := 1.0
			if workload == "oltp_read_only" {
				perTx = 16
			}
			rate := int(slowest / 2 / perTx)
			fixed := map[string][]float64{}
			for i := 0; i < connectorRuns; i++ {
				for _, p := range connectorPaths {
					_, l := run(workload, threads, p.port, rate)
					fixed[p.name] = append(fixed[p.name], l)
				}
			}
			direct := median(fixed["direct"])
			for _, p := range connectorPaths {
				metrics := map[string]float64{"tx/s-fixed": float64(rate), "p95-ms": median(fixed[p.name])}
				if p.name != "direct" {
					metrics["added-p95-ms"] = median(fixed[p.name]) - direct
				}
				sub := fmt.Sprintf("%s-at-half-rate/%s", name, p.name)
				if p.name != "connector" {
					sub += "-baseline"
				}
				b.Run(sub, func(b *testing.B) { result{metrics: metrics}.report(b) })
			}
		}
	}
}

// haproxyPIDFile is where the running haproxy wrote its pid.
var haproxyPIDFile string

// haproxyPID is the running haproxy's pid (its daemon writes one process).
func haproxyPID(b *testing.B) int {
	b.Helper()
	return readPID(b, haproxyPIDFile)
}

// startHAProxy runs haproxy in TCP mode on host:haproxyPort in front of
// host's mariadbd, stopped by a cleanup.
func startHAProxy(b *testing.B, host string) {
	b.Helper()
	dir := b.TempDir()
	cfg := filepath.Join(dir, "haproxy.cfg")
	pidFile := filepath.Join(dir, "haproxy.pid")
	conf := fmt.Sprintf(`global
    maxconn 4096
defaults
    mode tcp
    timeout connect 5s
    timeout client 1h
    timeout server 1h
listen mysql
    bind %[1]s:%[2]d
    server east1 %[1]s:%[3]d
`, host, haproxyPort, directPort)
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		b.Fatal(err)
	}
	if out, err := exec.Command("haproxy", "-f", cfg, "-D", "-p", pidFile).CombinedOutput(); err != nil {
		b.Fatalf("haproxy: %v\n%s", err, out)
	}
	haproxyPIDFile = pidFile
	b.Cleanup(func() {
		data, err := os.ReadFile(pidFile)
		if err != nil {
			return
		}
		for _, f := range strings.Fields(string(data)) {
			if pid, err := strconv.Atoi(f); err == nil {
				syscall.Kill(pid, syscall.SIGTERM)
			}
		}
	})
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := os.Stat(pidFile); err == nil {
			return
		}
		if time.Now().After(deadline) {
			b.Fatal("haproxy wrote no pid file in 5 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// machineCPU is the CPU time every core spent busy since boot (/proc/stat:
// user, nice, system, irq, softirq and steal).
func machineCPU(b *testing.B) time.Duration {
	b.Helper()
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		b.Fatal(err)
	}
	f := strings.Fields(strings.SplitN(string(data), "\n", 2)[0])
	var ticks int64
	for _, i := range []int{1, 2, 3, 6, 7, 8} { // cpu user nice system idle iowait irq softirq steal
		n, _ := strconv.ParseInt(f[i], 10, 64)
		ticks += n
	}
	return time.Duration(ticks) * time.Second / 100 // USER_HZ
}

// processCPU is pid's CPU time (user and system; 0 when pid is 0 or gone).
func processCPU(pid int) time.Duration {
	if pid == 0 {
		return 0
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command's closing parenthesis: utime and stime
	// are the 12th and 13th.
	f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+st) * time.Second / 100
}

// readPID reads a pid file.
func readPID(b *testing.B, path string) int {
	b.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatalf("read the pid file: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		b.Fatalf("pid file %s: %v", path, err)
	}
	return pid
}

// sbFloat reads the first group of re from sysbench's output.
func sbFloat(b *testing.B, out, re string) float64 {
	b.Helper()
	m := regexp.MustCompile(re).FindStringSubmatch(out)
	if m == nil {
		b.Fatalf("no %q in sysbench's output:\n%s", re, out)
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		b.Fatal(err)
	}
	return v
}

// median of v (the lower middle of an even count).
func median(v []float64) float64 { return percentile(sortedCopy(v), 50) }
