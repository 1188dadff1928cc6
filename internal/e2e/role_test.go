package e2e

import (
	"fmt"
	"strconv"
	"testing"
	"time"
)

// TestManualSwitchWithSetrole moves the master role from east1 to east2
// by hand (MAINTENANCE, offline, setrole, online), writes on the new master, and
// checks every host converges; the old master does not re-apply its own
// writes, and the new master starts a new epoch after its last seqno.
func TestManualSwitchWithSetrole(t *testing.T) {
	s := startSandbox(t, oneSite)
	s.exec("east1", "CREATE DATABASE app", "CREATE TABLE app.t (id INT PRIMARY KEY AUTO_INCREMENT, v INT)")
	for i := 0; i < 20; i++ {
		s.exec("east1", fmt.Sprintf("INSERT INTO app.t (v) VALUES (%d)", i))
	}
	s.sameEverywhere(20*time.Second, eastHosts, "app")
	last := s.field("east1", "maximumStoredSeqNo")
	// By hand, the managers must not step in (under AUTOMATIC they turn a
	// master replicator on a host that is not the primary back to a slave).
	s.mustCctrl("east1", "set", "policy", "maintenance")
	for _, h := range eastHosts {
		s.trepctl(h, "offline")
	}
	s.trepctl("east2", "setrole", "-role", "master")
	s.trepctl("east1", "setrole", "-role", "slave", "-uri", "thl://east2:2112/")
	s.trepctl("east3", "setrole", "-role", "slave", "-uri", "thl://east2:2112/")
	for _, h := range []string{"east2", "east1", "east3"} {
		s.trepctl(h, "online")
	}
	for i := 0; i < 20; i++ {
		s.exec("east2", fmt.Sprintf("INSERT INTO app.t (v) VALUES (%d)", 100+i))
	}
	s.exec("east2", "UPDATE app.t SET v = v + 1 WHERE v < 10")
	s.sameEverywhere(20*time.Second, eastHosts, "app")
	for _, h := range eastHosts {
		s.waitState(h, "ONLINE")
	}
	if got := s.field("east1", "masterConnectUri"); got != "thl://east2:2112/" {
		t.Errorf("east1 masterConnectUri = %s", got)
	}
	n, _ := strconv.Atoi(last)
	if got := s.field("east2", "latestEpochNumber"); got != strconv.Itoa(n+1) {
		t.Errorf("new master's epoch = %s, want %d (its first seqno)", got, n+1)
	}
	var rows int
	s.db("east1").QueryRow("SELECT COUNT(*) FROM app.t").Scan(&rows)
	if rows != 40 {
		t.Errorf("east1 has %d rows, want 40", rows)
	}
}
