package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestTHLDamage: a torn tail of a replica's THL is cut when its replicator
// starts again, and replication goes on; a flipped byte in the middle
// stops the replicator with the file and offset, and nothing past the
// damage is applied.
func TestTHLDamage(t *testing.T) {
	s := startSandbox(t, oneSite)
	s.exec("east1", "CREATE DATABASE app", "CREATE TABLE app.t (id INT PRIMARY KEY, pad VARCHAR(200))")
	for i := 0; i < 100; i++ {
		s.exec("east1", fmt.Sprintf("INSERT INTO app.t VALUES (%d, REPEAT('p', 150))", i))
	}
	s.sameEverywhere(20*time.Second, eastHosts, "app")
	seg := filepath.Join(s.cfg.Dir, "east2", "continuent", "thl", "east", "thl.data.0000000001")

	// A torn tail: half a record at the end, as a crash mid-write leaves.
	if out, err := s.tool("east2", "continuent", "replicator", "stop"); err != nil {
		t.Fatalf("stop: %v %s", err, out)
	}
	data, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(seg, append(data, data[len(data)-300:len(data)-120]...), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := s.tool("east2", "continuent", "replicator", "start"); err != nil {
		t.Fatalf("start after a torn tail: %v %s", err, out)
	}
	for i := 100; i < 120; i++ {
		s.exec("east1", fmt.Sprintf("INSERT INTO app.t VALUES (%d, 'after')", i))
	}
	s.sameEverywhere(20*time.Second, eastHosts, "app")
	log, _ := os.ReadFile(filepath.Join(s.cfg.Dir, "east2", "continuent", "var", "log", "replicator.log"))
	if !strings.Contains(string(log), "THL repaired on open") {
		t.Errorf("the replicator log does not report the repair:\n%s", log)
	}

	// A flipped byte in the middle.
	if out, err := s.tool("east2", "continuent", "replicator", "stop"); err != nil {
		t.Fatalf("stop: %v %s", err, out)
	}
	for i := 120; i < 130; i++ {
		s.exec("east1", fmt.Sprintf("INSERT INTO app.t VALUES (%d, 'not on east2')", i))
	}
	data, _ = os.ReadFile(seg)
	mid := len(data) / 2
	data[mid] ^= 0xff
	os.WriteFile(seg, data, 0o644)
	if out, err := s.tool("east2", "continuent", "replicator", "start"); err != nil {
		t.Fatalf("start: %v %s", err, out)
	}
	if st := s.field("east2", "state"); st != "OFFLINE:ERROR" {
		t.Fatalf("state on a damaged THL = %s", st)
	}
	pending := s.field("east2", "pendingError")
	t.Logf("pendingError: %s", pending)
	if !strings.Contains(pending, seg) || !strings.Contains(pending, "offset") {
		t.Errorf("pendingError does not name the file and offset: %s", pending)
	}
	var n int
	s.db("east2").QueryRow("SELECT COUNT(*) FROM app.t WHERE id >= 120").Scan(&n)
	if n != 0 {
		t.Errorf("east2 applied %d rows past the damage", n)
	}
	// The operator's way out: reset the THL; the slave fetches it again.
	s.trepctl("east2", "reset", "-thl", "-y")
	s.trepctl("east2", "online")
	s.sameEverywhere(20*time.Second, eastHosts, "app")
	s.trepctl("east2", "wait", "-state", "ONLINE", "-limit", "10")
}
