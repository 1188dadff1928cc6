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

// TestForcedFailoverDropsUnappliedTail: as TestFailoverLaggingCandidate,
// the only candidate east2 (east3 shunned) stored east1's last 50 writes
// but a LOCK TABLES keeps it from applying them when east1's mariadbd
// dies, and the failover is blocked. The operator forces it. east2's THL
// must then describe its database: the 50 it never applied are dropped
// (maximumStoredSeqNo = appliedLastSeqno), the report names them, its new
// writes follow at the next seqno, and east3, which applied all 50, stops
// as diverged when it reads from east2 instead of silently going on with
// rows east2 lacks. The lock going away later adds nothing to east2.
func TestForcedFailoverDropsUnappliedTail(t *testing.T) {
	ini := strings.Replace(oneSite, "[defaults]\n", "[defaults]\nmanager-failover-catchup-timeout=4s\n", 1)
	s := startSandbox(t, ini)
	s.createApp()
	s.mustCctrl("east1", "datasource", "east3", "shun")

	lock, applied, stored := lockedBehind(s)
	ctx := context.Background()
	want := strconv.Itoa(stored)
	testutil.Eventually(t, 10*time.Second, func() error {
		if got := s.field("east3", "maximumStoredSeqNo"); got != want {
			return fmt.Errorf("east3 stored %s, east1 %s", got, want)
		}
		if got := s.field("east3", "appliedLastSeqno"); got != want {
			return fmt.Errorf("east3 applied %s of %s", got, want)
		}
		return nil
	})
	s.kill9("east1", "mariadbd")
	s.waitStatus("east3", 30*time.Second, "a blocked failover", func(r *managerpb.StatusReply) error {
		for _, a := range r.GetAlerts() {
			if strings.Contains(a, "BLOCKED") {
				return nil
			}
		}
		return fmt.Errorf("alerts %v", r.GetAlerts())
	})

	// set force true; failover (the coordinator's own retry may hold the
	// transition a moment).
	var lines []string
	var err error
	testutil.Eventually(t, 60*time.Second, func() error {
		if r := s.status("east3"); r.GetPrimary() == "east2" && r.GetTransition() == "" && dsOf(r, "east1").GetState() == "FAILED" {
			return nil // done by an earlier attempt whose reply was lost
		}
		lines, err = s.cctrl("east3", true, "failover")
		return err
	})
	t.Logf("forced failover: %s", strings.Join(lines, "\n"))
	dropLine := fmt.Sprintf("dropped seqnos %d to %d", applied+1, stored)
	if !strings.Contains(strings.Join(lines, "\n"), dropLine) || !strings.Contains(strings.Join(lines, "\n"), "reprovisioned") {
		t.Errorf("the report does not say %q and that replicas holding them must be reprovisioned", dropLine)
	}
	s.waitState("east2", "ONLINE")
	if maxStored, appl := s.field("east2", "maximumStoredSeqNo"), s.field("east2", "appliedLastSeqno"); maxStored != strconv.Itoa(applied) || appl != maxStored {
		t.Fatalf("the new primary east2: maximumStoredSeqNo %s, appliedLastSeqno %s; want both %d", maxStored, appl, applied)
	}
	if got := s.field("east2", "droppedSeqnos"); !strings.Contains(got, fmt.Sprintf("seqnos %d to %d", applied+1, stored)) {
		t.Errorf("east2's droppedSeqnos %q", got)
	}

	// The lock goes: nothing of the given-up tail reaches east2's database
	// (its applier's last block was rolled back, not left waiting).
	if _, err := lock.ExecContext(ctx, "UNLOCK TABLES"); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, func() error {
		_, err := s.appDB("east2").Exec("INSERT INTO app.t (v) VALUES (1000)")
		return err
	})
	testutil.Eventually(t, 10*time.Second, func() error {
		if got := s.field("east2", "appliedLastSeqno"); got != strconv.Itoa(applied+1) {
			return fmt.Errorf("east2 appliedLastSeqno %s, want %d (its first own transaction)", got, applied+1)
		}
		return nil
	})
	var n, v int
	if err := s.db("east2").QueryRow("SELECT COUNT(*), IFNULL(MAX(v), -1) FROM app.t").Scan(&n, &v); err != nil {
		t.Fatal(err)
	}
	if n != 1 || v != 1000 {
		t.Fatalf("east2 holds %d rows (max v %d); want only its own write: none of the given-up tail", n, v)
	}
	if got := s.field("east2", "maximumStoredSeqNo"); got != strconv.Itoa(applied+1) {
		t.Fatalf("east2 stored up to %s after its first write, want %d", got, applied+1)
	}

	// east3 holds the given-up seqnos: diverged, never silently on.
	testutil.Eventually(t, 20*time.Second, func() error {
		if st, pe := s.field("east3", "state"), s.field("east3", "pendingError"); st != "OFFLINE:ERROR" || !strings.Contains(pe, "diverged at seqno") {
			return fmt.Errorf("east3 is %s (%s), want OFFLINE:ERROR diverged", st, pe)
		}
		return nil
	})
	t.Logf("east3: %s", s.field("east3", "pendingError"))
}
