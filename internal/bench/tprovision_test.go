package bench

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

const tprovisionNet = 243

// BenchmarkTprovision rebuilds replicas of a site holding a database of
// CARBIDE_BENCH_TPROVISION_MB (1024 by default; sysbench tables) with
// tprovision, each method beside the same copy done by hand:
//
//   - mysqldump-by-hand-baseline: mysqldump --single-transaction of the
//     primary piped into the mariadb client on east2;
//   - mysqldump: tprovision -s east1 -m mysqldump on east2 (shun, offline,
//     the same copy, the position, online, recover);
//   - mariabackup-by-hand-baseline: mariabackup --backup --stream=mbstream
//     of the primary's datadir into mbstream -x, then --prepare, on the
//     primary's host;
//   - mariabackup: tprovision -s east1 -m mariabackup -t 2 on east3 (the
//     stream goes through east1's replicator; east3's database is stopped,
//     replaced and started).
//
// The replicas' replicators are offline while the data is loaded (the
// copies bring it). Each row gives the wall time and MB/s of the
// database's size; afterwards every host must have the same checksums.
func BenchmarkTprovision(b *testing.B) {
	requireEnabled(b)
	mb := envInt("CARBIDE_BENCH_TPROVISION_MB", 1024)
	x := upSandbox(b, "one site", []byte(managerINI), tprovisionNet)
	for _, h := range []string{"east1", "east2", "east3"} {
		x.dbs[h] = x.open(b, h)
	}
	for _, h := range []string{"east2", "east3"} {
		if out, err := x.tool(h, "continuent", "trepctl", "offline"); err != nil {
			b.Fatalf("trepctl offline on %s: %v\n%s", h, err, out)
		}
	}
	x.exec(b, "east1", "CREATE DATABASE sbtest")
	// A sysbench row takes about 230 bytes with its secondary index.
	const tables = 8
	rows := mb << 20 / 230 / tables
	host, _ := hostPort(x.addr("east1"))
	east2, _ := hostPort(x.addr("east2"))
	prep := exec.Command("sysbench", "--db-driver=mysql", "--mysql-host="+host, "--mysql-port=13306", "--mysql-user=tungsten",
		"--mysql-password=secret", "--mysql-db=sbtest", "--tables="+strconv.Itoa(tables), "--table-size="+strconv.Itoa(rows), "--threads=2",
		"oltp_read_only", "prepare")
	if out, err := prep.CombinedOutput(); err != nil || strings.Contains(string(out), "FATAL") {
		b.Fatalf("sysbench prepare: %v\n%s", err, out)
	}
	var names []string
	for i := 1; i <= tables; i++ {
		names = append(names, fmt.Sprintf("sbtest.sbtest%d", i))
	}
	x.exec(b, "east1", "ANALYZE TABLE "+strings.Join(names, ", "))
	var size int64
	if err := x.dbs["east1"].QueryRow("SELECT SUM(data_length + index_length) FROM information_schema.tables WHERE table_schema = 'sbtest'").Scan(&size); err != nil {
		b.Fatal(err)
	}
	sizeMB := float64(size) / (1 << 20)
	b.Logf("database: %d tables of %d rows, %.0f MB", tables, rows, sizeMB)

	report := func(name string, d time.Duration) {
		b.Run(name, func(b *testing.B) {
			result{elapsed: d, metrics: map[string]float64{"MB/s": sizeMB / d.Seconds(), "MB": sizeMB, "s": d.Seconds()}}.report(b)
		})
	}
	timed := func(what string, cmd *exec.Cmd) time.Duration {
		begin := time.Now()
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("%s: %v\n%s", what, err, out)
		}
		return time.Since(begin)
	}
	tool := func(h string, args ...string) *exec.Cmd {
		cmd := exec.Command(filepath.Join(x.cfg.Dir, h, "continuent", "bin", "tprovision"), args...)
		cmd.Env = append(os.Environ(), "CARBIDE_HOME=")
		return cmd
	}

	// By hand: mysqldump of the primary into east2 (outside its binlog).
	dump := exec.Command("bash", "-c", fmt.Sprintf(
		"set -o pipefail; mysqldump --protocol=TCP -h%s -P13306 -utungsten -psecret --single-transaction --master-data=2 --hex-blob --databases sbtest | "+
			"mariadb --protocol=TCP -h%s -P13306 -utungsten -psecret --init-command='SET SESSION sql_log_bin=0' --binary-mode",
		host, east2))
	report("mysqldump-by-hand-baseline", timed("mysqldump | mariadb", dump))

	// By hand: mariabackup of the primary's datadir, unpacked and prepared.
	scratch := b.TempDir()
	datadir := filepath.Join(x.cfg.Dir, "east1", "mysql", "data")
	backup := exec.Command("bash", "-c", fmt.Sprintf(
		"set -o pipefail; mariabackup --backup --stream=mbstream --target-dir=%s/tmp --datadir=%s --host=%s --port=13306 --user=tungsten --password=secret --parallel=2 | mbstream -x -C %s/copy && "+
			"mariabackup --prepare --target-dir=%s/copy",
		scratch, datadir, host, scratch, scratch))
	os.MkdirAll(filepath.Join(scratch, "copy"), 0o755)
	report("mariabackup-by-hand-baseline", timed("mariabackup | mbstream; --prepare", backup))
	os.RemoveAll(scratch)

	report("mysqldump", timed("tprovision -m mysqldump on east2", tool("east2", "-s", "east1", "-m", "mysqldump")))
	report("mariabackup", timed("tprovision -m mariabackup on east3", tool("east3", "-s", "east1", "-m", "mariabackup", "-t", "2")))

	// Both replicas hold the primary's data and follow it.
	x.exec(b, "east1", "CREATE TABLE sbtest.after (id INT PRIMARY KEY)", "INSERT INTO sbtest.after VALUES (1)")
	want := checksumOf(b, x, "east1", names)
	for _, h := range []string{"east2", "east3"} {
		deadline := time.Now().Add(2 * time.Minute)
		for {
			var n int
			x.dbs[h].QueryRow("SELECT COUNT(*) FROM sbtest.after").Scan(&n)
			if n == 1 {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("%s did not get the write made after its copy", h)
			}
			time.Sleep(100 * time.Millisecond)
		}
		if got := checksumOf(b, x, h, names); got != want {
			b.Fatalf("%s checksums %s, east1 %s", h, got, want)
		}
	}
}

func checksumOf(b *testing.B, x *crossSite, host string, tables []string) string {
	b.Helper()
	rows, err := x.dbs[host].Query("CHECKSUM TABLE " + strings.Join(tables, ", "))
	if err != nil {
		b.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var name string
		var sum any
		rows.Scan(&name, &sum)
		out = append(out, fmt.Sprintf("%s=%s", name, sum))
	}
	return strings.Join(out, " ")
}
