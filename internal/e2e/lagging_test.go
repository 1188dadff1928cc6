package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/carbidedb/carbide/internal/testutil"
	"github.com/carbidedb/carbide/rpc/gen/managerpb"
)

// TestFailoverLaggingCandidate: the only candidate (east3 shunned) has
// stored the primary's last 50 acknowledged writes but cannot apply them
// (a session holds LOCK TABLES app.t WRITE on it) when the primary's
// mariadbd dies. The failover must not promote it while it lacks them:
// past manager-failover-catchup-timeout the site stays without a
// writable primary and says which seqnos block it; once the lock goes,
// the failover completes and the new primary holds all 50.
func TestFailoverLaggingCandidate(t *testing.T) {
	ini := strings.Replace(oneSite, "[defaults]\n", "[defaults]\nmanager-failover-catchup-timeout=4s\n", 1)
	s := startSandbox(t, ini)
	s.createApp()
	s.mustCctrl("east1", "datasource", "east3", "shun")

	lock, applied, stored := lockedBehind(s)
	ctx := context.Background()
	s.kill9("east1", "mariadbd")

	// Blocked: no promotion, no writable host, an alert naming the seqnos.
	blocked := s.waitStatus("east3", 30*time.Second, "a blocked failover", func(r *managerpb.StatusReply) error {
		for _, a := range r.GetAlerts() {
			if strings.Contains(a, "BLOCKED") {
				return nil
			}
		}
		return fmt.Errorf("alerts %v", r.GetAlerts())
	})
	for _, a := range blocked.GetAlerts() {
		if strings.Contains(a, "BLOCKED") {
			t.Logf("alert: %s", a)
			if !strings.Contains(a, fmt.Sprintf("seqnos %d to %d", applied+1, stored)) {
				t.Errorf("the alert does not name seqnos %d to %d: %s", applied+1, stored, a)
			}
		}
	}
	if w := s.writable([]string{"east2", "east3"}); len(w) != 0 {
		t.Fatalf("writable while the candidate lacks seqnos %d to %d: %v", applied+1, stored, w)
	}
	if r := s.status("east3"); r.GetPrimary() == "east2" && dsOf(r, "east2").GetState() == "ONLINE" && r.GetTransition() == "" {
		t.Fatalf("east2 promoted while it lacks seqnos %d to %d", applied+1, stored)
	}

	// The lock goes: the failover completes with every acknowledged row.
	if _, err := lock.ExecContext(ctx, "UNLOCK TABLES"); err != nil {
		t.Fatal(err)
	}
	s.waitStatus("east3", 60*time.Second, "failover to east2", func(r *managerpb.StatusReply) error {
		if r.GetPrimary() != "east2" || r.GetTransition() != "" || dsOf(r, "east1").GetState() != "FAILED" {
			return fmt.Errorf("primary %s, transition %q", r.GetPrimary(), r.GetTransition())
		}
		return nil
	})
	s.waitStatus("east3", 10*time.Second, "the blocked failover's alert cleared", func(r *managerpb.StatusReply) error {
		if len(r.GetActiveAlerts()) > 0 {
			return fmt.Errorf("active alerts after the failover completed: %v", r.GetActiveAlerts())
		}
		return nil
	})
	var n int
	if err := s.db("east2").QueryRow("SELECT COUNT(*) FROM app.t").Scan(&n); err != nil || n != 50 {
		t.Fatalf("the new primary east2 holds %d of the 50 acknowledged rows (%v)", n, err)
	}
	testutil.Eventually(t, 10*time.Second, func() error {
		_, err := s.appDB("east2").Exec("INSERT INTO app.t (v) VALUES (1000)")
		return err
	})
}

