package e2e

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/carbidedb/carbide/internal/testutil"
)

// TestTriggersAndCascades: tables with triggers (an audit table written
// by AFTER triggers, a BEFORE trigger changing the row) and foreign keys
// with ON DELETE/UPDATE CASCADE and SET NULL, written on both sites at
// once. The binlog holds the rows the source's triggers wrote and not the
// rows its cascades changed: every host must end with the source's rows,
// no trigger fired twice, no cascade missed.
func TestTriggersAndCascades(t *testing.T) {
	ini, err := os.ReadFile("../../examples/msaa.ini")
	if err != nil {
		t.Fatal(err)
	}
	s := startSandbox(t, strings.Replace(string(ini), "[defaults.replicator]\n", "[defaults.replicator]\nchannels=2\n", 1))
	for _, site := range []string{"east", "west"} {
		db := site + "db"
		s.exec(site+"1", "CREATE DATABASE "+db,
			"CREATE TABLE "+db+".t (id INT PRIMARY KEY, v INT, note VARCHAR(20))",
			"CREATE TABLE "+db+".audit (n INT AUTO_INCREMENT PRIMARY KEY, op CHAR(1), id INT, v INT)",
			"CREATE TRIGGER "+db+".t_bi BEFORE INSERT ON "+db+".t FOR EACH ROW SET NEW.note = CONCAT('seen ', NEW.id)",
			"CREATE TRIGGER "+db+".t_ai AFTER INSERT ON "+db+".t FOR EACH ROW INSERT INTO "+db+".audit (op, id, v) VALUES ('i', NEW.id, NEW.v)",
			"CREATE TRIGGER "+db+".t_au AFTER UPDATE ON "+db+".t FOR EACH ROW INSERT INTO "+db+".audit (op, id, v) VALUES ('u', NEW.id, NEW.v)",
			"CREATE TRIGGER "+db+".t_ad AFTER DELETE ON "+db+".t FOR EACH ROW INSERT INTO "+db+".audit (op, id, v) VALUES ('d', OLD.id, OLD.v)",
			"CREATE TABLE "+db+".parent (id INT PRIMARY KEY, name VARCHAR(20))",
			"CREATE TABLE "+db+".child (id INT PRIMARY KEY, parent INT, FOREIGN KEY (parent) REFERENCES "+db+".parent (id) ON DELETE CASCADE ON UPDATE CASCADE)",
			"CREATE TABLE "+db+".grandchild (id INT PRIMARY KEY, child INT, FOREIGN KEY (child) REFERENCES "+db+".child (id) ON DELETE CASCADE)",
			"CREATE TABLE "+db+".loose (id INT PRIMARY KEY, parent INT NULL, FOREIGN KEY (parent) REFERENCES "+db+".parent (id) ON DELETE SET NULL ON UPDATE SET NULL)",
		)
	}
	schemas := []string{"eastdb", "westdb"}
	s.sameEverywhere(60*time.Second, allHosts, schemas...)

	ctx, cancel := context.WithTimeout(context.Background(), soak())
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for _, site := range []string{"east", "west"} {
		db, name := s.db(site+"1"), site+"db"
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 1; ctx.Err() == nil; i++ {
				stmts := []string{
					fmt.Sprintf("INSERT INTO %s.t (id, v) VALUES (%d, %d), (%d, %d)", name, 2*i, i, 2*i+1, i),
					fmt.Sprintf("UPDATE %s.t SET v = v + 1 WHERE id = %d", name, 2*i),
					fmt.Sprintf("DELETE FROM %s.t WHERE id = %d", name, 2*i+1),
					fmt.Sprintf("INSERT INTO %s.parent VALUES (%d, 'p')", name, i),
					fmt.Sprintf("INSERT INTO %s.child VALUES (%d, %d), (%d, %d)", name, 2*i, i, 2*i+1, i),
					fmt.Sprintf("INSERT INTO %s.grandchild VALUES (%d, %d)", name, i, 2*i),
					fmt.Sprintf("INSERT INTO %s.loose VALUES (%d, %d)", name, i, i),
				}
				if i%3 == 0 { // a cascade on delete through two levels, and SET NULL
					stmts = append(stmts, fmt.Sprintf("DELETE FROM %s.parent WHERE id = %d", name, i-1))
				}
				if i%5 == 0 { // a cascade on update of the key
					stmts = append(stmts, fmt.Sprintf("UPDATE %s.parent SET id = %d WHERE id = %d", name, 1000000+i, i))
				}
				tx, err := db.BeginTx(ctx, nil)
				if err != nil {
					continue
				}
				for _, q := range stmts {
					if _, err = tx.Exec(q); err != nil {
						break
					}
				}
				if err != nil {
					tx.Rollback()
					if ctx.Err() == nil {
						errs <- fmt.Errorf("%s: %v", site, err)
						return
					}
					continue
				}
				tx.Commit()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	want := s.sameEverywhere(90*time.Second, allHosts, schemas...)
	for _, h := range allHosts {
		for _, db := range schemas {
			var audits, ts, children, nulls int
			s.db(h).QueryRow("SELECT (SELECT COUNT(*) FROM "+db+".audit), (SELECT COUNT(*) FROM "+db+".t), "+
				"(SELECT COUNT(*) FROM "+db+".child), (SELECT COUNT(*) FROM "+db+".loose WHERE parent IS NULL)").Scan(&audits, &ts, &children, &nulls)
			if h == "east1" || h == "west1" {
				t.Logf("%s %s: %d rows, %d audit rows, %d children, %d orphans set null", h, db, ts, audits, children, nulls)
			}
			if audits == 0 || nulls == 0 {
				t.Errorf("%s %s: %d audit rows and %d rows set null: the workload did not run", h, db, audits, nulls)
			}
		}
	}
	if len(want) == 0 {
		t.Fatal("no tables compared")
	}
	s.allOnlineAndCaughtUp(60 * time.Second)
}

// allOnlineAndCaughtUp waits until every cluster and cross-site service
// of every host is ONLINE and has applied what its site's master stored
// (caughtUp).
func (s *site) allOnlineAndCaughtUp(timeout time.Duration) {
	s.t.Helper()
	testutil.Eventually(s.t, timeout, s.caughtUp)
}
