package apply

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/carbidedb/carbide/internal/testutil"
	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

// TestConflictInsertOfConcurrentlyDeletedKey: an INSERT whose key the
// other site deleted after what the INSERT's source had applied of it (as
// that site's THL on this host says: Config.Deleted) is a conflict of its
// own kind, resolved by the policy: east (first in the order) inserts
// without asking (the answer would change nothing), west's INSERT is kept
// out. An INSERT whose key no concurrent delete
// touched, or without causal positions, applies as ever; the question
// names the site and the seqno the source had applied, once per block
// and site with the block's statements run (their locks held), then for
// each row in conflict mode.
func TestConflictInsertOfConcurrentlyDeletedKey(t *testing.T) {
	testutil.RequireDB(t)
	srv := testutil.StartMariaDB(t)
	db := testutil.DB(t, srv)
	for _, channels := range []int{1, 4} {
		t.Run(fmt.Sprintf("channels=%d", channels), func(t *testing.T) { testInsertOfConcurrentlyDeletedKey(t, srv.Addr(), db, channels) })
	}
}

func testInsertOfConcurrentlyDeletedKey(t *testing.T, addr string, db *sql.DB, channels int) {
	freshApp(t, db, "CREATE TABLE app.t (id INT PRIMARY KEY, v VARCHAR(20))")
	c := []*thlpb.Column{{Name: "id", Key: true}, {Name: "v"}}
	keyOf := func(id int64) string {
		k, _ := RowKey(&thlpb.RowChange{Columns: c}, row(vInt(id), vBytes("x")))
		return k
	}
	deletedBy := map[string]string{"west": keyOf(2), "east": keyOf(3)}
	var asked []string
	// East's primary (a writable database of site east): everything of
	// east is applied here, so a west INSERT is always asked about.
	var mu sync.Mutex
	a := openApplier(t, Config{Addr: addr, Service: "east", Site: "east", Channels: channels, BlockSize: 2,
		Conflicts: Conflicts{Policy: PolicyConverge, SiteOrder: []string{"east", "west"}},
		Deleted: func(_ context.Context, svc string, qs []DeletedQuery) ([]bool, error) {
			// Asked holding the rows' locks: a delete committed before
			// is in that site's THL, and none can come after.
			if n := testutil.QueryString(t, db, "SELECT COUNT(*) FROM information_schema.INNODB_TRX WHERE trx_lock_structs > 0"); n == "0" {
				t.Errorf("asked with %s transactions holding locks, want the applier's", n)
			}
			mu.Lock()
			defer mu.Unlock()
			out := make([]bool, len(qs))
			for i, q := range qs {
				asked = append(asked, fmt.Sprintf("%s>%d %s.%s", svc, q.After, q.Schema, q.Table))
				out[i] = deletedBy[svc] == q.Key
			}
			return out, nil
		}})
	ins := func(seqno uint64, origin string, id int64, after ...*thlpb.After) *thlpb.Event {
		ev := from(origin, rowsEvent(seqno, thlpb.RowChange_INSERT, "t", c, &thlpb.Row{After: row(vInt(id), vBytes(origin))}))
		ev.After = after
		return ev
	}
	err := runUntil(t, a, 3,
		ins(0, "west", 1, &thlpb.After{Service: "east", Seqno: 9}), // nothing deleted: applied
		ins(1, "east", 2, &thlpb.After{Service: "west", Seqno: 4}), // west deleted id 2: east wins
		ins(2, "west", 3, &thlpb.After{Service: "east", Seqno: 9}), // east deleted id 3: west loses
		ins(3, "west", 4), // no causal positions: applied
	)
	if err != nil {
		t.Fatal(err)
	}
	if got := testutil.QueryString(t, db, "SELECT GROUP_CONCAT(id, ':', v ORDER BY id) FROM app.t"); got != "1:west,2:east,4:west" {
		t.Errorf("rows = %s, want 1:west,2:east,4:west", got)
	}
	// East's INSERT wins whatever west deleted (converge, east first):
	// not asked about, not recorded here; west's loses to east's delete.
	want := []string{
		"2 INSERT id=3 row deleted kept (west, converge)",
	}
	if got := conflictRows(t, db); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("conflicts =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// Once per block and site (the first yes ends it; a parallel worker's
	// yes and the serial commit after it ask again), then row by row in
	// conflict mode: only this question, ever.
	slices.Sort(asked)
	if got := strings.Join(slices.Compact(slices.Clone(asked)), ", "); got != "east>9 app.t" {
		t.Errorf("asked %s", strings.Join(asked, ", "))
	}
}

// TestConflictOfConcurrentlyChangedRow: an UPDATE or DELETE from the
// losing site whose row holds its before-image, but which the winning
// site changed after what its source had applied of it (equal values by
// chance: both set v='a'), is a conflict (changed concurrently) the
// winner keeps; a row no concurrent change touched applies as ever, and
// the winner's own changes are not asked about.
func TestConflictOfConcurrentlyChangedRow(t *testing.T) {
	testutil.RequireDB(t)
	srv := testutil.StartMariaDB(t)
	db := testutil.DB(t, srv)
	for _, channels := range []int{1, 4} {
		t.Run(fmt.Sprintf("channels=%d", channels), func(t *testing.T) {
			freshApp(t, db, "CREATE TABLE app.t (id INT PRIMARY KEY, v VARCHAR(20))", "INSERT INTO app.t VALUES (1, 'a'), (2, 'a'), (3, 'a'), (4, 'a')")
			c := []*thlpb.Column{{Name: "id", Key: true}, {Name: "v"}}
			keyOf := func(id int64) string {
				k, _ := RowKey(&thlpb.RowChange{Columns: c}, row(vInt(id), vBytes("x")))
				return k
			}
			changedByEast := map[string]bool{keyOf(1): true, keyOf(2): true}
			var mu sync.Mutex
			var asked []string
			a := openApplier(t, Config{Addr: srv.Addr(), Service: "east", Site: "east", Channels: channels, BlockSize: 2,
				Conflicts: Conflicts{Policy: PolicyConverge, SiteOrder: []string{"east", "west"}},
				Deleted: func(_ context.Context, svc string, qs []DeletedQuery) ([]bool, error) {
					mu.Lock()
					defer mu.Unlock()
					out := make([]bool, len(qs))
					for i, q := range qs {
						asked = append(asked, fmt.Sprintf("%s>%d", svc, q.After))
						out[i] = svc == "east" && changedByEast[q.Key]
					}
					return out, nil
				}})
			change := func(seqno uint64, origin string, action thlpb.RowChange_Action, id int64, before, after string) *thlpb.Event {
				r := &thlpb.Row{}
				if before != "" {
					r.Before = row(vInt(id), vBytes(before))
				}
				if after != "" {
					r.After = row(vInt(id), vBytes(after))
				}
				ev := from(origin, rowsEvent(seqno, action, "t", c, r))
				other := "east"
				if origin == "east" {
					other = "west"
				}
				ev.After = []*thlpb.After{{Service: other, Seqno: 5}}
				return ev
			}
			err := runUntil(t, a, 4,
				change(0, "west", thlpb.RowChange_UPDATE, 1, "a", "b"), // east changed row 1: kept
				change(1, "west", thlpb.RowChange_DELETE, 2, "a", ""),  // east changed row 2: kept
				change(2, "west", thlpb.RowChange_UPDATE, 3, "a", "c"), // untouched by east: applied
				change(3, "east", thlpb.RowChange_UPDATE, 4, "a", "e"), // east wins anyway: not asked
				change(4, "west", thlpb.RowChange_DELETE, 3, "c", ""),  // untouched by east: applied
			)
			if err != nil {
				t.Fatal(err)
			}
			if got := testutil.QueryString(t, db, "SELECT GROUP_CONCAT(id, ':', v ORDER BY id) FROM app.t"); got != "1:a,2:a,4:e" {
				t.Errorf("rows = %s, want 1:a,2:a,4:e", got)
			}
			want := []string{
				"0 UPDATE id=1 row crossed kept (west, converge)",
				"1 DELETE id=2 row crossed kept (west, converge)",
			}
			if got := conflictRows(t, db); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("conflicts =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			for _, q := range asked {
				if q != "east>5" {
					t.Errorf("asked %s, want only east about west's rows", q)
				}
			}
		})
	}
}

// TestChangedKeys: a DELETE changes its rows' keys, an INSERT its new
// rows', an UPDATE its rows' keys before and, where it moves a row, after;
// keys render alike for the same values.
func TestChangedKeys(t *testing.T) {
	c := []*thlpb.Column{{Name: "a", Key: true}, {Name: "b", Key: true}, {Name: "v"}}
	rc := func(action thlpb.RowChange_Action, table string, rows ...*thlpb.Row) *thlpb.Change {
		return &thlpb.Change{Change: &thlpb.Change_Rows{Rows: &thlpb.RowChange{Schema: "app", Table: table, Action: action, Columns: c, Rows: rows}}}
	}
	img := func(a int64, b, v string) []*thlpb.Value { return row(vInt(a), vBytes(b), vBytes(v)) }
	ev := &thlpb.Event{Changes: []*thlpb.Change{
		rc(thlpb.RowChange_DELETE, "t", &thlpb.Row{Before: img(1, "x", "v")}),
		rc(thlpb.RowChange_UPDATE, "t", &thlpb.Row{Before: img(2, "x", "v"), After: img(2, "x", "w")}, &thlpb.Row{Before: img(3, "x", "v"), After: img(4, "x", "v")}),
		rc(thlpb.RowChange_INSERT, "t", &thlpb.Row{After: img(5, "x", "v")}),
		rc(thlpb.RowChange_DELETE, "other", &thlpb.Row{Before: img(6, "x", "v")}),
	}}
	key := func(a int64, b string) string {
		k, _ := RowKey(&thlpb.RowChange{Columns: c}, img(a, b, "anything"))
		return k
	}
	var got []string
	for _, c := range ev.GetChanges() {
		if rc := c.GetRows(); rc.GetTable() == "t" {
			got = append(got, ChangedRowKeys(rc)...)
		}
	}
	want := []string{key(1, "x"), key(2, "x"), key(3, "x"), key(4, "x"), key(5, "x")}
	if !slices.Equal(got, want) {
		t.Errorf("ChangedRowKeys of app.t's changes = %q, want the keys of (1,x) to (5,x)", got)
	}
	if _, ok := RowKey(&thlpb.RowChange{Columns: []*thlpb.Column{{Name: "a"}}}, row(vInt(1))); ok {
		t.Error("RowKey of a row change without key columns")
	}
}

// TestChangeMarksSpareTheQuestion: an applier marks the tables it changes
// rows of (tungsten_<service>.changes, with the seqno); another service's
// applier on a replica then asks about a row only when a change of its
// table was applied here after what the row's source had applied.
func TestChangeMarksSpareTheQuestion(t *testing.T) {
	testutil.RequireDB(t)
	srv := testutil.StartMariaDB(t)
	db := testutil.DB(t, srv)
	freshApp(t, db, "DROP DATABASE IF EXISTS tungsten_west", "CREATE TABLE app.t (id INT PRIMARY KEY, v VARCHAR(20))", "CREATE TABLE app.u (id INT PRIMARY KEY, v VARCHAR(20))")
	testutil.Exec(t, db, "SET GLOBAL read_only = 1") // a replica of site east
	t.Cleanup(func() { _, _ = db.Exec("SET GLOBAL read_only = 0") })
	c := []*thlpb.Column{{Name: "id", Key: true}, {Name: "v"}}
	var mu sync.Mutex
	var asked []string
	var counts CausalCounters
	open := func(service string) *Applier {
		return openApplier(t, Config{Addr: srv.Addr(), Service: service, Site: "east", BlockSize: 1, Causal: &counts,
			Conflicts: Conflicts{Policy: PolicyConverge, SiteOrder: []string{"east", "west"}},
			Deleted: func(_ context.Context, svc string, qs []DeletedQuery) ([]bool, error) {
				mu.Lock()
				defer mu.Unlock()
				for _, q := range qs {
					asked = append(asked, fmt.Sprintf("%s>%d..%d %s.%s", svc, q.After, q.UpTo, q.Schema, q.Table))
				}
				return make([]bool, len(qs)), nil
			}})
	}
	ev := func(seqno uint64, origin string, action thlpb.RowChange_Action, table string, id int64, after ...*thlpb.After) *thlpb.Event {
		r := &thlpb.Row{After: row(vInt(id), vBytes(origin))}
		if action == thlpb.RowChange_DELETE {
			r = &thlpb.Row{Before: r.After}
		}
		e := from(origin, rowsEvent(seqno, action, table, c, r))
		e.After = after
		return e
	}
	// East's stream on this replica: row 1 of t inserted, then deleted
	// at seqno 1; a row of u inserted at 2.
	east := open("east")
	if err := runUntil(t, east, 2,
		ev(0, "east", thlpb.RowChange_INSERT, "t", 1),
		ev(1, "east", thlpb.RowChange_DELETE, "t", 1),
		ev(2, "east", thlpb.RowChange_INSERT, "u", 2)); err != nil {
		t.Fatal(err)
	}
	if got := testutil.QueryString(t, db, "SELECT GROUP_CONCAT(schema_name, '.', table_name, '=', seqno, '/', IFNULL(deleted, '') ORDER BY table_name) FROM tungsten_east.changes"); got != ".=-1/-1,app.t=1/1,app.u=2/" {
		t.Errorf("east's change marks: %s, want .=-1/-1 (marked from the start), app.t=1/1 (changed/deleted) and app.u=2/ (never deleted)", got)
	}
	// West's stream: INSERTs and DELETEs whose source had applied east
	// up to seqno 0, 1 or 2; the DELETEs' images are the rows here.
	west := open("west")
	del := func(seqno uint64, id int64, v string, after uint64) *thlpb.Event {
		e := ev(seqno, "west", thlpb.RowChange_DELETE, "u", id, &thlpb.After{Service: "east", Seqno: after})
		e.GetChanges()[0].GetRows().GetRows()[0].Before[1] = vBytes(v)
		return e
	}
	if err := runUntil(t, west, 4,
		ev(0, "west", thlpb.RowChange_INSERT, "u", 7, &thlpb.After{Service: "east", Seqno: 0}), // an INSERT, u: no delete here
		ev(1, "west", thlpb.RowChange_INSERT, "t", 8, &thlpb.After{Service: "east", Seqno: 0}), // t: deleted at 1, after 0
		ev(2, "west", thlpb.RowChange_INSERT, "t", 9, &thlpb.After{Service: "east", Seqno: 1}), // t: nothing after 1
		del(3, 2, "east", 1), // a DELETE, u: changed at 2, after 1
		del(4, 7, "west", 2), // u: nothing after 2
	); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(asked, ", "); got != "east>0..2 app.t, east>1..2 app.u" {
		t.Errorf("asked %q, want only east>0..2 app.t and east>1..2 app.u (up to east's seqno applied here)", got)
	}
	// East's applier opened again (as after a restart, or on a former
	// master whose clients deleted unmarked): marks count from its seqno.
	east.Close()
	open("east")
	if err := runUntil(t, west, 5, ev(5, "west", thlpb.RowChange_INSERT, "u", 10, &thlpb.After{Service: "east", Seqno: 0})); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(asked, ", "); got != "east>0..2 app.t, east>1..2 app.u, east>0..2 app.u" {
		t.Errorf("asked %q, want east>0 app.u asked too: marks only count from seqno 2", got)
	}
	// A site whose tracking schema this database lacks is asked (the
	// block's own guard cannot read it).
	if err := runUntil(t, west, 6, ev(6, "west", thlpb.RowChange_INSERT, "u", 11, &thlpb.After{Service: "north", Seqno: 0})); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(asked, ", "); got != "east>0..2 app.t, east>1..2 app.u, east>0..2 app.u, north>0..0 app.u" {
		t.Errorf("asked %q, want north>0..0 app.u last", got)
	}
	if q, u := counts.DeleteQuestions.Load(), counts.DeleteUnchecked.Load(); q != 4 || u != 0 {
		t.Errorf("counted %d questions, %d rows unchecked; want 4, 0", q, u)
	}
	// The blocks no question was needed for committed in one round trip
	// (their statement's guard said so).
	if n := west.guardsPassed.Load(); n != 3 {
		t.Errorf("%d blocks passed their guard, want 3 (west's seqnos 0, 2 and 4)", n)
	}
	// The guard waits for no lock: east's applier (here a session) holds
	// its tracking rows locked, and west's block passes its guard. A guard
	// that read them with shared locks waited (and met deadlocks).
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback() }()
	for _, q := range []string{"SELECT COUNT(*) FROM tungsten_east.changes FOR UPDATE", "SELECT COUNT(*) FROM tungsten_east.trep_commit_seqno FOR UPDATE"} {
		var n int
		if err := tx.QueryRow(q).Scan(&n); err != nil {
			t.Fatal(err)
		}
	}
	if err := runUntil(t, west, 7, ev(7, "west", thlpb.RowChange_INSERT, "u", 12, &thlpb.After{Service: "east", Seqno: 2})); err != nil {
		t.Fatal(err)
	}
	if n := west.guardsPassed.Load(); n != 4 {
		t.Errorf("%d blocks passed their guard, want 4 (seqno 7 too)", n)
	}
}