// TestFailoverKillsWritesOnOldPrimary: a write statement that began on
// the primary before a failover (here one that runs 8 s) must not commit
// there after the new primary takes writes: the failover kills the old
// primary's application sessions before it sets read_only (which would
// wait for the statement) and promotes.
func TestFailoverKillsWritesOnOldPrimary(t *testing.T) {
	s := startSandbox(t, oneSite)
	s.createApp()
	mc := mysql.NewConfig()
	mc.User, mc.Passwd, mc.Net, mc.Addr = "app_user", "secret", "tcp", s.addr("east1")+":13306"
	mc.Timeout, mc.ReadTimeout = 2*time.Second, 60*time.Second
	conn, err := mysql.NewConnector(mc)
	if err != nil {
		t.Fatal(err)
	}
	app := sql.OpenDB(conn)
	defer app.Close()
	long := make(chan error, 1)
	go func() {
		_, err := app.Exec("INSERT INTO app.t (v) SELECT 777 FROM (SELECT SLEEP(8)) AS s")
		long <- err
	}()
	running := func() (int, error) {
		var n int
		err := s.db("east1").QueryRow("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE 'INSERT INTO app.t (v) SELECT 777%'").Scan(&n)
		return n, err
	}
	testutil.Eventually(t, 10*time.Second, func() error {
		if n, err := running(); err != nil || n == 0 {
			return fmt.Errorf("the long write has not begun on east1 (%d, %v)", n, err)
		}
		return nil
	})
	begin := time.Now()
	lines, err := s.cctrl("east2", true, "failover")
	if err != nil {
		t.Fatalf("failover: %v", err)
	}
	t.Logf("failover took %v: %s", time.Since(begin).Round(time.Millisecond), strings.Join(lines, "; "))
	select {
	case err := <-long:
		if err == nil {
			t.Fatal("the write that began on the old primary committed")
		}
		t.Logf("the old primary's write ended with: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("the old primary's write still runs 10 s after the failover")
	}
	// Its session is gone (killed, rolled back) before the rows are counted.
	testutil.Eventually(t, 10*time.Second, func() error {
		if n, err := running(); err != nil || n != 0 {
			return fmt.Errorf("the old primary's write still runs (%d, %v)", n, err)
		}
		return nil
	})
	var n int
	if err := s.db("east1").QueryRow("SELECT COUNT(*) FROM app.t WHERE v = 777").Scan(&n); err != nil || n != 0 {
		t.Fatalf("the old primary holds %d rows of the write begun before the failover (%v)", n, err)
	}
	if w := s.writable(eastHosts); len(w) != 1 || w[0] == "east1" {
		t.Fatalf("writable after the failover: %v", w)
	}
}

// TestFailoverPrefersTheCompleteReplica: the lagging-candidate case with
// east3 available. east2 stored the last 50 acknowledged writes but
// cannot apply them (LOCK TABLES), east3 applied them: the failover
// promotes east3 at once, with all 50; east2 applies them once the lock
// goes, and all three hosts end equal.
func TestFailoverPrefersTheCompleteReplica(t *testing.T) {
	s := startSandbox(t, oneSite)
	s.createApp()
	lock, _, stored := lockedBehind(s)
	ctx := context.Background()
	want := strconv.Itoa(stored)
	testutil.Eventually(t, 10*time.Second, func() error {
		if got := s.field("east3", "appliedLastSeqno"); got != want {
			return fmt.Errorf("east3 applied %s of %s", got, want)
		}
		if got := s.field("east2", "maximumStoredSeqNo"); got != want {
			return fmt.Errorf("east2 stored %s of %s", got, want)
		}
		return nil
	})
	s.kill9("east1", "mariadbd")
	begin := time.Now()
	s.waitStatus("east3", 30*time.Second, "failover to east3", func(r *managerpb.StatusReply) error {
		if r.GetPrimary() != "east3" || r.GetTransition() != "" {
			return fmt.Errorf("primary %s, transition %q, alerts %v", r.GetPrimary(), r.GetTransition(), r.GetActiveAlerts())
		}
		return nil
	})
	t.Logf("east3 promoted %v after the kill", time.Since(begin).Round(time.Millisecond))
	var n int
	if err := s.db("east3").QueryRow("SELECT COUNT(*) FROM app.t").Scan(&n); err != nil || n != 50 {
		t.Fatalf("the new primary east3 holds %d of the 50 acknowledged rows (%v)", n, err)
	}
	if _, err := lock.ExecContext(ctx, "UNLOCK TABLES"); err != nil {
		t.Fatal(err)
	}
	s.sameEverywhere(30*time.Second, []string{"east2", "east3"}, "app")
}

// lockedBehind holds LOCK TABLES app.t WRITE on east2 (the returned
// session, closed when the test ends), writes 50 rows on east1, and waits
// until east2 stored them without applying them: what it applied and
// east1's last stored seqno.
func lockedBehind(s *site) (lock *sql.Conn, applied, stored int) {
	t := s.t
	t.Helper()
	ctx := context.Background()
	lock, err := s.db("east2").Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lock.Close() })
	if _, err := lock.ExecContext(ctx, "LOCK TABLES app.t WRITE"); err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		if _, err := s.db("east1").Exec("INSERT INTO app.t (v) VALUES (?)", i); err != nil {
			t.Fatal(err)
		}
	}
	want := s.field("east1", "maximumStoredSeqNo")
	testutil.Eventually(t, 10*time.Second, func() error {
		if got := s.field("east2", "maximumStoredSeqNo"); got != want {
			return fmt.Errorf("east2 stored %s, east1 %s", got, want)
		}
		return nil
	})
	applied, _ = strconv.Atoi(s.field("east2", "appliedLastSeqno"))
	stored, _ = strconv.Atoi(want)
	if applied >= stored {
		t.Fatalf("east2 applied %d of %d stored despite the lock", applied, stored)
	}
	return lock, applied, stored
}
