package apply

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/carbidedb/carbide/internal/testutil"
	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

func vInt(i int64) *thlpb.Value    { return &thlpb.Value{Value: &thlpb.Value_Int{Int: i}} }
func vUint(u uint64) *thlpb.Value  { return &thlpb.Value{Value: &thlpb.Value_Uint{Uint: u}} }
func vBytes(s string) *thlpb.Value { return &thlpb.Value{Value: &thlpb.Value_Bytes{Bytes: []byte(s)}} }
func vText(s string) *thlpb.Value  { return &thlpb.Value{Value: &thlpb.Value_Text{Text: s}} }
func vDec(s string) *thlpb.Value   { return &thlpb.Value{Value: &thlpb.Value_Decimal{Decimal: s}} }
func vNull() *thlpb.Value          { return &thlpb.Value{Value: &thlpb.Value_Null{Null: true}} }

func cols(names ...string) []*thlpb.Column {
	var out []*thlpb.Column
	for _, n := range names {
		out = append(out, &thlpb.Column{Name: n})
	}
	return out
}

func rowsEvent(seqno uint64, action thlpb.RowChange_Action, table string, columns []*thlpb.Column, rows ...*thlpb.Row) *thlpb.Event {
	return &thlpb.Event{
		Seqno: seqno, LastFrag: true, EventId: fmt.Sprintf("mysql-bin.000001:%016d", 100+seqno), SourceId: "east1",
		Shard: "app", SourceCommitTimeUs: time.Now().UnixMicro(),
		Changes: []*thlpb.Change{{Change: &thlpb.Change_Rows{Rows: &thlpb.RowChange{Schema: "app", Table: table, Action: action, Columns: columns, Rows: rows}}}},
	}
}

func ddl(seqno uint64, schema, sql string) *thlpb.Event {
	return &thlpb.Event{Seqno: seqno, LastFrag: true, EventId: fmt.Sprintf("mysql-bin.000001:%016d", 100+seqno), SourceId: "east1",
		Changes: []*thlpb.Change{{Change: &thlpb.Change_Statement{Statement: &thlpb.Statement{Schema: schema, Sql: sql}}}}}
}

// feed returns a Next that yields evs, then blocks until ctx ends.
func feed(evs ...*thlpb.Event) Next {
	i := 0
	return func(ctx context.Context) (*thlpb.Event, int, error) {
		if i < len(evs) {
			i++
			return evs[i-1], proto.Size(evs[i-1]), nil
		}
		<-ctx.Done()
		return nil, 0, ctx.Err()
	}
}

func newApplier(t *testing.T, addr string) *Applier {
	t.Helper()
	return openApplier(t, Config{Addr: addr, Service: "east"})
}

