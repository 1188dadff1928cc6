package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/carbidedb/carbide/internal/daemon"
	"github.com/carbidedb/carbide/internal/testutil"
	"github.com/carbidedb/carbide/replicator/agent"
)

var eastHosts = []string{"east1", "east2", "east3"}

// allTypes is a table holding every column type the replicator must carry.
const allTypes = `CREATE TABLE app.types (
  id INT PRIMARY KEY,
  ti TINYINT, tiu TINYINT UNSIGNED, si SMALLINT, siu SMALLINT UNSIGNED, mi MEDIUMINT, miu MEDIUMINT UNSIGNED,
  i INT, iu INT UNSIGNED, bi BIGINT, biu BIGINT UNSIGNED,
  d DECIMAL(40,10), f FLOAT, db DOUBLE,
  dt DATE, tm TIME(6), dtm DATETIME(6), ts TIMESTAMP(6) NULL, y YEAR,
  c CHAR(10) CHARACTER SET utf8mb4, vc VARCHAR(100) CHARACTER SET utf8mb4, tx TEXT CHARACTER SET utf8mb4,
  l1 VARCHAR(20) CHARACTER SET latin1,
  bn BINARY(4), vb VARBINARY(20), bl BLOB,
  e ENUM('red','green','blue'), st SET('a','b','c'), bt BIT(64), j JSON,
  g INT AS (i + 1) VIRTUAL, gs VARCHAR(120) AS (CONCAT(vc, '!')) STORED,
  n INT NULL
)`

var typeRows = []string{
	`INSERT INTO app.types (id, ti, tiu, si, siu, mi, miu, i, iu, bi, biu, d, f, db, dt, tm, dtm, ts, y, c, vc, tx, l1, bn, vb, bl, e, st, bt, j) VALUES
	 (1, -128, 255, -32768, 65535, -8388608, 16777215, -2147483648, 4294967295, -9223372036854775808, 18446744073709551615,
	  -123456789012345678901234567890.0123456789, 3.25, -2.5e300, '2024-02-29', '-838:59:59.000000', '2024-02-29 23:59:59.123456', '2038-01-19 03:14:07.999999', 2155,
	  'chär', 'héllo 🎉 wörld', REPEAT('long text ', 200), 'café', 0x00FF0001, 0x0001020300, 0xDEADBEEF00, 'blue', 'a,c', b'1111111111111111111111111111111111111111111111111111111111111111', '{"a": [1, 2, {"b": null}], "c": "d"}')`,
	`INSERT INTO app.types (id, dt, dtm, ts, e, st, bt) VALUES (2, '0000-00-00', '0000-00-00 00:00:00', NULL, 'red', '', 0)`,
	`INSERT INTO app.types (id) VALUES (3)`,
	`UPDATE app.types SET vc = 'updated ✓', d = 0.5, l1 = 'naïve', j = '[]' WHERE id = 1`,
	`DELETE FROM app.types WHERE id = 3`,
}

// TestIntraSiteReplication: writes on the master reach both replicas within
// a second, every column type and DDL round-trips, and sysbench's write
// workload ends with equal checksums on all three hosts.
func TestIntraSiteReplication(t *testing.T) {
	s := startSandbox(t, oneSite)
	s.exec("east1", "CREATE DATABASE app", "CREATE TABLE app.ping (id INT PRIMARY KEY, at DATETIME(6))")
	begin := time.Now()
	s.exec("east1", "INSERT INTO app.ping VALUES (1, NOW(6))")
	for _, h := range eastHosts[1:] {
		db := s.db(h)
		testutil.Eventually(t, 5*time.Second, func() error {
			var n int
			if err := db.QueryRow("SELECT COUNT(*) FROM app.ping").Scan(&n); err != nil || n != 1 {
				return fmt.Errorf("%s: %d rows, %v", h, n, err)
			}
			return nil
		})
	}
	if d := time.Since(begin); d > time.Second {
		t.Errorf("a write on east1 took %s to reach both replicas; want under 1 s", d)
	} else {
		t.Logf("a write on east1 reached east2 and east3 in %s", d.Round(time.Millisecond))
	}

	s.exec("east1", allTypes)
	s.exec("east1", typeRows...)
	// DDL: add a column, create and drop a table, in the stream.
	s.exec("east1",
		"ALTER TABLE app.types ADD COLUMN added VARCHAR(10) DEFAULT 'x'",
		"UPDATE app.types SET added = 'y' WHERE id = 1",
		"CREATE TABLE app.tmp (id INT PRIMARY KEY)", "INSERT INTO app.tmp VALUES (1)", "DROP TABLE app.tmp",
		"CREATE DATABASE sbtest")
	runSysbench(t, s.addr("east1"), 4, 3*time.Second)
	sums := s.sameEverywhere(30*time.Second, eastHosts, "app", "sbtest")
	if _, ok := sums["app.types"]; !ok || len(sums) < 4 {
		t.Fatalf("checksums = %v", sums)
	}
	// The replicas' copy of the types table, column by column.
	want := rowDump(t, s, "east1")
	for _, h := range eastHosts[1:] {
		if got := rowDump(t, s, h); got != want {
			t.Errorf("%s app.types:\n%s\nwant (east1):\n%s", h, got, want)
		}
	}
	for _, h := range eastHosts {
		s.waitState(h, "ONLINE")
	}
}

