package multitrepctl

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/carbidedb/carbide/internal/sandbox"
	"github.com/carbidedb/carbide/internal/testutil"
)

// TestSandboxByService brings up the guide's two sites (examples/msaa.ini)
// with real MariaDB and replicators, writes on both masters, and waits
// until multi_trepctl --by-service, run through east1's wrapper, shows the
// twelve services ONLINE with one appliedlastseqno per service; heartbeat
// and run qs work on the real replicators; mm_multi_trepctl of west2's
// cross-site install shows the same as multi_trepctl of east1.
func TestSandboxByService(t *testing.T) {
	testutil.RequireDB(t)
	if testing.Short() {
		t.Skip("short mode: brings up a six-host sandbox")
	}
	dir := t.TempDir()
	testutil.Claim(t, dir)
	release := filepath.Join(dir, "release")
	// Only the programs the test needs: the sandbox starts the agents the
	// release has, and multi_trepctl needs only replicators.
	build := exec.Command("go", "build", "-o", filepath.Join(release, "bin")+"/",
		"github.com/carbidedb/carbide/cmd/replicator", "github.com/carbidedb/carbide/cmd/trepctl", "github.com/carbidedb/carbide/cmd/multi_trepctl")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the programs: %v\n%s", err, out)
	}
	ini, err := filepath.Abs("../../examples/msaa.ini")
	if err != nil {
		t.Fatal(err)
	}
	net := 100 + os.Getpid()%40 // e2e uses 150-189, internal/sandbox 200-249
	var progress strings.Builder
	cfg := sandbox.Config{Dir: filepath.Join(dir, "sb"), INI: ini, Staging: release, Out: &progress, Net: net, StopTimeout: 20 * time.Second}
	t.Cleanup(func() {
		if err := sandbox.Down(context.Background(), cfg); err != nil {
			t.Errorf("sandbox down: %v", err)
		}
		if t.Failed() {
			t.Logf("sandbox output:\n%s", progress.String())
		}
	})
	if err := sandbox.Up(context.Background(), cfg); err != nil {
		t.Fatalf("sandbox up: %v\n%s", err, progress.String())
	}
	wrapper := func(host, install, program string) string {
		return filepath.Join(cfg.Dir, host, install, "bin", program)
	}
	multi := func(program string, args ...string) (string, error) {
		cmd := exec.Command(program, args...)
		cmd.Env = append(os.Environ(), "CARBIDE_HOME=")
		out, err := cmd.Output()
		return string(out), err
	}
	east1 := wrapper("east1", "continuent", "multi_trepctl")

	// settled waits until the twelve rows are ONLINE, each service at one
	// seqno above floor, and returns the seqnos and the last output.
	settled := func(floor map[string]int64) (map[string]int64, string) {
		var seqnos map[string]int64
		var last string
		testutil.Eventually(t, 30*time.Second, func() error {
			out, err := multi(east1, "--by-service")
			last = out
			if err != nil {
				return fmt.Errorf("multi_trepctl: %v\n%s", err, out)
			}
			rows := parseInfo(out)
			if len(rows) != 13 {
				return fmt.Errorf("want a header and 12 rows:\n%s", out)
			}
			seqnos = map[string]int64{}
			for _, r := range rows[1:] {
				host, svc, state := r[0], r[1], r[3]
				n, err := strconv.ParseInt(r[4], 10, 64)
				if state != "ONLINE" || err != nil {
					return fmt.Errorf("%s:%s is %s at %q", host, svc, state, r[4])
				}
				if have, ok := seqnos[svc]; ok && have != n {
					return fmt.Errorf("service %s is at %d and %d:\n%s", svc, have, n, out)
				}
				seqnos[svc] = n
			}
			for svc, min := range floor {
				if seqnos[svc] <= min {
					return fmt.Errorf("service %s is still at %d", svc, seqnos[svc])
				}
			}
			return nil
		})
		return seqnos, last
	}
	before, _ := settled(nil)

	exec := func(addr string, stmts ...string) {
		mc := mysql.NewConfig()
		mc.User, mc.Passwd, mc.Net, mc.Addr, mc.Timeout = "tungsten", "secret", "tcp", addr, 5*time.Second
		conn, err := mysql.NewConnector(mc)
		if err != nil {
			t.Fatal(err)
		}
		db := sql.OpenDB(conn)
		defer db.Close()
		for _, q := range stmts {
			if _, err := db.Exec(q); err != nil {
				t.Fatalf("%s: %s: %v", addr, q, err)
			}
		}
	}
	exec(fmt.Sprintf("127.%d.1.1:13306", net), "CREATE DATABASE mt_east", "CREATE TABLE mt_east.t (id INT PRIMARY KEY)", "INSERT INTO mt_east.t VALUES (1)")
	exec(fmt.Sprintf("127.%d.2.1:13306", net), "CREATE DATABASE mt_west", "CREATE TABLE mt_west.t (id INT PRIMARY KEY)", "INSERT INTO mt_west.t VALUES (1)")
	after, out := settled(before)
	t.Logf("seqnos before the writes %v, after %v; multi_trepctl --by-service:\n%s", before, after, out)

	rows := parseInfo(out)
	var order []string
	for _, r := range rows[1:] {
		order = append(order, r[0]+":"+r[1]+":"+r[2])
	}
	want := []string{
		"east1:east:master", "east2:east:slave", "east3:east:slave", "west1:east:slave", "west2:east:slave", "west3:east:slave",
		"west1:west:master", "east1:west:slave", "east2:west:slave", "east3:west:slave", "west2:west:slave", "west3:west:slave",
	}
	if !slices.Equal(order, want) {
		t.Errorf("--by-service order %v, want %v", order, want)
	}
	// A heartbeat through both masters reaches every replica.
	hb, err := multi(east1, "heartbeat", "-name", "mt")
	if err != nil || strings.Count(hb, "| ok ") != 2 {
		t.Errorf("heartbeat (%v):\n%s", err, hb)
	}
	after, _ = settled(after)
	if qs, err := multi(east1, "--services", "west", "run", "qs"); err != nil || strings.Count(qs, "State: ONLINE Seqno: "+strconv.FormatInt(after["west"], 10)+" ") != 6 {
		t.Errorf("run qs (%v):\n%s", err, qs)
	}
	// Both wrappers show everything, the same.
	args := []string{"--by-service", "--fields", "host,servicename,role,state,appliedlastseqno"}
	a, errA := multi(east1, args...)
	b, errB := multi(wrapper("west2", "replicator", "mm_multi_trepctl"), args...)
	if errA != nil || errB != nil || a != b {
		t.Errorf("multi_trepctl on east1 (%v):\n%s\nmm_multi_trepctl on west2 (%v):\n%s", errA, a, errB, b)
	}
}

// parseInfo splits the info layout into cells.
func parseInfo(out string) [][]string {
	var rows [][]string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		l = strings.TrimSpace(l)
		if !strings.HasPrefix(l, "|") {
			continue
		}
		var cells []string
		for _, c := range strings.Split(strings.Trim(l, "|"), "|") {
			cells = append(cells, strings.TrimSpace(c))
		}
		rows = append(rows, cells)
	}
	return rows
}
