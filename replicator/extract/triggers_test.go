package extract

import (
	"database/sql"
	"fmt"
	"testing"

	"github.com/carbidedb/carbide/internal/mysqld"
	"github.com/carbidedb/carbide/internal/position"
	"github.com/carbidedb/carbide/internal/testutil"
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
			wdb, east, edb, wx, from := westAndEast(t, schema...)
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
			applyOn(t, east, channels, txs)
			sameChecksums(t, wdb, edb, "app.t", "app.audit", "app.parent", "app.child")
		})
	}
}

// TestSystemVersionedApplied: a system-versioned table's rows carry
// row_start and row_end, hidden columns no SQL can write: extracted on
// west and applied on east, its whole history (FOR SYSTEM_TIME ALL) ends
// equal.
func TestSystemVersionedApplied(t *testing.T) {
	t.Parallel()
	wdb, east, edb, wx, from := westAndEast(t,
		"CREATE DATABASE app",
		"CREATE TABLE app.v (id INT PRIMARY KEY, x INT) WITH SYSTEM VERSIONING",
		"CREATE TABLE app.e (id INT PRIMARY KEY, x INT, rs TIMESTAMP(6) AS ROW START INVISIBLE, re TIMESTAMP(6) AS ROW END INVISIBLE, PERIOD FOR SYSTEM_TIME(rs, re)) WITH SYSTEM VERSIONING",
	)
	workload := []string{
		"INSERT INTO app.v VALUES (1, 1), (2, 2), (3, 3)",
		"UPDATE app.v SET x = x + 10 WHERE id <= 2",
		"DELETE FROM app.v WHERE id = 3",
		"INSERT INTO app.e (id, x) VALUES (1, 1), (2, 2)",
		"UPDATE app.e SET x = 5 WHERE id = 1",
	}
	for _, q := range workload {
		testutil.Exec(t, wdb, q)
	}
	txs := start(t, wx, from).wait(t, len(workload))
	applyOn(t, east, 1, txs)
	for _, q := range []string{
		"SELECT GROUP_CONCAT(CONCAT_WS('/', id, x, row_start, row_end) ORDER BY id, row_start) FROM app.v FOR SYSTEM_TIME ALL",
		"SELECT GROUP_CONCAT(CONCAT_WS('/', id, x, rs, re) ORDER BY id, rs) FROM app.e FOR SYSTEM_TIME ALL",
	} {
		var w, e string
		testutil.QueryRow(t, wdb, q, nil, &w)
		testutil.QueryRow(t, edb, q, nil, &e)
		if w != e {
			t.Errorf("%s:\nwest %s\neast %s", q, w, e)
		}
	}
}

// TestLongUniqueApplied: a UNIQUE key on a TEXT column is a long unique
// key, whose hidden DB_ROW_HASH_1 column the binlog carries and
// information_schema does not show: rows of such a table apply, and a
// sequence's table with them (parallel apply).
func TestLongUniqueApplied(t *testing.T) {
	t.Parallel()
	wdb, east, edb, wx, from := westAndEast(t,
		"CREATE DATABASE app",
		"CREATE TABLE app.u (id INT PRIMARY KEY, t TEXT, UNIQUE (t))",
		"CREATE SEQUENCE app.s",
		"CREATE TABLE app.q (id INT PRIMARY KEY DEFAULT (NEXT VALUE FOR app.s), v INT)",
	)
	workload := []string{
		"INSERT INTO app.u VALUES (1, 'one'), (2, 'two')",
		"UPDATE app.u SET t = 'uno' WHERE id = 1",
		"DELETE FROM app.u WHERE id = 2",
		"INSERT INTO app.q (v) VALUES (1), (2)",
		"INSERT INTO app.q (v) VALUES (3)",
	}
	for _, q := range workload {
		testutil.Exec(t, wdb, q)
	}
	txs := start(t, wx, from).wait(t, len(workload))
	applyOn(t, east, 2, txs)
	sameChecksums(t, wdb, edb, "app.u", "app.q")
}

// westAndEast starts two servers with schema on both and an extractor of
// west's binlog from its current end: west's pool, east's server and pool,
// the extractor and where it starts.
func westAndEast(t *testing.T, schema ...string) (wdb *sql.DB, east *mysqld.Server, edb *sql.DB, wx *Extractor, from position.Position) {
	t.Helper()
	west, wdb := startDB(t)
	east, edb = startDB(t)
	for _, q := range schema {
		testutil.Exec(t, wdb, q)
		testutil.Exec(t, edb, q)
	}
	wx = newExtractor(t, west, func(c *Config) { c.Service, c.SourceID = "west", "west1" })
	return wdb, east, edb, wx, currentPosition(t, wx)
}
