package apply

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/carbidedb/carbide/internal/testutil"
	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

// newConflictApplier is newApplier with a conflict policy; order ranks the
// sites for converge.
func newConflictApplier(t *testing.T, addr string, channels int, policy Policy, order ...string) *Applier {
	t.Helper()
	a, err := New(Config{Addr: addr, User: "tungsten", Password: "secret", Service: "east", Channels: channels, Logger: testutil.Logger(t),
		Conflicts: Conflicts{Policy: policy, SiteOrder: order}})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

// from marks ev as written by origin's clients.
func from(origin string, ev *thlpb.Event) *thlpb.Event {
	ev.OriginService = origin
	return ev
}

func row(vals ...*thlpb.Value) []*thlpb.Value { return vals }

// conflictRows returns the recorded conflicts as "seqno kind action key
// decision" lines, oldest first.
func conflictRows(t *testing.T, db *sql.DB) []string {
	t.Helper()
	rows, err := db.Query("SELECT seqno, kind, action, row_key, decision, origin, policy FROM tungsten_east.conflicts ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var seqno, kind, action, key, decision, origin, policy string
		if err := rows.Scan(&seqno, &kind, &action, &key, &decision, &origin, &policy); err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%s %s %s %s %s (%s, %s)", seqno, action, key, kind, decision, origin, policy))
	}
	return out
}

func freshApp(t *testing.T, db *sql.DB, ddl ...string) {
	t.Helper()
	for _, q := range append([]string{"DROP DATABASE IF EXISTS app", "DROP DATABASE IF EXISTS tungsten_east", "CREATE DATABASE app"}, ddl...) {
		testutil.Exec(t, db, q)
	}
}

// An UPDATE whose before-image differs from the target row, in a block
// between two plain transactions: each policy's outcome, its record, and
// the transactions around it applied.
func TestConflictUpdatePolicies(t *testing.T) {
	testutil.RequireDB(t)
	srv := testutil.StartMariaDB(t)
	db := testutil.DB(t, srv)
	c := cols("id", "v")
	for _, tc := range []struct {
		name     string
		policy   Policy
		origin   string
		want     string // app.t's row 1 afterwards
		decision string // "" for stop
	}{
		{"stop", PolicyStop, "east", "west", ""},
		{"log", PolicyLog, "east", "east", "applied"},
		{"skip", PolicySkip, "east", "west", "kept"},
		{"converge-winner", PolicyConverge, "east", "east", "applied"},
		{"converge-loser", PolicyConverge, "west", "west", "kept"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			freshApp(t, db, "CREATE TABLE app.t (id INT PRIMARY KEY, v VARCHAR(20))", "INSERT INTO app.t VALUES (1, 'west')")
			a := newConflictApplier(t, srv.Addr(), 1, tc.policy, "east", "west")
			evs := []*thlpb.Event{
				from(tc.origin, rowsEvent(0, thlpb.RowChange_INSERT, "t", c, &thlpb.Row{After: row(vInt(2), vBytes("two"))})),
				from(tc.origin, rowsEvent(1, thlpb.RowChange_UPDATE, "t", c, &thlpb.Row{Before: row(vInt(1), vBytes("orig")), After: row(vInt(1), vBytes(tc.origin))})),
				from(tc.origin, rowsEvent(2, thlpb.RowChange_INSERT, "t", c, &thlpb.Row{After: row(vInt(3), vBytes("three"))})),
			}
			err := runUntil(t, a, 2, evs...)
			if tc.policy == PolicyStop {
				var ae *Error
				if !errors.As(err, &ae) || ae.Seqno != 1 || !errors.Is(err, ErrConflict) {
					t.Fatalf("err = %v, want a conflict at seqno 1", err)
				}
				for _, s := range []string{"app.t", "id=1", `{"id":1,"v":"orig"}`, `{"id":1,"v":"west"}`, `{"id":1,"v":"east"}`, "from east"} {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("the error does not say %s: %v", s, err)
					}
				}
				if p, _ := a.Position(); p.Seqno != 0 {
					t.Errorf("position %d, want 0 (before the conflict)", p.Seqno)
				}
				if got := testutil.QueryString(t, db, "SELECT GROUP_CONCAT(id, ':', v ORDER BY id) FROM app.t"); got != "1:west,2:two" {
					t.Errorf("rows = %s", got)
				}
				if got := conflictRows(t, db); len(got) != 0 {
					t.Errorf("a stop recorded %v", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := testutil.QueryString(t, db, "SELECT GROUP_CONCAT(id, ':', v ORDER BY id) FROM app.t"); got != "1:"+tc.want+",2:two,3:three" {
				t.Errorf("rows = %s", got)
			}
			want := fmt.Sprintf("1 UPDATE id=1 row differs %s (%s, %s)", tc.decision, tc.origin, tc.policy)
			if got := conflictRows(t, db); len(got) != 1 || got[0] != want {
				t.Errorf("conflicts = %q, want %q", got, want)
			}
			images := testutil.QueryString(t, db, "SELECT CONCAT_WS('|', before_image, target_image, after_image) FROM tungsten_east.conflicts")
			if want := fmt.Sprintf(`{"id":1,"v":"orig"}|{"id":1,"v":"west"}|{"id":1,"v":"%s"}`, tc.origin); images != want {
				t.Errorf("images %s, want %s", images, want)
			}
			if a.Conflicts() != 1 {
				t.Errorf("Conflicts() = %d", a.Conflicts())
			}
			if got := testutil.QueryString(t, db, "SELECT seqno FROM tungsten_east.trep_commit_seqno"); got != "2" {
				t.Errorf("tracking row at %s", got)
			}
		})
	}
}

// A DELETE crossing an UPDATE of the same row, an UPDATE of a row the
// other site deleted, a DELETE of a row already gone, under converge:
// whichever order a host sees them in, the winning site's change stands.
func TestConflictDeleteAndUpdate(t *testing.T) {
	testutil.RequireDB(t)
	srv := testutil.StartMariaDB(t)
	db := testutil.DB(t, srv)
	c := cols("id", "v")
	del := func(seqno uint64, origin string, id int64, v string) *thlpb.Event {
		return from(origin, rowsEvent(seqno, thlpb.RowChange_DELETE, "t", c, &thlpb.Row{Before: row(vInt(id), vBytes(v))}))
	}
	upd := func(seqno uint64, origin string, id int64, v0, v1 string) *thlpb.Event {
		return from(origin, rowsEvent(seqno, thlpb.RowChange_UPDATE, "t", c, &thlpb.Row{Before: row(vInt(id), vBytes(v0)), After: row(vInt(id), vBytes(v1))}))
	}
	for _, tc := range []struct {
		name   string
		target string // INSERTs making the target's rows
		ev     *thlpb.Event
		want   string
		record string
	}{
		// east (first in the order) deleted row 1; west had updated it.
		{"delete-wins-over-update", "(1,'w')", del(0, "east", 1, "o"), "", "0 DELETE id=1 row differs applied (east, converge)"},
		// west deleted row 1; east had updated it: the update stays.
		{"delete-loses-to-update", "(1,'e')", del(0, "west", 1, "o"), "1:e", "0 DELETE id=1 row differs kept (west, converge)"},
		// east updated row 1, which west had deleted: the row comes back.
		{"update-recreates", "", upd(0, "east", 1, "o", "e"), "1:e", "0 UPDATE id=1 row missing applied (east, converge)"},
		// west updated row 1, which east had deleted: it stays deleted.
		{"update-of-deleted-loses", "", upd(0, "west", 1, "o", "w"), "", "0 UPDATE id=1 row missing kept (west, converge)"},
		// both deleted row 1.
		{"delete-of-deleted", "", del(0, "west", 1, "o"), "", "0 DELETE id=1 row missing kept (west, converge)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ddl := []string{"CREATE TABLE app.t (id INT PRIMARY KEY, v VARCHAR(20))"}
			if tc.target != "" {
				ddl = append(ddl, "INSERT INTO app.t VALUES "+tc.target)
			}
			freshApp(t, db, ddl...)
			a := newConflictApplier(t, srv.Addr(), 1, PolicyConverge, "east", "west")
			if err := runUntil(t, a, 0, tc.ev); err != nil {
				t.Fatal(err)
			}
			if got := testutil.QueryString(t, db, "SELECT IFNULL(GROUP_CONCAT(id, ':', v ORDER BY id), '') FROM app.t"); got != tc.want {
				t.Errorf("rows = %q, want %q", got, tc.want)
			}
			if got := conflictRows(t, db); len(got) != 1 || got[0] != tc.record {
				t.Errorf("conflicts = %q, want %q", got, tc.record)
			}
		})
	}
}

// An INSERT of a key the target holds: with other values a conflict, with
// the same values nothing (the row is as the source made it); and an
// INSERT colliding with another row on a unique key.
func TestConflictInsertExistingKey(t *testing.T) {
	testutil.RequireDB(t)
	srv := testutil.StartMariaDB(t)
	db := testutil.DB(t, srv)
	freshApp(t, db, "CREATE TABLE app.t (id INT PRIMARY KEY, v VARCHAR(20), u INT, UNIQUE KEY (u))",
		"INSERT INTO app.t VALUES (1, 'same', 10), (2, 'west', 20), (3, 'west', 30)")
	a := newConflictApplier(t, srv.Addr(), 1, PolicyConverge, "east", "west")
	c := cols("id", "v", "u")
	ins := func(seqno uint64, origin string, id int64, v string, u int64) *thlpb.Event {
		return from(origin, rowsEvent(seqno, thlpb.RowChange_INSERT, "t", c, &thlpb.Row{After: row(vInt(id), vBytes(v), vInt(u))}))
	}
	err := runUntil(t, a, 4,
		ins(0, "east", 1, "same", 10), // the same row: nothing
		ins(1, "east", 2, "east", 20), // other values, east wins: east's row
		ins(2, "west", 3, "wes2", 30), // other values, west loses: the target's
		ins(3, "east", 4, "east", 30), // u=30 is row 3's: east wins, row 3 goes
		ins(4, "west", 5, "west", 20), // u=20 is row 2's: west loses
	)
	if err != nil {
		t.Fatal(err)
	}
	if got := testutil.QueryString(t, db, "SELECT GROUP_CONCAT(id, ':', v, ':', u ORDER BY id) FROM app.t"); got != "1:same:10,2:east:20,4:east:30" {
		t.Errorf("rows = %s", got)
	}
	want := []string{
		"1 INSERT id=2 row exists applied (east, converge)",
		"2 INSERT id=3 row exists kept (west, converge)",
		"3 INSERT id=4 unique key applied (east, converge)",
		"4 INSERT id=5 unique key kept (west, converge)",
	}
	if got := conflictRows(t, db); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("conflicts =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// Two sites move different rows onto the same unique value: every host
// ends with the winner's row alone, whichever change it applies first.
// East (winning) moves row 1 from u=10 to 30, west row 2 from 20 to 30.
// Where west's change comes second, its row goes, as it goes where it
// comes first and east's change then deletes the row holding 30.
func TestConflictUniqueMoveBothOrders(t *testing.T) {
	testutil.RequireDB(t)
	srv := testutil.StartMariaDB(t)
	db := testutil.DB(t, srv)
	c := cols("id", "u", "v")
	move := func(seqno uint64, origin string, id, was, to int64) *thlpb.Event {
		return from(origin, rowsEvent(seqno, thlpb.RowChange_UPDATE, "t", c,
			&thlpb.Row{Before: row(vInt(id), vInt(was), vBytes("orig")), After: row(vInt(id), vInt(to), vBytes(origin))}))
	}
	for _, tc := range []struct {
		name  string
		evs   []*thlpb.Event
		kinds string
	}{
		{"east first", []*thlpb.Event{move(0, "east", 1, 10, 30), move(1, "west", 2, 20, 30)}, "[1 UPDATE id=2 unique key kept (west, converge)]"},
		{"west first", []*thlpb.Event{move(0, "west", 2, 20, 30), move(1, "east", 1, 10, 30)}, "[1 UPDATE id=1 unique key applied (east, converge)]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			freshApp(t, db, "CREATE TABLE app.t (id INT PRIMARY KEY, u INT, v VARCHAR(20), UNIQUE KEY (u))",
				"INSERT INTO app.t VALUES (1, 10, 'orig'), (2, 20, 'orig')")
			a := newConflictApplier(t, srv.Addr(), 1, PolicyConverge, "east", "west")
			if err := runUntil(t, a, 1, tc.evs...); err != nil {
				t.Fatal(err)
			}
			if got := testutil.QueryString(t, db, "SELECT GROUP_CONCAT(id, ':', u, ':', v ORDER BY id) FROM app.t"); got != "1:30:east" {
				t.Errorf("rows = %s, want east's row alone (1:30:east)", got)
			}
			if got := fmt.Sprint(conflictRows(t, db)); got != tc.kinds {
				t.Errorf("conflicts = %s, want %s", got, tc.kinds)
			}
		})
	}
}

// A table without a key: a change whose row is not there is a conflict;
// log applies the source's row, converge cannot tell the row and stops.
func TestConflictKeyless(t *testing.T) {
	testutil.RequireDB(t)
	srv := testutil.StartMariaDB(t)
	db := testutil.DB(t, srv)
	c := cols("a", "f")
	upd := from("east", rowsEvent(0, thlpb.RowChange_UPDATE, "k", c,
		&thlpb.Row{Before: row(vInt(1), fl(0.1)), After: row(vInt(2), fl(0.1))}))
	for _, policy := range []Policy{PolicyLog, PolicyConverge} {
		t.Run(string(policy), func(t *testing.T) {
			freshApp(t, db, "CREATE TABLE app.k (a INT, f FLOAT)", "INSERT INTO app.k VALUES (9, 0.1)")
			a := newConflictApplier(t, srv.Addr(), 1, policy, "east", "west")
			err := runUntil(t, a, 0, upd)
			if policy == PolicyConverge {
				if !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "no primary key") {
					t.Fatalf("err = %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := testutil.QueryString(t, db, "SELECT GROUP_CONCAT(a, ':', f ORDER BY a) FROM app.k"); got != "2:0.1,9:0.1" {
				t.Errorf("rows = %s", got)
			}
			if got := conflictRows(t, db); len(got) != 1 || got[0] != "0 UPDATE (no key) row missing applied (east, log)" {
				t.Errorf("conflicts = %q", got)
			}
		})
	}
	// The row there, its FLOAT matched exactly: no conflict.
	freshApp(t, db, "CREATE TABLE app.k (a INT, f FLOAT)", "INSERT INTO app.k VALUES (1, 0.1)")
	a := newConflictApplier(t, srv.Addr(), 1, PolicyStop)
	if err := runUntil(t, a, 0, upd); err != nil {
		t.Fatal(err)
	}
	if got := testutil.QueryString(t, db, "SELECT GROUP_CONCAT(a, ':', f ORDER BY a) FROM app.k"); got != "2:0.1" {
		t.Errorf("rows = %s", got)
	}
}

func fl(f float32) *thlpb.Value { return &thlpb.Value{Value: &thlpb.Value_Float{Float: f}} }

// A change of letter case or of trailing spaces is a change: strings of
// the non-key columns compare in their character set's binary collation.
func TestConflictCaseOnlyChange(t *testing.T) {
	testutil.RequireDB(t)
	srv := testutil.StartMariaDB(t)
	db := testutil.DB(t, srv)
	freshApp(t, db, "CREATE TABLE app.t (id VARCHAR(10) CHARACTER SET utf8mb4 PRIMARY KEY, v VARCHAR(20) CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci)",
		"INSERT INTO app.t VALUES ('K', 'West'), ('k2', 'same')")
	a := newConflictApplier(t, srv.Addr(), 1, PolicySkip)
	c := cols("id", "v")
	err := runUntil(t, a, 1,
		// The key matches whatever its case (rows are found by key as
		// the column compares); the value differs in case only.
		rowsEvent(0, thlpb.RowChange_UPDATE, "t", c, &thlpb.Row{Before: row(vBytes("k"), vBytes("west")), After: row(vBytes("k"), vBytes("east"))}),
		rowsEvent(1, thlpb.RowChange_UPDATE, "t", c, &thlpb.Row{Before: row(vBytes("k2"), vBytes("same")), After: row(vBytes("k2"), vBytes("new"))}))
	if err != nil {
		t.Fatal(err)
	}
	if got := testutil.QueryString(t, db, "SELECT GROUP_CONCAT(id, ':', v ORDER BY id) FROM app.t"); got != "K:West,k2:new" {
		t.Errorf("rows = %s", got)
	}
	if got := conflictRows(t, db); len(got) != 1 || got[0] != `0 UPDATE id="k" row differs kept (east, skip)` {
		t.Errorf("conflicts = %q", got)
	}
}

// Conflicts met by blocks applied in parallel: each failed block is
// resolved in seqno order, every conflict recorded once.
func TestConflictParallel(t *testing.T) {
	testutil.RequireDB(t)
	srv := testutil.StartMariaDB(t)
	db := testutil.DB(t, srv)
	freshApp(t, db, "CREATE TABLE app.t (id INT PRIMARY KEY, v INT)")
	const rows = 200
	for i := 0; i < rows; i++ {
		// Every tenth row holds another site's value.
		v := 0
		if i%10 == 0 {
			v = -1
		}
		testutil.Exec(t, db, fmt.Sprintf("INSERT INTO app.t VALUES (%d, %d)", i, v))
	}
	a := newConflictApplier(t, srv.Addr(), 4, PolicyConverge, "east", "west")
	c := cols("id", "v")
	var evs []*thlpb.Event
	for i := 0; i < rows; i++ {
		evs = append(evs, from("east", rowsEvent(uint64(i), thlpb.RowChange_UPDATE, "t", c,
			&thlpb.Row{Before: row(vInt(int64(i)), vInt(0)), After: row(vInt(int64(i)), vInt(1))})))
	}
	if err := runUntil(t, a, rows-1, evs...); err != nil {
		t.Fatal(err)
	}
	if got := testutil.QueryString(t, db, "SELECT CONCAT(COUNT(*), '/', SUM(v)) FROM app.t"); got != fmt.Sprintf("%d/%d", rows, rows) {
		t.Errorf("rows/sum = %s, want every row 1 (east wins)", got)
	}
	if got := testutil.QueryString(t, db, "SELECT CONCAT(COUNT(*), '/', COUNT(DISTINCT seqno), '/', SUM(seqno % 10)) FROM tungsten_east.conflicts"); got != "20/20/0" {
		t.Errorf("conflicts count/distinct/sum(seqno%%10) = %s, want 20/20/0", got)
	}
}

// A replicator that stops (a crash) while conflict mode works through a
// block records each conflict once: its records commit with the tracking
// row, transaction by transaction.
func TestConflictReplayAfterCrash(t *testing.T) {
	testutil.RequireDB(t)
	srv := testutil.StartMariaDB(t)
	db := testutil.DB(t, srv)
	freshApp(t, db, "CREATE TABLE app.t (id INT PRIMARY KEY, v INT)", "INSERT INTO app.t VALUES (0, -1), (1, -1), (2, -1), (3, 0)")
	c := cols("id", "v")
	var evs []*thlpb.Event
	for i := int64(0); i < 4; i++ {
		evs = append(evs, rowsEvent(uint64(i), thlpb.RowChange_UPDATE, "t", c, &thlpb.Row{Before: row(vInt(i), vInt(0)), After: row(vInt(i), vInt(1))}))
	}
	a := newConflictApplier(t, srv.Addr(), 1, PolicyLog)
	crash := errors.New("crash")
	a.afterResolve = func(seqno uint64) error {
		if seqno == 1 {
			return crash
		}
		return nil
	}
	if err := runUntil(t, a, 3, evs...); !errors.Is(err, crash) {
		t.Fatalf("err = %v", err)
	}
	if got := testutil.QueryString(t, db, "SELECT seqno FROM tungsten_east.trep_commit_seqno"); got != "1" {
		t.Fatalf("tracking row at %s, want 1", got)
	}
	b := newConflictApplier(t, srv.Addr(), 1, PolicyLog)
	if b.Conflicts() != 2 {
		t.Errorf("a reopened applier counts %d conflicts, want 2", b.Conflicts())
	}
	if err := runUntil(t, b, 3, evs[2:]...); err != nil {
		t.Fatal(err)
	}
	if got := testutil.QueryString(t, db, "SELECT GROUP_CONCAT(seqno ORDER BY id) FROM tungsten_east.conflicts"); got != "0,1,2" {
		t.Errorf("conflicts recorded for seqnos %s, want 0,1,2", got)
	}
	if got := testutil.QueryString(t, db, "SELECT GROUP_CONCAT(v ORDER BY id) FROM app.t"); got != "1,1,1,1" {
		t.Errorf("rows = %s", got)
	}
}

// A block holding a statement after rows goes as a multi-statement script
// (not one compound statement): its guards stand as statements of their
// own, and detect the same.
func TestConflictInMultiStatementBlock(t *testing.T) {
	testutil.RequireDB(t)
	srv := testutil.StartMariaDB(t)
	db := testutil.DB(t, srv)
	freshApp(t, db, "CREATE TABLE app.t (id INT PRIMARY KEY, v INT)", "INSERT INTO app.t VALUES (1, 5)")
	a := newConflictApplier(t, srv.Addr(), 1, PolicySkip)
	c := cols("id", "v")
	mixed := rowsEvent(0, thlpb.RowChange_UPDATE, "t", c, &thlpb.Row{Before: row(vInt(1), vInt(0)), After: row(vInt(1), vInt(1))})
	mixed.Changes = append(mixed.Changes, ddl(0, "app", "INSERT INTO t VALUES (2, 2)").Changes...)
	if err := runUntil(t, a, 0, mixed); err != nil {
		t.Fatal(err)
	}
	if got := testutil.QueryString(t, db, "SELECT GROUP_CONCAT(id, ':', v ORDER BY id) FROM app.t"); got != "1:5,2:2" {
		t.Errorf("rows = %s", got)
	}
	if got := conflictRows(t, db); len(got) != 1 || got[0] != "0 UPDATE id=1 row differs kept (east, skip)" {
		t.Errorf("conflicts = %q", got)
	}
}

// A transaction large enough to be sent in parts meets a conflict in a
// part already sent: it is applied again in conflict mode from its first
// fragment, and its later fragments follow in conflict mode.
func TestConflictInLargeTransaction(t *testing.T) {
	testutil.RequireDB(t)
	srv := testutil.StartMariaDB(t)
	db := testutil.DB(t, srv)
	freshApp(t, db, "CREATE TABLE app.b (id INT PRIMARY KEY, data LONGBLOB)", "INSERT INTO app.b VALUES (0, 'west')")
	a := newConflictApplier(t, srv.Addr(), 1, PolicyConverge, "east", "west")
	c := cols("id", "data")
	big := strings.Repeat("b", 1<<20)
	var evs []*thlpb.Event
	first := rowsEvent(0, thlpb.RowChange_UPDATE, "b", c, &thlpb.Row{Before: row(vInt(0), vBytes("orig")), After: row(vInt(0), vBytes("east"))})
	first.LastFrag = false
	evs = append(evs, first)
	for f := 1; f <= 8; f++ {
		ev := rowsEvent(0, thlpb.RowChange_INSERT, "b", c, &thlpb.Row{After: row(vInt(int64(f)), vBytes(big))})
		ev.Fragno, ev.LastFrag = uint32(f), f == 8
		evs = append(evs, ev)
	}
	evs = append(evs, rowsEvent(1, thlpb.RowChange_INSERT, "b", c, &thlpb.Row{After: row(vInt(100), vBytes("after"))}))
	if err := runUntil(t, a, 1, evs...); err != nil {
		t.Fatal(err)
	}
	if got := testutil.QueryString(t, db, "SELECT CONCAT(COUNT(*), ':', (SELECT data FROM app.b WHERE id = 0)) FROM app.b"); got != "10:east" {
		t.Errorf("rows:row 0 = %s, want 10:east", got)
	}
	if got := conflictRows(t, db); len(got) != 1 || got[0] != "0 UPDATE id=0 row differs applied (east, converge)" {
		t.Errorf("conflicts = %q", got)
	}
}

// A block changing rows of two tables verifies them in its own statement
// (or, when it cannot, reads them in one UNION ALL): a row of the second
// that differs is a conflict all the same, the first table's row is
// applied, and nothing else is taken for one.
func TestConflictInTwoTables(t *testing.T) {
	testutil.RequireDB(t)
	for _, how := range []string{"precheck", "union"} {
		t.Run(how, func(t *testing.T) { conflictInTwoTables(t, how == "union") })
	}
}

func conflictInTwoTables(t *testing.T, union bool) {
	srv := testutil.StartMariaDB(t)
	db := testutil.DB(t, srv)
	freshApp(t, db, "CREATE TABLE app.u1 (id INT PRIMARY KEY, v VARCHAR(20))", "CREATE TABLE app.u2 (id INT PRIMARY KEY, d DECIMAL(5,2), v VARCHAR(20))",
		"INSERT INTO app.u1 VALUES (1, 'orig'), (2, 'orig')", "INSERT INTO app.u2 VALUES (1, 1.50, 'west'), (2, -0.25, 'orig')")
	a := newConflictApplier(t, srv.Addr(), 1, PolicySkip)
	a.noPrecheck = union
	c1, c2 := cols("id", "v"), cols("id", "d", "v")
	evs := []*thlpb.Event{
		rowsEvent(0, thlpb.RowChange_UPDATE, "u1", c1, &thlpb.Row{Before: row(vInt(1), vBytes("orig")), After: row(vInt(1), vBytes("east"))}),
		rowsEvent(1, thlpb.RowChange_UPDATE, "u2", c2, &thlpb.Row{Before: row(vInt(1), vDec("1.50"), vBytes("orig")), After: row(vInt(1), vDec("1.50"), vBytes("east"))}),
		rowsEvent(2, thlpb.RowChange_UPDATE, "u2", c2, &thlpb.Row{Before: row(vInt(2), vDec("-0.25"), vBytes("orig")), After: row(vInt(2), vDec("-0.25"), vBytes("east"))}),
		rowsEvent(3, thlpb.RowChange_DELETE, "u1", c1, &thlpb.Row{Before: row(vInt(2), vBytes("orig"))}),
	}
	if err := runUntil(t, a, 3, evs...); err != nil {
		t.Fatal(err)
	}
	if union && a.unionReads.Load() == 0 {
		t.Error("the block's locking reads did not go as one UNION ALL")
	}
	if !union && a.prechecks.Load() == 0 {
		t.Error("the block did not verify its rows in its own statement")
	}
	if got := testutil.QueryString(t, db, "SELECT GROUP_CONCAT(id, ':', v ORDER BY id) FROM app.u1"); got != "1:east" {
		t.Errorf("app.u1 = %s", got)
	}
	if got := testutil.QueryString(t, db, "SELECT GROUP_CONCAT(id, ':', v ORDER BY id) FROM app.u2"); got != "1:west,2:east" {
		t.Errorf("app.u2 = %s", got)
	}
	if got := conflictRows(t, db); len(got) != 1 || !strings.HasPrefix(got[0], "1 UPDATE id=1 row differs kept") {
		t.Errorf("conflicts = %q, want u2's row 1 kept", got)
	}
}