func rowDump(t *testing.T, s *site, host string) string {
	t.Helper()
	var out string
	q := `SELECT GROUP_CONCAT(CONCAT_WS('|', id, ti, tiu, si, siu, mi, miu, i, iu, bi, biu, d, f, db, dt, tm, dtm, IFNULL(ts, 'NULL'), y, c, vc, MD5(tx), HEX(l1), HEX(bn), HEX(vb), HEX(bl), e, st, HEX(bt), j, g, gs, IFNULL(n, 'NULL'), added) ORDER BY id SEPARATOR '\n') FROM app.types`
	if err := s.db(host).QueryRow(q).Scan(&out); err != nil {
		t.Fatalf("%s: %v", host, err)
	}
	return out
}

// runSysbench prepares and runs oltp_write_only against addr.
func runSysbench(t *testing.T, addr string, threads int, d time.Duration) {
	t.Helper()
	testutil.RequireSysbench(t)
	common := []string{"oltp_write_only", "--mysql-host=" + addr, "--mysql-port=13306", "--mysql-user=tungsten", "--mysql-password=secret",
		"--mysql-db=sbtest", "--tables=2", "--table-size=2000", "--mysql-ignore-errors=1062,1213"}
	if out, err := exec.Command("sysbench", append(common, "prepare")...).CombinedOutput(); err != nil {
		t.Fatalf("sysbench prepare: %v\n%s", err, out)
	}
	out, err := exec.Command("sysbench", append(common, "--threads="+strconv.Itoa(threads), "--time="+strconv.Itoa(int(d.Seconds())), "run")...).CombinedOutput()
	if err != nil {
		t.Fatalf("sysbench run: %v\n%s", err, out)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, "transactions:") {
			t.Logf("sysbench:%s", l)
		}
	}
}

// TestSlaveReplicatorKilled kills east2's replicator with SIGKILL 20 times
// under a write load, restarting it each time: no write is lost or
// applied twice (a duplicate would stop it with a duplicate-key error).
func TestSlaveReplicatorKilled(t *testing.T) {
	s := startSandbox(t, oneSite)
	s.exec("east1", "CREATE DATABASE app", "CREATE TABLE app.load (id INT PRIMARY KEY, n INT NOT NULL, pad VARCHAR(100))")
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var writes atomic.Int64
	db := s.db("east1")
	for w := 0; w < 3; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				id := w*1_000_000 + i
				if _, err := db.ExecContext(ctx, "INSERT INTO app.load VALUES (?, 0, REPEAT('x', 80))", id); err != nil {
					continue
				}
				if i%3 == 0 {
					db.ExecContext(ctx, "UPDATE app.load SET n = n + 1 WHERE id = ?", w*1_000_000+rand.IntN(i+1))
				}
				if i%7 == 0 {
					db.ExecContext(ctx, "DELETE FROM app.load WHERE id = ?", w*1_000_000+rand.IntN(i+1))
				}
				writes.Add(1)
			}
		}()
	}
	home := filepath.Join(s.cfg.Dir, "east2", "continuent")
	spec := agent.Spec(home, nil)
	kills := 20
	if os.Getenv("CARBIDE_CHAOS") != "" {
		kills = 200
	}
	for k := 0; k < kills; k++ {
		time.Sleep(time.Duration(100+rand.IntN(200)) * time.Millisecond)
		pid, ok := daemon.Running(spec)
		if !ok {
			t.Fatalf("kill %d: east2's replicator is not running", k)
		}
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		testutil.Eventually(t, 10*time.Second, func() error {
			if _, ok := daemon.Running(spec); ok {
				return fmt.Errorf("pid %d still alive", pid)
			}
			return nil
		})
		if out, err := s.tool("east2", "continuent", "replicator", "start"); err != nil {
			t.Fatalf("restart %d: %v\n%s", k, err, out)
		}
	}
	cancel()
	wg.Wait()
	t.Logf("%d writes during %d kills", writes.Load(), kills)
	s.sameEverywhere(60*time.Second, eastHosts, "app")
	for _, h := range eastHosts {
		s.waitState(h, "ONLINE")
	}
	var n1, n2 int
	s.db("east1").QueryRow("SELECT COUNT(*) FROM app.load").Scan(&n1)
	s.db("east2").QueryRow("SELECT COUNT(*) FROM app.load").Scan(&n2)
	if n1 != n2 || n1 == 0 {
		t.Fatalf("rows: east1 %d, east2 %d", n1, n2)
	}
}

