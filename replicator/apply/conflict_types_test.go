package apply

import (
	"context"
	"database/sql"
	"strings"
	"testing"
	"time"

	"github.com/carbidedb/carbide/internal/mysqld"
	"github.com/carbidedb/carbide/internal/testutil"
	"github.com/carbidedb/carbide/replicator/extract"
	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

// typesDDL is a table of every kind of value the extractor carries but
// FLOAT and DOUBLE (its rows are verified by a locking read, verify.go),
// one of those (matched in the WHERE), and one without a key.
var typesDDL = []string{
	`CREATE TABLE app.types (id INT PRIMARY KEY,
		ti TINYINT, tu TINYINT UNSIGNED, si SMALLINT, mi MEDIUMINT, bi BIGINT, bu BIGINT UNSIGNED,
		dc DECIMAL(30,10), dn DECIMAL(65,30),
		dt DATETIME(6), ts TIMESTAMP(3) NULL, da DATE, tm TIME(2), yr YEAR,
		c CHAR(5) CHARACTER SET utf8mb4, vl VARCHAR(50) CHARACTER SET latin1, vu VARCHAR(60) CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci,
		tx TEXT CHARACTER SET utf8mb4, bl BLOB, lb LONGBLOB, bn BINARY(4), vb VARBINARY(8),
		e ENUM('a','b','c'), st SET('x','y','z'), bt BIT(10), j JSON, g GEOMETRY,
		gen INT AS (id * 2) VIRTUAL, n INT NULL, sb CHAR(120) CHARACTER SET utf8mb4,
		ou TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP)`,
	`CREATE TABLE app.floats (id INT PRIMARY KEY, f FLOAT, d DOUBLE, n INT)`,
	// wide, small and ip share blocks with types: the reads of wide and
	// small go as one UNION ALL (their columns cast to text unchanged),
	// ip's and types' alone (INET6, UUID, GEOMETRY do not).
	`CREATE TABLE app.wide LIKE app.types`,
	`ALTER TABLE app.wide DROP COLUMN g`,
	`CREATE TABLE app.small (k VARCHAR(10) CHARACTER SET utf8mb4 PRIMARY KEY, d DECIMAL(5,1), t DATETIME, n INT)`,
	`CREATE TABLE app.ip (id INT PRIMARY KEY, a INET6, u UUID, n INT)`,
	`CREATE TABLE app.nokey (a INT, f FLOAT, d DOUBLE, s VARCHAR(20), t DATETIME(3))`,
}

// typesRows fill app.types: ordinary, extreme and NULL values.
var typesRows = []string{
	`INSERT INTO app.types (id, ti, tu, si, mi, bi, bu, dc, dn, dt, ts, da, tm, yr, c, vl, vu, tx, bl, lb, bn, vb, e, st, bt, j, g, n) VALUES
		(1, -128, 255, -32768, 8388607, -9223372036854775808, 18446744073709551615, 12345678901234567890.0123456789,
		 -0.000000000000000000000000000001, '2024-02-29 23:59:59.123456', '2038-01-19 03:14:07.999', '0000-00-00', '-838:59:59.99', 2155,
		 'ab', UNHEX('636166E920'), 'Ünïcödé 🎉  ', REPEAT('long text ', 200), 'a\0b''c\\d\Z,', REPEAT('x', 100000), 'a', 'a\0', 'b', 'x,z', b'1010101010',
		 '{"k": [1, 2.5, "s"]}', POINT(1.5, -2.25), 0)`,
	`UPDATE app.types SET sb = CONCAT('83868641912-28773972837-', REPEAT('Ü', 30), '  '), ou = '2001-02-03 04:05:06'`,
	`INSERT INTO app.types (id, dc, vu, tx) VALUES (2, -0.5, 'MiXeD', '')`,
	`INSERT INTO app.types (id, c, vl, bn) VALUES (3, '', '', UNHEX('00000000'))`,
	`INSERT INTO app.floats VALUES (1, 0.1, 0.1, NULL), (2, 3.40282e38, 1.7976931348623157e308, NULL), (3, -1.17549e-38, 2.2250738585072014e-308, NULL)`,
	`INSERT INTO app.types (id) VALUES (4)`,
	`INSERT INTO app.wide (id, ti, tu, si, mi, bi, bu, dc, dn, dt, ts, da, tm, yr, c, vl, vu, tx, bl, lb, bn, vb, e, st, bt, j, n, sb, ou)
		SELECT id, ti, tu, si, mi, bi, bu, dc, dn, dt, ts, da, tm, yr, c, vl, vu, tx, bl, lb, bn, vb, e, st, bt, j, n, sb, ou FROM app.types`,
	`INSERT INTO app.small VALUES ('Ä', 1.5, '2024-01-01 00:00:00', 0), ('b', NULL, NULL, 0), ('c', -9999.9, '1000-01-01 00:00:00', 0)`,
	`INSERT INTO app.ip VALUES (1, '::1', '123e4567-e89b-12d3-a456-426655440000', 0), (2, NULL, NULL, 0)`,
	`INSERT INTO app.nokey VALUES (1, 0.1, 0.1, 'a', '2024-01-01 00:00:00.5'), (1, 0.1, 0.1, 'a', '2024-01-01 00:00:00.5'), (NULL, NULL, NULL, NULL, NULL)`,
}

// sourceTxns runs stmts on the source (one transaction each) and returns
// their events as the extractor makes them, numbered from seqno on.
func sourceTxns(t *testing.T, src *mysqld.Server, db *sql.DB, seqno uint64, stmts ...string) []*thlpb.Event {
	t.Helper()
	x, err := extract.New(extract.Config{Addr: src.Addr(), User: "tungsten", Password: "secret", Service: "east", SourceID: "east1", Logger: testutil.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	from, err := x.CurrentPosition(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range stmts {
		testutil.Exec(t, db, q)
	}
	var evs []*thlpb.Event
	txns := 0
	err = x.Run(ctx, from, func(frags []*thlpb.Event) error {
		for _, f := range frags {
			f.Seqno = seqno
			evs = append(evs, f)
		}
		if frags[len(frags)-1].GetLastFrag() {
			seqno++
			if txns++; txns == len(stmts) {
				cancel()
			}
		}
		return nil
	})
	if txns < len(stmts) {
		t.Fatalf("extracted %d of %d transactions: %v", txns, len(stmts), err)
	}
	return evs
}

// No false positives: rows of every type, applied by the applier, then
// updated and deleted on the source. Every before-image matches the
// target's row exactly, so nothing is a conflict (policy stop would stop),
// with blocks sent as compound statements and as multi-statement scripts.
func TestConflictNoFalsePositives(t *testing.T) {
	testutil.RequireDB(t)
	src, target := testutil.StartMariaDB(t), testutil.StartMariaDB(t)
	sdb, tdb := testutil.DB(t, src), testutil.DB(t, target)
	for _, db := range []*sql.DB{sdb, tdb} {
		freshApp(t, db, typesDDL...)
	}
	var unions, prechecks uint64
	// how: "precheck" (compound statements verifying their rows),
	// "union" (compound statements after locking reads), "multi"
	// (multi-statement scripts after locking reads).
	apply := func(how string, evs []*thlpb.Event) {
		t.Helper()
		a, err := New(Config{Addr: target.Addr(), User: "tungsten", Password: "secret", Service: "east", Logger: testutil.Logger(t)})
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		a.compoundOff.Store(how == "multi")
		a.noPrecheck = how == "union"
		if err := a.Open(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := runUntil(t, a, evs[len(evs)-1].GetSeqno(), evs...); err != nil {
			t.Fatal(err)
		}
		if n := a.resolvedBlocks.Load(); n > 0 {
			t.Errorf("%d blocks went to conflict mode: the fast path took a matching row for a conflict", n)
		}
		unions += a.unionReads.Load()
		prechecks += a.prechecks.Load()
	}
	evs := sourceTxns(t, src, sdb, 0, typesRows...)
	apply("precheck", evs)
	next := evs[len(evs)-1].GetSeqno() + 1
	// Each column changed in turn, the others carried in the before-image.
	updates := []string{
		"UPDATE app.types SET n = IFNULL(n, 0) + 1, ou = ou",
		"UPDATE app.floats SET n = IFNULL(n, 0) + 1",
		"UPDATE app.floats SET f = f / 3, d = d / 7 WHERE id = 1",
		"UPDATE app.types SET vu = CONCAT(vu, 'x'), tx = CONCAT(tx, 'y'), lb = CONCAT(lb, 'z'), ou = ou WHERE id IN (1, 2)",
		"UPDATE app.types SET e = 'c', st = 'y', bt = b'1', j = '[]', g = POINT(0, 0), bn = 'zz', ou = ou WHERE id = 1",
		"UPDATE app.types SET ts = '2001-01-01 00:00:00.001', dt = NULL, dn = 1, ou = ou WHERE id <= 3",
		"UPDATE app.nokey SET s = 'b' WHERE a = 1 LIMIT 1",
		"UPDATE app.nokey SET f = 0.2 WHERE a IS NULL",
		// The source keeps ou as it was (2001) in every UPDATE: the
		// target must set it too, not let the server take NOW().
		"UPDATE app.types SET n = n + 1, ou = ou",
		"UPDATE app.types SET sb = REPEAT('s', 119), ou = ou WHERE id = 2",
		"UPDATE app.wide SET n = IFNULL(n, 0) + 1, ou = ou",
		"UPDATE app.small SET n = n + 1",
		"UPDATE app.ip SET n = n + 1",
		"UPDATE app.wide SET e = 'c', st = 'y', bt = b'1', j = '[]', bn = 'zz', ou = ou WHERE id = 1",
		"UPDATE app.small SET d = d + 1, t = '2024-02-29 12:00:00'",
		"UPDATE app.ip SET a = '::ffff:10.0.0.1', u = '00000000-0000-0000-0000-000000000001' WHERE id = 1",
		"UPDATE app.wide SET vu = CONCAT(vu, 'x'), tx = CONCAT(tx, 'y'), lb = CONCAT(lb, 'z'), ou = ou WHERE id IN (1, 2)",
	}
	evs = sourceTxns(t, src, sdb, next, updates...)
	apply("precheck", evs)
	next = evs[len(evs)-1].GetSeqno() + 1
	// One transaction over the four tables: its block reads them in one
	// locking read, however the applier cuts blocks (four transactions
	// could commit in several under load).
	evs = sourceTxns(t, src, sdb, next, "UPDATE app.wide, app.small, app.types, app.ip SET app.wide.n = app.wide.n + 1, app.wide.ou = app.wide.ou, "+
		"app.small.n = app.small.n + 1, app.types.n = app.types.n + 1, app.types.ou = app.types.ou, app.ip.n = app.ip.n + 1")
	apply("union", evs)
	next = evs[len(evs)-1].GetSeqno() + 1
	evs = sourceTxns(t, src, sdb, next, "UPDATE app.types SET n = n * 10, ou = ou", "UPDATE app.nokey SET d = d * 2", "UPDATE app.floats SET n = n * 10")
	apply("multi", evs)
	next = evs[len(evs)-1].GetSeqno() + 1
	evs = sourceTxns(t, src, sdb, next, "DELETE FROM app.types WHERE id IN (1, 3)", "DELETE FROM app.nokey WHERE a = 1 LIMIT 1", "DELETE FROM app.floats WHERE id = 3",
		"DELETE FROM app.wide WHERE id = 3", "DELETE FROM app.small WHERE k = 'ä'", "DELETE FROM app.ip WHERE id = 2")
	apply("precheck", evs)

	if got := testutil.QueryString(t, tdb, "SELECT COUNT(*) FROM tungsten_east.conflicts"); got != "0" {
		t.Errorf("%s conflicts recorded, want none", got)
	}
	if unions == 0 {
		t.Error("no locking read went as a UNION ALL")
	}
	if prechecks == 0 {
		t.Error("no block verified its rows in its own statement")
	}
	for _, table := range []string{"app.types", "app.floats", "app.nokey", "app.wide", "app.small", "app.ip"} {
		q := "CHECKSUM TABLE " + table
		s, g := checksum(t, sdb, q), checksum(t, tdb, q)
		if s != g {
			t.Errorf("%s differs: source %s, target %s", table, s, g)
		}
	}
	if got := testutil.QueryString(t, tdb, "SELECT GROUP_CONCAT(id ORDER BY id) FROM app.types"); got != "2,4" {
		t.Errorf("app.types ids = %s", got)
	}
}

func checksum(t *testing.T, db *sql.DB, q string) string {
	t.Helper()
	var table, sum string
	if err := db.QueryRow(q).Scan(&table, &sum); err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(sum)
}
