package e2e

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var allHosts = []string{"east1", "east2", "east3", "west1", "west2", "west3"}

// soak is how long the active/active writers run: short in make test,
// a minute under make chaos.
func soak() time.Duration {
	if os.Getenv("CARBIDE_CHAOS") != "" {
		return 60 * time.Second
	}
	return 6 * time.Second
}

// TestActiveActive writes on both sites at once (each site its own rows,
// plus one shared table both insert into with the sites' auto-increment
// offsets): every write reaches all six hosts exactly once, and each
// site's writes enter only its own THL.
// TestWANBed runs the same checks on the WAN bed.
func TestActiveActive(t *testing.T) {
	activeActive(t, startSandbox(t, activeActiveINI(t)))
}

// activeActiveINI is the sample topology with two apply channels.
func activeActiveINI(t *testing.T) string {
	t.Helper()
	ini, err := os.ReadFile("../../examples/msaa.ini")
	if err != nil {
		t.Fatal(err)
	}
	return strings.Replace(string(ini), "[defaults.replicator]\n", "[defaults.replicator]\nchannels=2\n", 1)
}

// activeActive is TestActiveActive's work on the sandbox s.
func activeActive(t *testing.T, s *site) {
	t.Helper()
	s.exec("east1", "CREATE DATABASE app",
		"CREATE TABLE app.shared (id INT AUTO_INCREMENT PRIMARY KEY, site VARCHAR(10), n INT)",
		"CREATE TABLE app.east (id INT PRIMARY KEY, n INT)")
	s.sameEverywhere(30*time.Second, allHosts, "app")
	s.exec("west1", "CREATE TABLE app.west (id INT PRIMARY KEY, n INT)")
	s.sameEverywhere(30*time.Second, allHosts, "app")

	ctx, cancel := context.WithTimeout(context.Background(), soak())
	defer cancel()
	var wg sync.WaitGroup
	acked := map[string]*atomic.Int64{"east": {}, "west": {}}
	for _, site := range []string{"east", "west"} {
		db := s.db(site + "1")
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				if _, err := db.Exec("INSERT INTO app.shared (site, n) VALUES (?, ?)", site, i); err != nil {
					continue
				}
				acked[site].Add(1)
				db.Exec(fmt.Sprintf("INSERT INTO app.%s VALUES (?, ?) ON DUPLICATE KEY UPDATE n = n + 1", site), i%200, i)
			}
		}()
	}
	wg.Wait()
	t.Logf("acknowledged shared inserts: east %d, west %d", acked["east"].Load(), acked["west"].Load())
	s.sameEverywhere(60*time.Second, allHosts, "app")
	for _, h := range allHosts {
		for site, n := range acked {
			var got int64
			s.db(h).QueryRow("SELECT COUNT(*) FROM app.shared WHERE site = ?", site).Scan(&got)
			if got != n.Load() {
				t.Errorf("%s has %d shared rows from %s, %d were acknowledged", h, got, site, n.Load())
			}
		}
	}
	// Loop prevention: west1's binlog has east's writes (applied by its
	// cross-site replicator), west's THL has none of them.
	var inBinlog int
	rows, err := s.db("west1").Query("SHOW BINLOG EVENTS")
	if err == nil {
		cols, _ := rows.Columns()
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		for rows.Next() {
			rows.Scan(ptrs...)
			if info, ok := vals[len(vals)-1].([]byte); ok && strings.Contains(string(info), "tungsten_east") {
				inBinlog++
			}
		}
		rows.Close()
	}
	if inBinlog == 0 {
		t.Errorf("west1's binlog holds no transaction applied for east")
	}
	out, err := s.tool("west1", "continuent", "thl", "list", "-headers")
	if err != nil {
		t.Fatalf("thl list: %v %s", err, out)
	}
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "- SOURCEID = ") && l != "- SOURCEID = west1" {
			t.Fatalf("west's THL holds an event from %s", l)
		}
	}
	for _, h := range allHosts {
		for _, inst := range []string{"continuent", "replicator"} {
			out, err := s.tool(h, inst, map[string]string{"continuent": "trepctl", "replicator": "mm_trepctl"}[inst], "services")
			if err != nil || strings.Contains(out, "OFFLINE") {
				t.Errorf("%s %s: %v\n%s", h, inst, err, out)
			}
		}
	}
}

