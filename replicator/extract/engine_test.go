package extract

import (
	"testing"

	"github.com/carbidedb/carbide/internal/testutil"
)

func TestCreatedTable(t *testing.T) {
	for _, c := range []struct {
		sql, schema, table string
		ok                 bool
	}{
		{"CREATE TABLE t1 (a INT)", "", "t1", true},
		{"create table if not exists `my``db`.`t 2` (a int) partition by hash(a)", "my`db", "t 2", true},
		{"CREATE OR REPLACE TABLE db.t (a INT) SELECT 1 AS a", "db", "t", true},
		{"/* c */ CREATE TABLE t (a INT) ENGINE=MyISAM", "", "", false},
		{"CREATE TABLE t (a INT) engine = InnoDB", "", "", false},
		{"CREATE TABLE t LIKE s", "", "", false},
		{"CREATE TABLE t (LIKE s)", "", "", false},
		{"CREATE TEMPORARY TABLE t (a INT)", "", "", false},
		{"CREATE TABLESPACE x", "", "", false},
		{"CREATE INDEX i ON t (a)", "", "", false},
		{"CREATE", "", "", false},
		{"ALTER TABLE t ENGINE=MyISAM", "", "", false},
	} {
		schema, table, ok := createdTable(c.sql)
		if schema != c.schema || table != c.table || ok != c.ok {
			t.Errorf("createdTable(%q) = %q, %q, %v; want %q, %q, %v", c.sql, schema, table, ok, c.schema, c.table, c.ok)
		}
	}
}

// A CREATE TABLE without ENGINE run with default_storage_engine=MyISAM
// carries the engine the source made the table with: the binlog does not
// say, and a replica would make it with its own default.
func TestCreateTableCarriesEngine(t *testing.T) {
	t.Parallel()
	srv, db := startDB(t)
	x := newExtractor(t, srv, nil)
	from := currentPosition(t, x)
	testutil.Exec(t, db, "CREATE DATABASE app")
	c := conn(t, db, "SET SESSION default_storage_engine=MyISAM")
	execConn(t, c, "CREATE TABLE app.m (id INT PRIMARY KEY)")
	execConn(t, c, "CREATE TABLE app.i (id INT PRIMARY KEY) ENGINE=InnoDB")
	col := start(t, x, from)
	got := col.wait(t, 3)
	col.stop(t)
	if e := got[1][0].GetChanges()[0].GetStatement().GetSession()[SessionEngine]; e != "MyISAM" {
		t.Errorf("CREATE TABLE without ENGINE: session engine %q, want MyISAM", e)
	}
	if e, ok := got[2][0].GetChanges()[0].GetStatement().GetSession()[SessionEngine]; ok {
		t.Errorf("CREATE TABLE … ENGINE=InnoDB: session engine %q, want none", e)
	}
}
