package extract

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/carbidedb/carbide/internal/testutil"
	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

// TestCheckRefusesNonRowFormat: MIXED (or STATEMENT) binlog is refused by
// Check and by Run, with the sentence an operator can act on.
func TestCheckRefusesNonRowFormat(t *testing.T) {
	t.Parallel()
	srv, db := startDB(t)
	x := newExtractor(t, srv, nil)
	ctx := context.Background()
	if notes, err := x.Check(ctx); err != nil || len(notes) != 0 {
		t.Fatalf("Check on a ROW server: %v %v", notes, err)
	}

	testutil.Exec(t, db, "SET GLOBAL binlog_format='MIXED'")
	want := "binlog_format is MIXED on " + srv.Addr() + "; the replicator needs row events: set binlog-format=ROW in my.cnf and restart the database"
	_, err := x.Check(ctx)
	if err == nil || err.Error() != want || !errors.Is(err, ErrServerSetup) {
		t.Errorf("Check = %v, want %q", err, want)
	}
	if err := x.Run(ctx, position0, func([]*thlpb.Event) error { return nil }); err == nil || err.Error() != want {
		t.Errorf("Run = %v, want %q", err, want)
	}
	testutil.Exec(t, db, "SET GLOBAL binlog_format='ROW'")

	testutil.Exec(t, db, "SET GLOBAL binlog_row_image='MINIMAL'")
	if _, err := x.Check(ctx); err == nil || !strings.HasPrefix(err.Error(), "binlog_row_image is MINIMAL on "+srv.Addr()) {
		t.Errorf("Check with MINIMAL row image = %v", err)
	}
	testutil.Exec(t, db, "SET GLOBAL binlog_row_image='FULL'")

	testutil.Exec(t, db, "SET GLOBAL binlog_row_metadata='MINIMAL'")
	notes, err := x.Check(ctx)
	if err != nil || len(notes) != 1 || !strings.HasPrefix(notes[0], "binlog_row_metadata is MINIMAL on "+srv.Addr()) {
		t.Errorf("Check with MINIMAL metadata = %q, %v; want one note", notes, err)
	}

	same := newExtractor(t, srv, func(c *Config) { c.ServerID = srv.Config().ServerID })
	if _, err := same.Check(ctx); err == nil || !strings.Contains(err.Error(), "give the extractor another ServerID") {
		t.Errorf("Check with the server's own id = %v", err)
	}
}

// TestColumnNamesFromSchema: without binlog_row_metadata=FULL, names,
// keys and signedness come from information_schema, reread after DDL.
func TestColumnNamesFromSchema(t *testing.T) {
	t.Parallel()
	srv, db := startDB(t, testutil.WithOptions("binlog_row_metadata=NO_LOG"))
	testutil.Exec(t, db, "CREATE DATABASE app")
	testutil.Exec(t, db, "CREATE TABLE app.t (a INT UNSIGNED, id BIGINT NOT NULL PRIMARY KEY, b BINARY(3), y YEAR)")
	x := newExtractor(t, srv, nil)
	from := currentPosition(t, x)
	col := start(t, x, from)
	// information_schema describes tables as they are now: the insert is
	// extracted before the ALTER, the one after it after.
	testutil.Exec(t, db, "INSERT INTO app.t VALUES (4294967295, -1, 'a', 2001)")
	col.wait(t, 1)
	testutil.Exec(t, db, "ALTER TABLE app.t ADD COLUMN c TINYINT UNSIGNED FIRST")
	testutil.Exec(t, db, "INSERT INTO app.t VALUES (255, 1, 2, 'b', 1999)")
	txs := col.wait(t, 3)
	first := rowChanges(t, txs[0])[0]
	if got := columnSummary(first.Columns); got != "a:u id:k b y" {
		t.Errorf("columns %q, want %q", got, "a:u id:k b y")
	}
	eqValues(t, "first insert", first.Columns, first.Rows[0].After, []*thlpb.Value{vUint(4294967295), vInt(-1), vBytes("a\x00\x00"), vInt(2001)})
	second := rowChanges(t, txs[2])[0]
	if got := columnSummary(second.Columns); got != "c:u a:u id:k b y" {
		t.Errorf("columns after ALTER %q", got)
	}
	eqValues(t, "second insert", second.Columns, second.Rows[0].After, []*thlpb.Value{vUint(255), vUint(1), vInt(2), vBytes("b\x00\x00"), vInt(1999)})
}

func columnSummary(cols []*thlpb.Column) string {
	var parts []string
	for _, c := range cols {
		s := c.Name
		if c.Unsigned {
			s += ":u"
		}
		if c.Key {
			s += ":k"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, " ")
}

func TestConfigValidate(t *testing.T) {
	ok := Config{Addr: "127.0.1.1:13306", User: "tungsten", Service: "east", SourceID: "east1"}
	if _, err := New(ok); err != nil {
		t.Fatalf("New(%+v): %v", ok, err)
	}
	d := ok.withDefaults()
	if d.ServerID < serverIDBase || d.FragmentRows != 1000 || d.FragmentBytes != 1<<20 || d.LoopSchemaPrefix != "tungsten_" {
		t.Errorf("defaults: %+v", d)
	}
	for _, tc := range []struct {
		edit func(*Config)
		want string
	}{
		{func(c *Config) { c.Addr = "east1" }, "Addr \"east1\" is not host:port"},
		{func(c *Config) { c.User = "" }, "User is empty"},
		{func(c *Config) { c.Service = "" }, "Service is empty"},
		{func(c *Config) { c.SourceID = "" }, "SourceID is empty"},
		{func(c *Config) { c.Flavor = "postgres" }, "Flavor \"postgres\" is unknown"},
		{func(c *Config) { c.FragmentRows = -1 }, "FragmentRows (-1)"},
	} {
		c := ok
		tc.edit(&c)
		_, err := New(c)
		if err == nil || !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New: %v, want %q", err, tc.want)
		}
	}
}

func TestSessionVars(t *testing.T) {
	// Q_FLAGS2 (no FK checks), Q_SQL_MODE, Q_CHARSET, Q_TIME_ZONE, then an unknown code.
	status := []byte{
		qFlags2, 0, 0, 0, 0x04,
		qSQLMode, 0x00, 0x00, 0x20, 0x40, 0, 0, 0, 0, // STRICT_TRANS_TABLES | NO_ENGINE_SUBSTITUTION
		qCharset, 45, 0, 46, 0, 8, 0,
		qTimeZone, 6, '+', '0', '1', ':', '0', '0',
		200, 1, 2, 3,
	}
	coll := collations{45: {"utf8mb4_general_ci", "utf8mb4"}, 46: {"utf8mb4_bin", "utf8mb4"}}
	got := sessionVars(status, FlavorMariaDB, coll)
	want := map[string]string{
		"foreign_key_checks": "0", "unique_checks": "1", "sql_auto_is_null": "0",
		"sql_mode":             "STRICT_TRANS_TABLES,NO_ENGINE_SUBSTITUTION",
		"character_set_client": "utf8mb4", "collation_connection": "utf8mb4_bin", "collation_server": "8",
		"time_zone": "+01:00",
	}
	if len(got) != len(want) {
		t.Errorf("sessionVars = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if s := sqlModeString(1<<32|1, FlavorMariaDB); s != "REAL_AS_FLOAT,EMPTY_STRING_IS_NULL" {
		t.Errorf("sqlModeString = %q", s)
	}
	if s := sqlModeString(1<<40, FlavorMariaDB); s != "1099511627776" {
		t.Errorf("unknown sql_mode bit: %q", s)
	}
}