// openApplier opens an applier with cfg, the test's user and logger
// filled in, closed when the test ends.
func openApplier(t *testing.T, cfg Config) *Applier {
	t.Helper()
	cfg.User, cfg.Password, cfg.Logger = "tungsten", "secret", testutil.Logger(t)
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

// runUntil applies evs and waits until seqno `until` is applied.
func runUntil(t *testing.T, a *Applier, until uint64, evs ...*thlpb.Event) error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx, feed(evs...)) }()
	deadline := time.After(30 * time.Second) // a loaded CI machine takes seconds
	for {
		if p, ok := a.Position(); ok && p.Seqno >= until {
			cancel()
			<-done
			return nil
		}
		select {
		case err := <-done:
			cancel()
			return err
		case <-deadline:
			cancel()
			err := <-done // Run ends before the cleanup closes the applier
			t.Fatalf("seqno %d not applied in time (the run ended with %v)", until, err)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func TestApplyRowsAndDDL(t *testing.T) {
	testutil.RequireDB(t)
	srv := testutil.StartMariaDB(t)
	db := testutil.DB(t, srv)
	testutil.Exec(t, db, "CREATE DATABASE app")
	testutil.Exec(t, db, `CREATE TABLE app.t (id INT PRIMARY KEY, u BIGINT UNSIGNED, d DECIMAL(40,10), s VARCHAR(20) CHARACTER SET utf8mb4,
		l VARCHAR(20) CHARACTER SET latin1, b VARBINARY(10), ts DATETIME(6), g INT AS (id * 2) VIRTUAL)`)
	a := newApplier(t, srv.Addr())
	c := cols("id", "u", "d", "s", "l", "b", "ts", "g")
	row := func(id int64, s string) []*thlpb.Value {
		return []*thlpb.Value{vInt(id), vUint(18446744073709551615), vDec("-123456789012345678901234567890.0123456789"), vBytes(s), vBytes("caf\xe9"), vBytes("a\x00'\\b"), vText("2024-02-29 23:59:59.123456"), vInt(id * 2)}
	}
	evs := []*thlpb.Event{
		rowsEvent(0, thlpb.RowChange_INSERT, "t", c, &thlpb.Row{After: row(1, "héllo 🎉")}, &thlpb.Row{After: row(2, "two")}),
		rowsEvent(1, thlpb.RowChange_UPDATE, "t", c, &thlpb.Row{Before: row(2, "two"), After: row(2, "deux")}),
		rowsEvent(2, thlpb.RowChange_DELETE, "t", c, &thlpb.Row{Before: row(1, "héllo 🎉")}),
		ddl(3, "app", "ALTER TABLE t ADD COLUMN extra INT NULL"),
		rowsEvent(4, thlpb.RowChange_INSERT, "t", cols("id", "u", "d", "s", "l", "b", "ts", "g", "extra"),
			&thlpb.Row{After: append(row(3, "three"), vNull())}),
	}
	if err := runUntil(t, a, 4, evs...); err != nil {
		t.Fatal(err)
	}
	if got := testutil.QueryString(t, db, "SELECT GROUP_CONCAT(CONCAT_WS('|', id, u, d, s, HEX(l), HEX(b), ts, g, IFNULL(extra,'null')) ORDER BY id SEPARATOR ';') FROM app.t"); got !=
		"2|18446744073709551615|-123456789012345678901234567890.0123456789|deux|636166E9|6100275C62|2024-02-29 23:59:59.123456|4|null;"+
			"3|18446744073709551615|-123456789012345678901234567890.0123456789|three|636166E9|6100275C62|2024-02-29 23:59:59.123456|6|null" {
		t.Fatalf("table = %s", got)
	}
	p, ok := a.Position()
	if !ok || p.Seqno != 4 || p.EventID != "mysql-bin.000001:0000000000000104" {
		t.Fatalf("position = %+v", p)
	}
	if got := testutil.QueryString(t, db, "SELECT CONCAT(seqno, '/', eventid, '/', source_id) FROM tungsten_east.trep_commit_seqno"); got != "4/mysql-bin.000001:0000000000000104/east1" {
		t.Fatalf("tracking row = %s", got)
	}
	// A new applier resumes from the tracking row and refuses a gap.
	b := newApplier(t, srv.Addr())
	if p, _ := b.Position(); p.Seqno != 4 {
		t.Fatalf("reopened position = %d", p.Seqno)
	}
	err := runUntil(t, b, 6, rowsEvent(6, thlpb.RowChange_INSERT, "t", c, &thlpb.Row{After: row(9, "x")}))
	if !errors.Is(err, ErrSequence) {
		t.Fatalf("gap: %v", err)
	}
}

func TestApplyErrorNamesSeqnoAndStatement(t *testing.T) {
	testutil.RequireDB(t)
	srv := testutil.StartMariaDB(t)
	db := testutil.DB(t, srv)
	testutil.Exec(t, db, "CREATE DATABASE app")
	// A row this database refuses (a CHECK constraint): an error, not a
	// conflict (an INSERT of an existing key would be one).
	testutil.Exec(t, db, "CREATE TABLE app.t (id INT PRIMARY KEY, CONSTRAINT not5 CHECK (id <> 5))")
	a := newApplier(t, srv.Addr())
	c := cols("id")
	err := runUntil(t, a, 2,
		rowsEvent(0, thlpb.RowChange_INSERT, "t", c, &thlpb.Row{After: []*thlpb.Value{vInt(1)}}),
		rowsEvent(1, thlpb.RowChange_INSERT, "t", c, &thlpb.Row{After: []*thlpb.Value{vInt(5)}}),
		rowsEvent(2, thlpb.RowChange_INSERT, "t", c, &thlpb.Row{After: []*thlpb.Value{vInt(6)}}),
	)
	var ae *Error
	if !errors.As(err, &ae) || ae.Seqno != 1 || ae.SQL != "INSERT INTO `app`.`t` (`id`) VALUES (5)" {
		t.Fatalf("err = %v", err)
	}
	if p, _ := a.Position(); p.Seqno != 0 {
		t.Fatalf("applied up to %d, want 0 (the transaction before the failing one)", p.Seqno)
	}
	// Position is the committed tracking row, not what the failed block read.
	if got := testutil.QueryString(t, db, "SELECT seqno FROM tungsten_east.trep_commit_seqno"); got != "0" {
		t.Fatalf("tracking row at %s, want 0 (Position)", got)
	}
	// Skip it, as trepctl online -skip-seqno 1 does, and go on.
	a.Skip(1)
	if err := runUntil(t, a, 2,
		rowsEvent(1, thlpb.RowChange_INSERT, "t", c, &thlpb.Row{After: []*thlpb.Value{vInt(5)}}),
		rowsEvent(2, thlpb.RowChange_INSERT, "t", c, &thlpb.Row{After: []*thlpb.Value{vInt(6)}})); err != nil {
		t.Fatal(err)
	}
	if got := testutil.QueryString(t, db, "SELECT GROUP_CONCAT(id ORDER BY id) FROM app.t"); got != "1,6" {
		t.Fatalf("rows = %s", got)
	}
}

func TestFragmentedTransaction(t *testing.T) {
	testutil.RequireDB(t)
	srv := testutil.StartMariaDB(t)
	db := testutil.DB(t, srv)
	testutil.Exec(t, db, "CREATE DATABASE app")
	testutil.Exec(t, db, "CREATE TABLE app.t (id INT PRIMARY KEY, pad VARCHAR(255))")
	a := newApplier(t, srv.Addr())
	c := cols("id", "pad")
	pad := string(make([]byte, 200))
	var evs []*thlpb.Event
	id := int64(0)
	for f := 0; f < 40; f++ {
		var rows []*thlpb.Row
		for r := 0; r < 1000; r++ {
			id++
			rows = append(rows, &thlpb.Row{After: []*thlpb.Value{vInt(id), vBytes(pad)}})
		}
		ev := rowsEvent(0, thlpb.RowChange_INSERT, "t", c, rows...)
		ev.Fragno, ev.LastFrag = uint32(f), f == 39
		evs = append(evs, ev)
	}
	if err := runUntil(t, a, 0, evs...); err != nil {
		t.Fatal(err)
	}
	if got := testutil.QueryString(t, db, "SELECT COUNT(*) FROM app.t"); got != "40000" {
		t.Fatalf("rows = %s", got)
	}
}

// TestLinger: a block commits at once while commits are fast, and waits
// for more transactions (a few commit times, bounded) once the database
// is slow; the average follows the commits.
func TestLinger(t *testing.T) {
	a := &Applier{cfg: DefaultConfig()}
	if got := a.linger(); got != 0 {
		t.Fatalf("no commit yet: linger %s, want 0", got)
	}
	for i := 0; i < 20; i++ {
		a.timed(300 * time.Microsecond)
	}
	if got := a.linger(); got != 0 {
		t.Errorf("fast commits: linger %s, want 0", got)
	}
	for i := 0; i < 20; i++ {
		a.timed(5 * time.Millisecond)
	}
	if got := a.linger(); got < 15*time.Millisecond || got > 20*time.Millisecond {
		t.Errorf("5 ms commits: linger %s, want about 4 × 5 ms", got)
	}
	for i := 0; i < 20; i++ {
		a.timed(time.Second)
	}
	if got := a.linger(); got != a.cfg.MaxLinger {
		t.Errorf("1 s commits: linger %s, want the bound %s", got, a.cfg.MaxLinger)
	}
}

// TestStatementThenRows: a transaction holding a statement and then rows
// (CREATE TABLE … SELECT), over fragments. After a restart that came
// between the statement and the rows' commit, the statement's "already
// exists" lets the rows go on; a statement after rows (DML a session
// logged as a statement) is applied with them.
func TestStatementThenRows(t *testing.T) {
	testutil.RequireDB(t)
	srv := testutil.StartMariaDB(t)
	db := testutil.DB(t, srv)
	testutil.Exec(t, db, "CREATE DATABASE app")
	c := cols("id")
	ctas := func(seqno uint64, table string, from int64) []*thlpb.Event {
		st := ddl(seqno, "app", "CREATE TABLE "+table+" (id INT PRIMARY KEY)")
		st.LastFrag = false
		var evs = []*thlpb.Event{st}
		for f := 1; f <= 3; f++ {
			ev := rowsEvent(seqno, thlpb.RowChange_INSERT, table, c,
				&thlpb.Row{After: []*thlpb.Value{vInt(from + int64(2*f))}}, &thlpb.Row{After: []*thlpb.Value{vInt(from + int64(2*f+1))}})
			ev.Fragno, ev.LastFrag = uint32(f), f == 3
			evs = append(evs, ev)
		}
		return evs
	}
	// The first CREATE ran before a "crash": the restart finds the table.
	testutil.Exec(t, db, "CREATE TABLE app.a (id INT PRIMARY KEY)")
	a := newApplier(t, srv.Addr())
	evs := append(ctas(0, "a", 0), ctas(1, "b", 100)...)
	evs = append(evs, rowsEvent(2, thlpb.RowChange_INSERT, "a", c, &thlpb.Row{After: []*thlpb.Value{vInt(50)}}))
	if err := runUntil(t, a, 2, evs...); err != nil {
		t.Fatal(err)
	}
	for table, want := range map[string]string{"a": "7", "b": "6"} {
		if got := testutil.QueryString(t, db, "SELECT COUNT(*) FROM app."+table); got != want {
			t.Errorf("app.%s has %s rows, want %s", table, got, want)
		}
	}

	// Rows, then DML a session logged as a statement (binlog_format=MIXED):
	// one database transaction.
	rowsFirst := rowsEvent(3, thlpb.RowChange_INSERT, "a", c, &thlpb.Row{After: []*thlpb.Value{vInt(60)}})
	rowsFirst.Changes = append(rowsFirst.Changes, ddl(3, "app", "INSERT INTO a VALUES (61)").Changes...)
	if err := runUntil(t, a, 3, rowsFirst); err != nil {
		t.Fatal(err)
	}
	if got := testutil.QueryString(t, db, "SELECT COUNT(*) FROM app.a WHERE id IN (60, 61)"); got != "2" {
		t.Errorf("rows then a statement: %s of the 2 rows applied", got)
	}
}

// Every query the applier sends fits max_allowed_packet: a transaction
// whose SQL is longer is sent in parts, inside its database transaction;
// a row whose SQL alone is longer stops the applier before it with an
// error naming its seqno and the limit, nothing of it applied.
func TestMaxAllowedPacket(t *testing.T) {
	testutil.RequireDB(t)
	srv := testutil.StartMariaDB(t, testutil.WithOptions("max_allowed_packet=1M"))
	db := testutil.DB(t, srv)
	testutil.Exec(t, db, "CREATE DATABASE app")
	testutil.Exec(t, db, "CREATE TABLE app.b (id INT PRIMARY KEY, data LONGBLOB)")
	a := newApplier(t, srv.Addr())
	c := cols("id", "data")
	row := func(id int64, n int) *thlpb.Row {
		return &thlpb.Row{After: []*thlpb.Value{vInt(id), vBytes(strings.Repeat("a", n))}}
	}
	// Seqno 0: three fragments of 400 KB rows, 1.2 MB of SQL in all.
	var evs []*thlpb.Event
	for f := 0; f < 3; f++ {
		ev := rowsEvent(0, thlpb.RowChange_INSERT, "b", c, row(int64(f), 400<<10))
		ev.Fragno, ev.LastFrag = uint32(f), f == 2
		evs = append(evs, ev)
	}
	evs = append(evs, rowsEvent(1, thlpb.RowChange_INSERT, "b", c, row(10, 10)), rowsEvent(2, thlpb.RowChange_INSERT, "b", c, row(11, 1100<<10)))
	err := runUntil(t, a, 2, evs...)
	var ae *Error
	if !errors.As(err, &ae) || !errors.Is(err, ErrTooLarge) || ae.Seqno != 2 || !strings.Contains(err.Error(), "max_allowed_packet of 1048576 bytes") {
		t.Fatalf("err = %v", err)
	}
	if p, _ := a.Position(); p.Seqno != 1 {
		t.Fatalf("applied up to %d, want 1", p.Seqno)
	}
	if got := testutil.QueryString(t, db, "SELECT GROUP_CONCAT(CONCAT(id, ':', LENGTH(data)) ORDER BY id) FROM app.b"); got != "0:409600,1:409600,2:409600,10:10" {
		t.Fatalf("rows = %s", got)
	}
}

// A statement run with collation_connection utf32 (the session of MariaDB's
// vcol_utf32 test) must not change how the applier's own literals read
// afterwards: the reset used to send time_zone='+00:00' as utf32 and stop
// with "Unknown or incorrect time zone".
func TestStatementInUTF32Session(t *testing.T) {
	testutil.RequireDB(t)
	srv := testutil.StartMariaDB(t)
	db := testutil.DB(t, srv)
	testutil.Exec(t, db, "CREATE DATABASE app")
	a := newApplier(t, srv.Addr())
	utf32 := func(seqno uint64, sql string) *thlpb.Event {
		ev := ddl(seqno, "app", sql)
		ev.GetChanges()[0].GetStatement().Session = map[string]string{
			"character_set_client": "latin1", "collation_connection": "utf32_general_ci", "collation_server": "latin1_swedish_ci",
			"time_zone": "SYSTEM", "sql_mode": "STRICT_TRANS_TABLES",
		}
		return ev
	}
	evs := []*thlpb.Event{
		utf32(0, "CREATE TABLE t (id INT PRIMARY KEY, s VARCHAR(10), d DATETIME)"),
		utf32(1, "INSERT INTO t VALUES (1, 'abc', '2024-01-02 03:04:05')"),
		rowsEvent(2, thlpb.RowChange_INSERT, "t", cols("id", "s", "d"), &thlpb.Row{After: []*thlpb.Value{vInt(2), vBytes("def"), vText("2024-01-02 03:04:05")}}),
	}
	if err := runUntil(t, a, 2, evs...); err != nil {
		t.Fatal(err)
	}
	if got := testutil.QueryString(t, db, "SELECT GROUP_CONCAT(CONCAT_WS('|', id, s, d) ORDER BY id) FROM app.t"); got != "1|abc|2024-01-02 03:04:05,2|def|2024-01-02 03:04:05" {
		t.Fatalf("table = %s", got)
	}
}

// A CREATE TABLE whose source made it with another default engine makes
// it with that engine here, and the next statement has the default again.
func TestStatementDefaultEngine(t *testing.T) {
	testutil.RequireDB(t)
	srv := testutil.StartMariaDB(t)
	db := testutil.DB(t, srv)
	testutil.Exec(t, db, "CREATE DATABASE app")
	a := newApplier(t, srv.Addr())
	m := ddl(0, "app", "CREATE TABLE m (id INT PRIMARY KEY)")
	m.GetChanges()[0].GetStatement().Session = map[string]string{"default_storage_engine": "MyISAM"}
	if err := runUntil(t, a, 1, m, ddl(1, "app", "CREATE TABLE i (id INT PRIMARY KEY)")); err != nil {
		t.Fatal(err)
	}
	if got := testutil.QueryString(t, db, "SELECT GROUP_CONCAT(TABLE_NAME, ':', ENGINE ORDER BY TABLE_NAME) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'app'"); got != "i:InnoDB,m:MyISAM" {
		t.Fatalf("engines = %s", got)
	}
}