// TestCrossSiteFollowsOrigin moves east's master role from east1 to east2
// by hand: west's cross-site replicators keep reading east (from whichever
// east host they use) and get the new master's writes within seconds.
// Then east's history is rewritten (every east THL reset, a new history
// from seqno 0): west's cross-site replicators refuse it as diverged and
// apply nothing of it.
func TestCrossSiteFollowsOrigin(t *testing.T) {
	ini, err := os.ReadFile("../../examples/msaa.ini")
	if err != nil {
		t.Fatal(err)
	}
	s := startSandbox(t, string(ini))
	s.exec("east1", "CREATE DATABASE app", "CREATE TABLE app.t (id INT PRIMARY KEY, v VARCHAR(20))")
	for i := 0; i < 20; i++ {
		s.exec("east1", fmt.Sprintf("INSERT INTO app.t VALUES (%d, 'east1')", i))
	}
	s.sameEverywhere(30*time.Second, allHosts, "app")
	east := []string{"east1", "east2", "east3"}
	// Roles changed by hand need the managers in maintenance, as the guide
	// says: under AUTOMATIC the coordinator makes a replica's replicator
	// that runs as master a slave of the primary again.
	if r := s.runCctrl("east1", "continuent", "cctrl", "", "-e", "set policy maintenance"); r.code != 0 {
		t.Fatalf("set policy maintenance: exit %d\n%s%s", r.code, r.out, r.err)
	}
	for _, h := range east {
		s.trepctl(h, "offline")
	}
	s.trepctl("east2", "setrole", "-role", "master")
	s.trepctl("east1", "setrole", "-role", "slave", "-uri", "thl://east2:2112/")
	s.trepctl("east3", "setrole", "-role", "slave", "-uri", "thl://east2:2112/")
	for _, h := range []string{"east2", "east1", "east3"} {
		s.trepctl(h, "online")
	}
	begin := time.Now()
	s.exec("east2", "INSERT INTO app.t VALUES (100, 'east2')")
	for _, h := range []string{"west1", "west2", "west3"} {
		db := s.db(h)
		deadline := time.Now().Add(20 * time.Second)
		for {
			var n int
			db.QueryRow("SELECT COUNT(*) FROM app.t WHERE id = 100").Scan(&n)
			if n == 1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s never got the new east master's write", h)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if d := time.Since(begin); d > 5*time.Second {
		t.Errorf("west got the new east master's write after %s; want within 5 s", d)
	}
	s.sameEverywhere(30*time.Second, allHosts, "app")

	// Rewrite east's history: reset every east THL, new writes start a new
	// history at seqno 0 with other event ids.
	for _, h := range east {
		s.trepctl(h, "offline")
		s.trepctl(h, "reset", "-thl", "-y")
	}
	for _, h := range []string{"east2", "east1", "east3"} {
		s.trepctl(h, "online")
	}
	s.exec("east2", "INSERT INTO app.t VALUES (200, 'rewritten')")
	for _, h := range []string{"west1", "west2", "west3"} {
		out, _ := s.tool(h, "replicator", "mm_trepctl", "wait", "-state", "OFFLINE:ERROR", "-limit", "20")
		st, _ := s.tool(h, "replicator", "mm_trepctl", "-service", "east", "status")
		if !strings.Contains(st, "diverged at seqno") {
			t.Errorf("%s did not report the divergence: %s\n%s", h, out, st)
		}
		var n int
		s.db(h).QueryRow("SELECT COUNT(*) FROM app.t WHERE id = 200").Scan(&n)
		if n != 0 {
			t.Errorf("%s applied a transaction of the rewritten history", h)
		}
	}
}
