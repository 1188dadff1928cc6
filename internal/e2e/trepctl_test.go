package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/carbidedb/carbide/internal/testutil"
)

// TestTrepctlCommands drives trepctl as an operator does: heartbeat, flush,
// qs, status -json, bad input, and the guide's "Fixing Replication Errors":
// a conflicting row stops a replica OFFLINE:ERROR (one site: the conflict
// policy is stop) with the seqno and both rows; fixed by hand outside the
// binlog, online -skip-seqno N goes on.
func TestTrepctlCommands(t *testing.T) {
	s := startSandbox(t, oneSite)
	s.exec("east1", "CREATE DATABASE app", "CREATE TABLE app.t (id INT PRIMARY KEY, v VARCHAR(10))")
	s.sameEverywhere(20*time.Second, eastHosts, "app")

	s.trepctl("east1", "heartbeat", "-name", "probe1")
	testutil.Eventually(t, 10*time.Second, func() error {
		var name string
		if err := s.db("east2").QueryRow("SELECT name FROM tungsten_east.heartbeat WHERE id = 1").Scan(&name); err != nil || name != "probe1" {
			return fmt.Errorf("heartbeat on east2: %q %v", name, err)
		}
		return nil
	})
	out := s.trepctl("east1", "flush", "-limit", "10")
	if want := "Master log is synchronized with database at log sequence number: " + s.field("east1", "maximumStoredSeqNo"); !strings.Contains(out, want) {
		t.Errorf("flush printed %q, want %q", out, want)
	}
	if qs := s.trepctl("east2", "qs"); !strings.HasPrefix(qs, "State: ONLINE Seqno: ") {
		t.Errorf("qs = %q", qs)
	}
	var st map[string]string
	if err := json.Unmarshal([]byte(s.trepctl("east2", "status", "-json")), &st); err != nil || st["role"] != "slave" || st["masterConnectUri"] != "thl://east1:2112/" {
		t.Errorf("status -json: %v %v", st, err)
	}
	if out, err := s.tool("east2", "continuent", "trepctl", "frob"); err == nil || !strings.Contains(out, `unknown command "frob"`) {
		t.Errorf("trepctl frob: %v %s", err, out)
	}
	if out, err := s.tool("east2", "continuent", "trepctl", "heartbeat"); err == nil || !strings.Contains(out, "heartbeat runs on the master") {
		t.Errorf("heartbeat on a slave: %v %s", err, out)
	}
	if out, err := s.tool("east2", "continuent", "trepctl", "setrole", "-role", "master"); err == nil || !strings.Contains(out, "needs it OFFLINE:NORMAL") {
		t.Errorf("setrole while online: %v %s", err, out)
	}

	// A row only east3 has (written outside the binlog) conflicts with the
	// master's insert of the same key.
	s.exec("east3", "SET SESSION sql_log_bin=0; INSERT INTO app.t VALUES (7, 'stray')")
	s.exec("east1", "INSERT INTO app.t VALUES (6, 'six')", "INSERT INTO app.t VALUES (7, 'seven')", "INSERT INTO app.t VALUES (8, 'eight')")
	s.trepctl("east3", "wait", "-state", "OFFLINE:ERROR", "-limit", "20")
	seqno := s.field("east3", "pendingErrorSeqno")
	msg := s.field("east3", "pendingExceptionMessage")
	if !strings.Contains(msg, `conflict on app.t id=7: the INSERT from east of {"id":7,"v":"seven"} finds its key taken: this database holds {"id":7,"v":"stray"}`) {
		t.Errorf("pendingExceptionMessage = %s", msg)
	}
	// The transactions before the failing one are applied, none after.
	var n int
	s.db("east3").QueryRow("SELECT COUNT(*) FROM app.t WHERE id IN (6, 8)").Scan(&n)
	if n != 1 {
		t.Errorf("east3 has %d of rows 6 and 8, want only 6", n)
	}
	// Fix the data by hand, outside the binlog, and skip the transaction.
	s.exec("east3", "SET SESSION sql_log_bin=0; UPDATE app.t SET v = 'seven' WHERE id = 7")
	s.trepctl("east3", "online", "-skip-seqno", seqno)
	s.sameEverywhere(20*time.Second, eastHosts, "app")
	s.trepctl("east3", "wait", "-state", "ONLINE", "-limit", "10")
}
