package e2e

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/carbidedb/carbide/internal/testutil"
)

// TestCausalOrderAcrossStreams: west2 applies east's stream and west's on
// its own. With its cross-site service offline, east1 changes a row;
// west1 gets it and its client then changes that row again. west2 gets
// west1's write first, through its cluster service: it must hold it until
// it has east's (trepctl status says why it waits) — applied the other
// way round, east's older write would land last and west2 would differ
// from every other host without a word.
func TestCausalOrderAcrossStreams(t *testing.T) {
	ini, err := os.ReadFile("../../examples/msaa.ini")
	if err != nil {
		t.Fatal(err)
	}
	s := startSandbox(t, string(ini))
	s.exec("east1", "CREATE DATABASE app", "CREATE TABLE app.t (id INT PRIMARY KEY, v INT)", "INSERT INTO app.t VALUES (1, 0)")
	s.sameEverywhere(30*time.Second, allHosts, "app")

	if out, err := s.tool("west2", "replicator", "mm_trepctl", "-service", "east", "offline"); err != nil {
		t.Fatalf("mm_trepctl offline on west2: %v\n%s", err, out)
	}
	s.exec("east1", "UPDATE app.t SET v = 1 WHERE id = 1")
	testutil.Eventually(t, 20*time.Second, func() error {
		var v int
		if err := s.db("west1").QueryRow("SELECT v FROM app.t WHERE id = 1").Scan(&v); err != nil || v != 1 {
			return fmt.Errorf("west1 has v=%d (%v)", v, err)
		}
		return nil
	})
	s.exec("west1", "UPDATE app.t SET v = v + 10 WHERE id = 1")
	testutil.Eventually(t, 20*time.Second, func() error {
		if w := s.field("west2", "waitingFor"); !strings.Contains(w, "waits for service east") {
			return fmt.Errorf("west2's cluster service shows waitingFor %q", w)
		}
		return nil
	})
	var v int
	if err := s.db("west2").QueryRow("SELECT v FROM app.t WHERE id = 1").Scan(&v); err != nil || v != 0 {
		t.Fatalf("west2 has v=%d (%v) while east's write is not applied there; want 0", v, err)
	}
	if out, err := s.tool("west2", "replicator", "mm_trepctl", "-service", "east", "online"); err != nil {
		t.Fatalf("mm_trepctl online on west2: %v\n%s", err, out)
	}
	got := s.sameEverywhere(30*time.Second, allHosts, "app")
	t.Logf("every host equal: %v", got)
	if err := s.db("west2").QueryRow("SELECT v FROM app.t WHERE id = 1").Scan(&v); err != nil || v != 11 {
		t.Fatalf("west2 has v=%d (%v), want 11", v, err)
	}
	if w := s.field("west2", "waitingFor"); w != "" {
		t.Errorf("west2 still shows waitingFor %q", w)
	}
}
