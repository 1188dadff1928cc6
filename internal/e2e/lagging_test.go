package e2e

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

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

	ctx := context.Background()
	lock, err := s.db("east2").Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
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
	applied, _ := strconv.Atoi(s.field("east2", "appliedLastSeqno"))
	stored, _ := strconv.Atoi(want)
	if applied >= stored {
		t.Fatalf("east2 applied %d of %d stored despite the lock", applied, stored)
	}
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
	var n int
	if err := s.db("east2").QueryRow("SELECT COUNT(*) FROM app.t").Scan(&n); err != nil || n != 50 {
		t.Fatalf("the new primary east2 holds %d of the 50 acknowledged rows (%v)", n, err)
	}
	testutil.Eventually(t, 10*time.Second, func() error {
		_, err := s.appDB("east2").Exec("INSERT INTO app.t (v) VALUES (1000)")
		return err
	})
}
