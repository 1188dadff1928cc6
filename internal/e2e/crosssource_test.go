package e2e

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/carbidedb/carbide/internal/testutil"
)

// xfield reads one field of a host's cross-site replicator status.
func (s *site) xfield(host, service, name string) string {
	s.t.Helper()
	out, err := s.tool(host, "replicator", "mm_trepctl", "-service", service, "status")
	if err != nil {
		s.t.Fatalf("%s: mm_trepctl status: %v\n%s", host, err, out)
	}
	for _, l := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == name {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// TestCrossSiteLeavesStalledSource: a cross-site replicator reads the
// origin from a replica the origin's managers report healthy; when that
// replica's replicator goes offline (its THL stops growing), the
// cross-site replicator moves to another source by itself and west keeps
// receiving east's writes.
func TestCrossSiteLeavesStalledSource(t *testing.T) {
	ini, err := os.ReadFile("../../examples/msaa.ini")
	if err != nil {
		t.Fatal(err)
	}
	s := startSandbox(t, string(ini))
	s.exec("east1", "CREATE DATABASE app", "CREATE TABLE app.t (id INT PRIMARY KEY)")
	s.sameEverywhere(30*time.Second, allHosts, "app")
	var src string
	testutil.Eventually(t, 10*time.Second, func() error {
		src = s.xfield("west1", "east", "masterConnectUri")
		if !strings.HasPrefix(src, "thl://east2:") && !strings.HasPrefix(src, "thl://east3:") {
			return fmt.Errorf("west1 reads east from %s, want a replica", src)
		}
		return nil
	})
	stalled := strings.TrimSuffix(strings.TrimPrefix(src, "thl://"), ":2112/")
	t.Logf("west1 reads east from %s; taking its replicator offline", stalled)
	s.mustCctrl("east1", "replicator", stalled, "offline")
	begin := time.Now()
	s.exec("east1", "INSERT INTO app.t VALUES (1)")
	testutil.Eventually(t, 20*time.Second, func() error {
		var n int
		s.db("west1").QueryRow("SELECT COUNT(*) FROM app.t WHERE id = 1").Scan(&n)
		if n != 1 {
			return fmt.Errorf("west1 has not got east's write")
		}
		return nil
	})
	now := s.xfield("west1", "east", "masterConnectUri")
	t.Logf("west1 got east's write %v later, reading from %s", time.Since(begin).Round(time.Millisecond), now)
	if now == src {
		t.Errorf("west1 still reads from the stalled %s", src)
	}
	s.mustCctrl("east1", "replicator", stalled, "online")
	s.sameEverywhere(30*time.Second, allHosts, "app")
}

// TestCrossSiteFollowsSwitchAndFailover: east switches (planned) and then
// fails over (its primary's mariadbd killed); west's cross-site
// replicators follow each new east primary by themselves, and every write
// made on east reaches every west host exactly once.
func TestCrossSiteFollowsSwitchAndFailover(t *testing.T) {
	ini, err := os.ReadFile("../../examples/msaa.ini")
	if err != nil {
		t.Fatal(err)
	}
	s := startSandbox(t, string(ini))
	s.exec("east1", "CREATE DATABASE app", "CREATE TABLE app.t (id INT PRIMARY KEY AUTO_INCREMENT, v INT)")
	s.sameEverywhere(30*time.Second, allHosts, "app")
	west := []string{"west1", "west2", "west3"}
	write := func(host string, n int) {
		t.Helper()
		db := s.appDB(host)
		for i := 0; i < n; i++ {
			if _, err := db.Exec("INSERT INTO app.t (v) VALUES (?)", i); err != nil {
				t.Fatalf("write on %s: %v", host, err)
			}
		}
	}
	write("east1", 20)
	s.mustCctrl("east1", "switch")
	p := s.status("east1").GetPrimary()
	write(p, 20)
	s.sameEverywhere(30*time.Second, append([]string{"east1", "east2", "east3"}, west...), "app")

	s.kill9(p, "mariadbd")
	var np string
	testutil.Eventually(t, 20*time.Second, func() error {
		for _, h := range []string{"east1", "east2", "east3"} {
			if h == p {
				continue
			}
			r := s.status(h)
			if r.GetPrimary() != p && r.GetTransition() == "" {
				np = r.GetPrimary()
				return nil
			}
		}
		return fmt.Errorf("no failover yet")
	})
	testutil.Eventually(t, 10*time.Second, func() error {
		_, err := s.appDB(np).Exec("INSERT INTO app.t (v) VALUES (-1)")
		return err
	})
	write(np, 20)
	var alive []string
	for _, h := range allHosts {
		if h != p {
			alive = append(alive, h)
		}
	}
	s.sameEverywhere(30*time.Second, alive, "app")
	var n int
	s.db("west3").QueryRow("SELECT COUNT(*) FROM app.t").Scan(&n)
	if n != 61 {
		t.Errorf("west3 has %d rows, want 61", n)
	}
	t.Logf("east: switch to %s, failover to %s; west followed both", p, np)
}
