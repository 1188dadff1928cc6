package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/carbidedb/carbide/internal/testutil"
)

// connectorSite is oneSite with a connector on every host, a read-only
// port, and a short disconnect timeout (the drain a switch waits for).
var connectorSite = strings.Replace(oneSite, "master=east1\n",
	"master=east1\nconnectors=east1,east2,east3\nconnector-readonly-listen-port=3307\nconnector-disconnect-timeout=2\n", 1)

// viaConnector opens a pool through host's connector as the application.
func (s *site) viaConnector(host string) *sql.DB {
	s.t.Helper()
	return s.appPool(s.addr(host) + ":3306")
}

// client runs the mariadb client as the application through host's
// connector port, as the guide does.
func (s *site) client(host string, port int, sql string) (string, error) {
	out, err := exec.Command("mariadb", "-h"+s.addr(host), "-P"+strconv.Itoa(port), "-uapp_user", "-psecret", "-N", "-e", sql).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// sysbench runs sysbench as the application through host's connector.
func (s *site) sysbench(host string, env []string, args ...string) (string, error) {
	s.t.Helper()
	base := []string{"--db-driver=mysql", "--mysql-host=" + s.addr(host), "--mysql-port=3306",
		"--mysql-user=app_user", "--mysql-password=secret", "--mysql-db=sbtest", "--tables=2", "--table-size=2000"}
	cmd := exec.Command("sysbench", append(base, args...)...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// lsLine finds the line of `cctrl ls` on east1 that matches re.
func (s *site) lsLine(re string) string {
	r := s.runCctrl("east1", "continuent", "cctrl", "ls\n")
	return regexp.MustCompile(re).FindString(r.out)
}

// TestConnector: applications reach the primary through any host's
// connector, with the mariadb client as in the guide; the counters in
// `cctrl ls` are exactly the connections opened; the read-only port
// reaches a replica; router * offline refuses new connections with the
// connector's error and online restores them; sysbench oltp_read_write
// runs through the connector without an error; and through a switch
// under sysbench and a writer: no application statement reaches the old
// primary once it is read-only, the load goes on on the new primary, the
// failed transactions are counted, and no acknowledged write is lost.
func TestConnector(t *testing.T) {
	testutil.RequireSysbench(t)
	s := startSandbox(t, connectorSite)

	// The sandbox runs as root on a recent kernel: every connector moves
	// bytes in the kernel (BPF sockmap), so what follows tests that path.
	for _, h := range []string{"east1", "east2", "east3"} {
		log, _ := os.ReadFile(filepath.Join(s.cfg.Dir, h, "continuent", "var", "log", "connector.log"))
		if !strings.Contains(string(log), "data path: kernel") {
			t.Fatalf("%s's connector does not run the kernel path:\n%s", h, log)
		}
	}

	// Counters: three one-shot clients and two held connections through
	// east3's connector, nothing else through any connector yet.
	for i := 0; i < 3; i++ {
		out, err := s.client("east3", 3306, "select @@hostname, @@server_id")
		if err != nil || !strings.HasPrefix(out, "east1") {
			t.Fatalf("mariadb through east3's connector: %v\n%s", err, out)
		}
	}
	held := s.viaConnector("east3")
	held.SetMaxOpenConns(2)
	var c1, c2 *sql.Conn
	var err error
	if c1, err = held.Conn(context.Background()); err == nil {
		c2, err = held.Conn(context.Background())
	}
	if err != nil || c1.PingContext(context.Background()) != nil || c2.PingContext(context.Background()) != nil {
		t.Fatalf("two connections through east3's connector: %v", err)
	}
	want := map[string]string{
		`connector@east3\[\d+\]\(ONLINE, created=5, active=2\)`:   "east3's connector",
		`connector@east2\[\d+\]\(ONLINE, created=0, active=0\)`:   "east2's connector",
		`(?s)east1\(master.*? CONNECTIONS\(created=5, active=2\)`: "east1's CONNECTIONS",
	}
	testutil.Eventually(t, 5*time.Second, func() error {
		for re, what := range want {
			if s.lsLine(re) == "" {
				return fmt.Errorf("ls shows no %s line matching %s", what, re)
			}
		}
		return nil
	})
	c1.Close()
	c2.Close()
	held.Close()
	testutil.Eventually(t, 5*time.Second, func() error {
		if s.lsLine(`connector@east3\[\d+\]\(ONLINE, created=5, active=0\)`) == "" {
			return fmt.Errorf("east3's connector still counts active connections")
		}
		return nil
	})

	// The read-only port: a replica.
	if out, err := s.client("east1", 3307, "select @@hostname"); err != nil || (out != "east2" && out != "east3") {
		t.Errorf("read-only port of east1's connector reached %q (%v), want a replica", out, err)
	}

	s.mustCctrl("east1", "router", "*", "offline")
	testutil.Eventually(t, 5*time.Second, func() error {
		out, err := s.client("east2", 3306, "select 1")
		if err == nil || !strings.Contains(out, "OFFLINE") {
			return fmt.Errorf("connector still takes connections: %v %s", err, out)
		}
		return nil
	})
	s.mustCctrl("east1", "router", "*", "online")
	testutil.Eventually(t, 5*time.Second, func() error {
		_, err := s.client("east2", 3306, "select 1")
		return err
	})

	// sysbench through the connector.
	if out, err := s.client("east2", 3306, "CREATE DATABASE sbtest"); err != nil {
		t.Fatalf("create database through the connector: %v %s", err, out)
	}
	if out, err := s.sysbench("east2", nil, "oltp_read_write", "prepare"); err != nil {
		t.Fatalf("sysbench prepare through the connector: %v\n%s", err, out)
	}
	// (sysbench's default retries the deadlocks its own workload makes.)
	out, err := s.sysbench("east2", nil, "--threads=4", "--time=3", "oltp_read_write", "run")
	if err != nil || strings.Contains(out, "FATAL") {
		t.Fatalf("sysbench oltp_read_write through the connector: %v\n%s", err, out)
	}
	t.Logf("sysbench oltp_read_write through east2's connector, 4 threads, 3 s: %s", sysbenchTPS(out))

	// A switch under sysbench (reconnecting) and a writer, with the old
	// primary's general log on to see what reaches it.
	s.exec("east1", "SET GLOBAL log_output = 'TABLE'", "TRUNCATE mysql.general_log", "SET GLOBAL general_log = ON")
	s.createApp()
	db := s.viaConnector("east3")
	var acked, failed atomic.Int64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for n := 0; ; {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := db.Exec("INSERT INTO app.t (v) VALUES (?)", 5_000_000+n); err != nil {
				if strings.Contains(err.Error(), "Duplicate entry") {
					acked.Add(1)
					n++
				} else {
					failed.Add(1)
				}
				time.Sleep(5 * time.Millisecond)
				continue
			}
			acked.Add(1)
			n++
		}
	}()
	script, err := filepath.Abs("../../scripts/sysbench/oltp_reconnect.lua")
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		out string
		err error
	}
	sb := make(chan result, 1)
	go func() {
		out, err := s.sysbench("east2", []string{"CARBIDE_OLTP=oltp_read_write"}, "--threads=4", "--time=8", "--report-interval=1", script, "run")
		sb <- result{out, err}
	}()
	time.Sleep(2 * time.Second)
	begin := time.Now()
	lines := s.mustCctrl("east1", "switch")
	t.Logf("switch under sysbench through the connectors (%.1f s): %v", time.Since(begin).Seconds(), lines)
	r := <-sb
	close(stop)
	<-done
	if r.err != nil {
		t.Fatalf("sysbench through the switch: %v\n%s", r.err, r.out)
	}
	fails := 0
	for _, m := range regexp.MustCompile(`carbide-oltp: thread \d+ failed=(\d+)`).FindAllStringSubmatch(r.out, -1) {
		n, _ := strconv.Atoi(m[1])
		fails += n
	}
	t.Logf("sysbench oltp_read_write through the switch: %s, %d failed transactions (connections closed by the drain)", sysbenchTPS(r.out), fails)
	if last := regexp.MustCompile(`\[ [78]s \] thds: 4 tps: ([\d.]+)`).FindAllStringSubmatch(r.out, -1); len(last) == 0 || last[len(last)-1][1] == "0.00" {
		t.Errorf("no sysbench transactions at the end, after the switch:\n%s", r.out)
	}

	// Nothing of the application's reached east1 after it went read-only.
	var roAt sql.NullString
	s.db("east1").QueryRow("SELECT MIN(event_time) FROM mysql.general_log WHERE argument LIKE 'SET GLOBAL read_only = ON'").Scan(&roAt)
	if !roAt.Valid {
		t.Fatal("east1's general log does not show the switch setting read_only")
	}
	var before, late int
	s.db("east1").QueryRow("SELECT COUNT(*) FROM mysql.general_log WHERE user_host LIKE 'app_user%' AND event_time < ?", roAt.String).Scan(&before)
	if before == 0 {
		t.Fatal("east1's general log shows no application statement before the switch: the check below would see nothing")
	}
	var sample sql.NullString
	s.db("east1").QueryRow("SELECT COUNT(*), MIN(CONCAT(command_type, ' ', LEFT(argument, 60))) FROM mysql.general_log WHERE user_host LIKE 'app_user%' AND event_time >= ?", roAt.String).Scan(&late, &sample)
	if late > 0 {
		t.Errorf("%d application statements or connections reached east1 after it went read-only at %s, e.g. %s", late, roAt.String, sample.String)
		rows, err := s.db("east1").Query(`SELECT g.thread_id, g.event_time, g.command_type, LEFT(g.argument, 80),
			(SELECT MIN(f.event_time) FROM mysql.general_log f WHERE f.thread_id = g.thread_id)
			FROM mysql.general_log g WHERE g.user_host LIKE 'app_user%' AND g.event_time >= ? ORDER BY g.event_time`, roAt.String)
		if err == nil {
			for rows.Next() {
				var id int64
				var at, cmd, arg, first string
				rows.Scan(&id, &at, &cmd, &arg, &first)
				t.Logf("late: thread %d (first seen %s) at %s: %s %s", id, first, at, cmd, arg)
			}
			rows.Close()
		}
	}
	s.exec("east1", "SET GLOBAL general_log = OFF")

	s.sameEverywhere(30*time.Second, eastHosts, "app", "sbtest")
	var rows int64
	s.db("east3").QueryRow("SELECT COUNT(*) FROM app.t WHERE v >= 5000000").Scan(&rows)
	t.Logf("through east3's connector: %d writes acknowledged, %d failed around the switch; %d rows on east3", acked.Load(), failed.Load(), rows)
	if rows != acked.Load() {
		t.Errorf("%d rows, %d acknowledged", rows, acked.Load())
	}

	// Failover: the primary's mariadbd killed, an open connection to it
	// is closed at once, and a new one through the connector is held,
	// then answered by the promoted replica.
	primary := s.status("east1").GetPrimary()
	open, err := s.viaConnector("east1").Conn(context.Background())
	if err != nil || open.PingContext(context.Background()) != nil {
		t.Fatalf("a connection through east1's connector: %v", err)
	}
	defer open.Close()
	s.kill9(primary, "mariadbd")
	killed := time.Now()
	var newPrimary string
	if err := s.viaConnector("east1").QueryRow("SELECT @@hostname").Scan(&newPrimary); err != nil || newPrimary == primary {
		t.Fatalf("a connection through the connector after kill -9 of %s's mariadbd: %q, %v", primary, newPrimary, err)
	}
	t.Logf("failover %s -> %s: first connection through the connector answered %.1f s after the kill", primary, newPrimary, time.Since(killed).Seconds())
	if err := open.PingContext(context.Background()); err == nil {
		t.Errorf("a connection to the failed primary %s is still open through the connector", primary)
	}
}

// sysbenchTPS is sysbench's transactions line, shortened.
func sysbenchTPS(out string) string {
	m := regexp.MustCompile(`transactions:\s+(\d+)\s+\(([\d.]+) per sec`).FindStringSubmatch(out)
	if m == nil {
		return "no transactions line"
	}
	return m[1] + " transactions (" + m[2] + "/s)"
}
