package e2e

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestClusterCheck: cctrl's cluster check, with writes going on at both
// sites, finds every table equal on every host; after a row changed by
// hand on west2 (sql_log_bin=0), it names west2, the table, the chunk
// and the row, and a script gets exit code 1; -json and trepctl check of
// one service say the same.
func TestClusterCheck(t *testing.T) {
	s := startMSAA(t)
	var rows []string
	for i := 1; i <= 3000; i++ {
		rows = append(rows, fmt.Sprintf("(%d, 'v%d', NULL)", i, i))
	}
	s.exec("east1",
		"CREATE TABLE app.k (id INT PRIMARY KEY, v VARCHAR(20), n INT)",
		"INSERT INTO app.k VALUES "+strings.Join(rows, ","),
		"CREATE TABLE app.s (a VARCHAR(10), b INT, v TEXT, PRIMARY KEY (a, b))",
		"INSERT INTO app.s VALUES ('x', 1, 'one'), ('x', 2, NULL), ('y', 1, ''), ('Z', 9, 'z')",
		"CREATE TABLE app.nokey (v INT, t TIMESTAMP(3) NULL)",
		"INSERT INTO app.nokey VALUES (1, '2024-01-02 03:04:05.678'), (1, NULL), (NULL, NULL)",
		"CREATE TABLE app.w (id INT AUTO_INCREMENT PRIMARY KEY, site VARCHAR(10), n INT)")
	s.sameEverywhere(60*time.Second, allHosts, "app")

	// Writers on both primaries: app.k's rows (first phase) and app.w.
	var stop atomic.Bool
	var hotK atomic.Bool
	hotK.Store(true)
	var wg sync.WaitGroup
	for _, h := range []string{"east1", "west1"} {
		wg.Add(1)
		go func(h string) {
			defer wg.Done()
			db := s.db(h)
			r := rand.New(rand.NewPCG(uint64(len(h)), uint64(time.Now().UnixNano())))
			for !stop.Load() {
				if hotK.Load() {
					db.Exec("UPDATE app.k SET n = IFNULL(n, 0) + 1 WHERE id = ?", 1+r.IntN(3000))
				}
				db.Exec("INSERT INTO app.w (site, n) VALUES (?, ?)", h, r.IntN(1000))
				// 5 ms apart: the crossing updates meet conflicts in
				// most blocks. Before blocks were split down to the
				// transaction in conflict (apply/split.go), whole blocks
				// went to conflict mode and in some runs the replicas of
				// two cores fell minutes behind, the check waiting for
				// markers while the writes went on.
				time.Sleep(5 * time.Millisecond)
			}
		}(h)
	}
	defer func() { stop.Store(true); wg.Wait() }()

	begin := time.Now()
	r := s.runCctrl("east1", "continuent", "cctrl", "cluster check\n")
	t.Logf("cluster check under writes (%v):\n%s%s", time.Since(begin).Round(time.Millisecond), r.out, r.err)
	if r.code != 0 || !strings.Contains(r.out, "every table equal on every host") {
		// Tell a check that is wrong from hosts that are: stop the
		// writes, let every host catch up, and compare app.k by hand.
		stop.Store(true)
		wg.Wait()
		s.appliedPastNow(60 * time.Second)
		t.Fatalf("cluster check under writes on both sites: exit %d, want 0 and every table equal\n%s%s\nafter the writes stopped: %s",
			r.code, r.out, r.err, s.divergingRows("k"))
	}

	hotK.Store(false)
	s.appliedPastNow(60 * time.Second) // the last writes to app.k reach every host
	s.exec("west2", "SET SESSION sql_log_bin = 0", "UPDATE app.k SET v = 'changed by hand' WHERE id = 2345")
	begin = time.Now()
	r = s.runCctrl("west3", "continuent", "cctrl", "cluster check app\n")
	t.Logf("cluster check after a change on west2 (%v):\n%s%s", time.Since(begin).Round(time.Millisecond), r.out, r.err)
	if r.code != 1 {
		t.Errorf("cluster check with west2 changed: exit %d, want 1", r.code)
	}
	var line string
	for _, l := range strings.Split(r.out, "\n") {
		if strings.Contains(l, "west2") && strings.Contains(l, "different") {
			line = l
		}
	}
	if !strings.Contains(r.out, "app.k: DIFFERENT") || line == "" || !strings.Contains(line, "id=2345 differs") {
		t.Errorf("cluster check does not name west2's chunk of app.k as different:\n%s", r.out)
	}
	for _, other := range []string{"east2", "east3", "west1", "west3"} {
		if strings.Contains(r.out, "  "+other+" ") {
			t.Errorf("cluster check names %s, which holds what east1 holds:\n%s", other, r.out)
		}
	}

	// trepctl check of one service, from a cross-site replicator's
	// install: the same finding, exit code 1.
	out, err := s.tool("west3", "replicator", "mm_trepctl", "-service", "east", "check", "-chunk-time", "50ms", "app.k")
	if err == nil || !strings.Contains(out, "west2 chunk") || !strings.Contains(out, "id=2345 differs") {
		t.Errorf("mm_trepctl -service east check app.k on west3: %v\n%s", err, out)
	}

	r = s.runCctrl("east2", "continuent", "cctrl", "cluster check -json app.k\n")
	var rep struct {
		Equal  bool `json:"equal"`
		Tables []struct {
			Table    string `json:"table"`
			Findings []struct {
				Host, Range, Verdict string
			} `json:"findings"`
		} `json:"tables"`
	}
	if err := json.Unmarshal([]byte(r.out), &rep); err != nil || rep.Equal || len(rep.Tables) != 1 || len(rep.Tables[0].Findings) != 1 ||
		rep.Tables[0].Findings[0].Host != "west2" || rep.Tables[0].Findings[0].Verdict != "different" {
		t.Errorf("cluster check -json app.k: %v, %+v\n%s%s", err, rep, r.out, r.err)
	}
}

// divergingRows compares app.table (id, v, n) on every host once every
// host applied everything, naming each row that differs as each host
// holds it and the conflicts each recorded for it.
func (s *site) divergingRows(table string) string {
	s.t.Helper()
	rows := s.rowsEverywhere(table)
	ids := diverging(rows)
	if len(ids) == 0 {
		return "every host holds the same app." + table
	}
	return "rows differ:\n" + s.describeRows(table, rows, ids)
}