// TestDeletedUnanswered: a question without an answer (the replicator
// asked is stopped) leaves the rows applied unchecked, counted.
func TestDeletedUnanswered(t *testing.T) {
	testutil.RequireDB(t)
	srv := testutil.StartMariaDB(t)
	db := testutil.DB(t, srv)
	freshApp(t, db, "CREATE TABLE app.t (id INT PRIMARY KEY, v VARCHAR(20))")
	var counts CausalCounters
	a, err := New(Config{Addr: srv.Addr(), User: "tungsten", Password: "secret", Service: "east", Site: "east", Logger: testutil.Logger(t), Causal: &counts,
		Conflicts: Conflicts{Policy: PolicyConverge, SiteOrder: []string{"west", "east"}},
		Deleted: func(context.Context, string, []DeletedQuery) ([]bool, error) {
			return nil, errors.New("connection refused")
		}})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	c := []*thlpb.Column{{Name: "id", Key: true}, {Name: "v"}}
	ev := from("east", rowsEvent(0, thlpb.RowChange_INSERT, "t", c, &thlpb.Row{After: row(vInt(1), vBytes("x"))}, &thlpb.Row{After: row(vInt(2), vBytes("x"))}))
	ev.After = []*thlpb.After{{Service: "west", Seqno: 3}}
	if err := runUntil(t, a, 0, ev); err != nil {
		t.Fatal(err)
	}
	if got := testutil.QueryString(t, db, "SELECT COUNT(*) FROM app.t"); got != "2" {
		t.Errorf("%s rows, want both applied", got)
	}
	if q, u := counts.DeleteQuestions.Load(), counts.DeleteUnchecked.Load(); q != 1 || u != 2 {
		t.Errorf("counted %d questions, %d rows unchecked; want 1, 2", q, u)
	}
}