// TestResetSlave: trepctl offline, trepctl -service east reset -all -y,
// trepctl online on a slave whose master was not reset: it forgets its
// THL and tracking, but continues after where it was (its reset mark),
// applying nothing twice. Once its master is reset too (a new history),
// the slave starts from the new history's first transaction by itself.
func TestResetSlave(t *testing.T) {
	s := startSandbox(t, oneSite)
	s.exec("east1", "CREATE DATABASE app", "CREATE TABLE app.t (id INT PRIMARY KEY, v INT)")
	for i := 0; i < 50; i++ {
		s.exec("east1", fmt.Sprintf("INSERT INTO app.t VALUES (%d, %d)", i, i*i))
	}
	s.sameEverywhere(20*time.Second, eastHosts, "app")
	before := s.field("east3", "appliedLastSeqno")
	s.trepctl("east3", "offline")
	s.trepctl("east3", "-service", "east", "reset", "-all", "-y")
	if got := s.field("east3", "maximumStoredSeqNo"); got != "-1" {
		t.Fatalf("after reset maximumStoredSeqNo = %s", got)
	}
	s.exec("east1", "INSERT INTO app.t VALUES (100, 1)")
	s.trepctl("east3", "online")
	s.sameEverywhere(20*time.Second, eastHosts, "app")
	// A slave may apply before it reports ONLINE (its connection is
	// noticed every 20 ms).
	s.waitState("east3", "ONLINE")
	want, _ := strconv.Atoi(before)
	if got := s.field("east3", "minimumStoredSeqNo"); got != strconv.Itoa(want+1) {
		t.Errorf("east3 fetched from seqno %s after its reset; it had applied %s", got, before)
	}

	// The master starts a new history: the slaves, reset, follow it from
	// its first transaction.
	s.mustCctrl("east1", "set", "policy", "maintenance")
	for _, h := range eastHosts {
		s.trepctl(h, "offline")
		s.trepctl(h, "-service", "east", "reset", "-all", "-y")
		s.trepctl(h, "online")
	}
	s.exec("east1", "INSERT INTO app.t VALUES (101, 1)")
	s.sameEverywhere(20*time.Second, eastHosts, "app")
	for _, h := range eastHosts[1:] {
		s.waitState(h, "ONLINE")
		if got := s.field(h, "minimumStoredSeqNo"); got != "0" {
			t.Errorf("%s follows the new history from seqno %s, want 0", h, got)
		}
	}
}

// waitState waits (10 s) until host's cluster replicator is in state.
func (s *site) waitState(host, state string) {
	s.t.Helper()
	s.waitRole(host, "", state, 10*time.Second)
}

// waitRole waits (up to within) until host's cluster replicator is in
// state with role (any role when "").
func (s *site) waitRole(host, role, state string, within time.Duration) {
	s.t.Helper()
	testutil.Eventually(s.t, within, func() error {
		if st, r := s.field(host, "state"), s.field(host, "role"); st != state || role != "" && r != role {
			return fmt.Errorf("%s is %s %s, not %s %s: %s", host, st, r, state, role, s.field(host, "pendingError"))
		}
		return nil
	})
}
