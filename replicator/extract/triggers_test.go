package extract

import (
	"context"
	"fmt"
	"testing"

	"github.com/carbidedb/carbide/internal/testutil"
	"github.com/carbidedb/carbide/replicator/apply"
	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

// TestTriggersAndCascadesApplied: rows of tables with triggers, with the
// rows the triggers wrote, and foreign keys that cascade, extracted on
// west and applied on east (which has the same triggers and keys) on one
// and on two channels: every table ends equal (no trigger fired twice, no
// cascade missed).
func TestTriggersAndCascadesApplied(t *testing.T) {
	t.Parallel()
	for _, channels := range []int{1, 2} {
		t.Run(fmt.Sprintf("channels=%d", channels), func(t *testing.T) {
			west, wdb := startDB(t)
			east, edb := startDB(t)
			schema := []string{
				"CREATE DATABASE app",
				"CREATE TABLE app.t (id INT PRIMARY KEY, v INT, note VARCHAR(20))",
				"CREATE TABLE app.audit (n INT AUTO_INCREMENT PRIMARY KEY, op CHAR(1), id INT, v INT)",
				"CREATE TRIGGER app.t_bi BEFORE INSERT ON app.t FOR EACH ROW SET NEW.note = CONCAT('seen ', NEW.id)",
				"CREATE TRIGGER app.t_ai AFTER INSERT ON app.t FOR EACH ROW INSERT INTO app.audit (op, id, v) VALUES ('i', NEW.id, NEW.v)",
				"CREATE TRIGGER app.t_au AFTER UPDATE ON app.t FOR EACH ROW INSERT INTO app.audit (op, id, v) VALUES ('u', NEW.id, NEW.v)",
				"CREATE TRIGGER app.t_ad AFTER DELETE ON app.t FOR EACH ROW INSERT INTO app.audit (op, id, v) VALUES ('d', OLD.id, OLD.v)",
				"CREATE TABLE app.parent (id INT PRIMARY KEY)",
				"CREATE TABLE app.child (id INT PRIMARY KEY, parent INT, FOREIGN KEY (parent) REFERENCES app.parent (id) ON DELETE CASCADE ON UPDATE CASCADE)",
			}
			for _, q := range schema {
				testutil.Exec(t, wdb, q)
				testutil.Exec(t, edb, q)
			}
			wx := newExtractor(t, west, func(c *Config) { c.Service, c.SourceID = "west", "west1" })
			from := currentPosition(t, wx)
			var workload []string
			n := 0 // transactions that change rows
			parents := map[int]bool{}
			for i := 1; i <= 20; i++ {
				n++
				parents[i] = true
				if i%3 == 0 && parents[i-1] {
					n++
					delete(parents, i-1)
				}
				if i%5 == 0 && parents[i] {
					n++
					delete(parents, i)
				}
				workload = append(workload, "BEGIN",
					fmt.Sprintf("INSERT INTO app.t (id, v) VALUES (%d, %d), (%d, %d)", 2*i, i, 2*i+1, i),
					fmt.Sprintf("UPDATE app.t SET v = v + 1 WHERE id = %d", 2*i),
					fmt.Sprintf("DELETE FROM app.t WHERE id = %d", 2*i+1),
					fmt.Sprintf("INSERT INTO app.parent VALUES (%d)", i),
					fmt.Sprintf("INSERT INTO app.child VALUES (%d, %d), (%d, %d)", 2*i, i, 2*i+1, i),
					"COMMIT")
				if i%3 == 0 {
					workload = append(workload, fmt.Sprintf("DELETE FROM app.parent WHERE id = %d", i-1))
				}
				if i%5 == 0 {
					workload = append(workload, fmt.Sprintf("UPDATE app.parent SET id = %d WHERE id = %d", 1000+i, i))
				}
			}
			c := conn(t, wdb)
			for _, q := range workload {
				execConn(t, c, q)
			}
			txs := start(t, wx, from).wait(t, n)
			var events []*thlpb.Event
			for i, tx := range txs {
				for _, ev := range tx {
					ev.Seqno = uint64(i)
					events = append(events, ev)
				}
			}
			a, err := apply.New(apply.Config{Addr: east.Addr(), User: "tungsten", Password: "secret", Service: "west", Channels: channels, Logger: testutil.Logger(t)})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { a.Close() })
			if err := a.Open(context.Background()); err != nil {
				t.Fatal(err)
			}
			applyAll(t, a, events)
			for _, table := range []string{"t", "audit", "parent", "child"} {
				var name, wsum, esum string
				testutil.QueryRow(t, wdb, "CHECKSUM TABLE app."+table, nil, &name, &wsum)
				testutil.QueryRow(t, edb, "CHECKSUM TABLE app."+table, nil, &name, &esum)
				if wsum != esum {
					t.Errorf("app.%s: checksum %s on east, %s on west", table, esum, wsum)
				}
			}
		})
	}
}
