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

	"github.com/carbidedb/carbide/internal/testutil"
)

// TestCreateTableSelectAndQuickDDL runs on west1, while east1 writes too,
// what applications and MariaDB's own test files send: CREATE TABLE …
// SELECT without a key, with one, from a view, large enough to take
// several fragments, into MyISAM; and tables created, written and dropped
// in quick succession. All six hosts end equal, nothing is applied twice
// (east's THL holds only east's writes), and every cluster and cross-site
// replicator is ONLINE and caught up.
func TestCreateTableSelectAndQuickDDL(t *testing.T) {
	ini, err := os.ReadFile("../../examples/msaa.ini")
	if err != nil {
		t.Fatal(err)
	}
	s := startSandbox(t, string(ini))
	s.exec("west1", "CREATE DATABASE app",
		"CREATE TABLE app.src (id INT PRIMARY KEY, v VARCHAR(20))",
		"INSERT INTO app.src SELECT seq, CONCAT('v', seq) FROM app.seq_1_to_5000",
		"CREATE VIEW app.vw AS SELECT * FROM app.src WHERE id <= 300")
	s.exec("east1", "CREATE DATABASE eapp", "CREATE TABLE eapp.t (id INT PRIMARY KEY, n INT)")
	s.sameEverywhere(60*time.Second, allHosts, "app", "eapp")

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var acked atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		db := s.db("east1")
		for i := 0; ctx.Err() == nil; i++ {
			if _, err := db.Exec("INSERT INTO eapp.t VALUES (?, ?)", i, i); err == nil {
				acked.Add(1)
			}
		}
	}()
	s.exec("west1",
		"CREATE TABLE app.nokey SELECT * FROM app.src", // 5,000 rows: several fragments
		"CREATE TABLE app.keyed (id INT PRIMARY KEY) SELECT * FROM app.src WHERE id <= 100",
		"CREATE TABLE app.fromview (id INT PRIMARY KEY) SELECT * FROM app.vw",
		"CREATE TABLE app.bigkeyed (id INT PRIMARY KEY) SELECT * FROM app.src",
		"CREATE TABLE app.m ENGINE=MyISAM SELECT * FROM app.src WHERE id <= 50")
	for i := range 5 {
		s.exec("west1",
			"CREATE TABLE app.q (a VARCHAR(10), b TEXT, c ENUM('x','y'), d DATE)",
			fmt.Sprintf("INSERT INTO app.q VALUES ('a%d', 'b', 'x', '2024-01-01'), ('c', 'd', 'y', NULL)", i),
			"UPDATE app.q SET b = 'u'",
			"DROP TABLE app.q")
	}
	s.exec("west1", "CREATE TABLE app.kept (a VARCHAR(10))", "INSERT INTO app.kept VALUES ('z')")
	// east1 writes on until west's statements have reached it.
	testutil.Eventually(t, 60*time.Second, func() error {
		var n int
		if err := s.db("east1").QueryRow("SELECT COUNT(*) FROM app.kept").Scan(&n); err != nil || n != 1 {
			return fmt.Errorf("west's statements have not reached east1 (%v)", err)
		}
		return nil
	})
	cancel()
	wg.Wait()

	s.sameEverywhere(90*time.Second, allHosts, "app", "eapp")
	for _, h := range allHosts {
		var n int64
		s.db(h).QueryRow("SELECT COUNT(*) FROM eapp.t").Scan(&n)
		if n != acked.Load() {
			t.Errorf("%s has %d of east1's rows, %d were acknowledged", h, n, acked.Load())
		}
	}
	s.allOnlineAndCaughtUp(60 * time.Second)
	for host, origin := range map[string]string{"east1": "east1", "west1": "west1"} {
		out, err := s.tool(host, "continuent", "thl", "list", "-headers")
		if err != nil {
			t.Fatalf("%s: thl list: %v %s", host, err, out)
		}
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, "- SOURCEID = ") && l != "- SOURCEID = "+origin {
				t.Fatalf("%s's THL holds an event from %s: a write looped back", host, l)
			}
		}
	}
}
