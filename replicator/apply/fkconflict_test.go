package apply

import (
	"database/sql"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/carbidedb/carbide/internal/testutil"
	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

// One site deletes a parent row while the other adds a child of it (an
// INSERT, or an UPDATE pointing a row at it). Every host must end as the
// parent's DELETE leaves the child where it comes second, whichever comes
// first and whichever site wins: with CASCADE, RESTRICT and NO ACTION
// neither row, with SET NULL the child with a NULL reference. Where the
// child comes second it finds its parent gone (recorded, "parent gone");
// where it came first, RESTRICT refuses the parent's DELETE until the
// child goes (recorded, "child rows").
func TestConflictParentGone(t *testing.T) {
	testutil.RequireDB(t)
	srv := testutil.StartMariaDB(t)
	db := testutil.DB(t, srv)
	pc, cc := cols("id", "v"), cols("id", "pid")
	delP := func(seqno uint64) *thlpb.Event {
		return from("east", rowsEvent(seqno, thlpb.RowChange_DELETE, "p", pc, &thlpb.Row{Before: row(vInt(1), vBytes("orig"))}))
	}
	child := func(seqno uint64, update bool) *thlpb.Event {
		if update {
			return from("west", rowsEvent(seqno, thlpb.RowChange_UPDATE, "c", cc, &thlpb.Row{Before: row(vInt(10), vInt(2)), After: row(vInt(10), vInt(1))}))
		}
		return from("west", rowsEvent(seqno, thlpb.RowChange_INSERT, "c", cc, &thlpb.Row{After: row(vInt(10), vInt(1))}))
	}
	for _, rule := range []string{"ON DELETE CASCADE", "", "ON DELETE NO ACTION", "ON DELETE SET NULL"} {
		want := "parents 2, child "
		if rule == "ON DELETE SET NULL" {
			want = "parents 2, child 10:NULL"
		}
		for _, update := range []bool{false, true} {
			for _, order := range [][]string{{"east", "west"}, {"west", "east"}} {
				for _, childFirst := range []bool{false, true} {
					name := fmt.Sprintf("%q update %v %v child first %v", rule, update, order, childFirst)
					t.Run(name, func(t *testing.T) {
						freshApp(t, db, "CREATE TABLE app.p (id INT PRIMARY KEY, v VARCHAR(10))",
							"CREATE TABLE app.c (id INT PRIMARY KEY, pid INT, FOREIGN KEY (pid) REFERENCES app.p (id) "+rule+")",
							"INSERT INTO app.p VALUES (1, 'orig'), (2, 'other')")
						if update {
							testutil.Exec(t, db, "INSERT INTO app.c VALUES (10, 2)")
						}
						a := newConflictApplier(t, srv.Addr(), 2, PolicyConverge, order...)
						evs := []*thlpb.Event{delP(0), child(1, update)}
						if childFirst {
							evs = []*thlpb.Event{child(0, update), delP(1)}
						}
						// One block each, as on a host where they arrive apart.
						for _, ev := range evs {
							if err := runUntil(t, a, ev.GetSeqno(), ev); err != nil {
								t.Fatal(err)
							}
						}
						got := testutil.QueryString(t, db, "SELECT CONCAT('parents ', (SELECT GROUP_CONCAT(id) FROM app.p), ', child ', "+
							"(SELECT IFNULL(GROUP_CONCAT(id, ':', IFNULL(pid, 'NULL')), '') FROM app.c WHERE id = 10))")
						if got != want {
							t.Errorf("parents, child 10 = %q, want %q", got, want)
						}
						kinds := fmt.Sprint(conflictRows(t, db))
						switch {
						case childFirst && (rule == "" || rule == "ON DELETE NO ACTION"):
							if !strings.Contains(kinds, "child rows applied") {
								t.Errorf("conflicts = %s, want the parent's DELETE recorded (child rows)", kinds)
							}
						case childFirst:
							if kinds != "[]" {
								t.Errorf("conflicts = %s, want none (the DELETE did its work)", kinds)
							}
						case !strings.Contains(kinds, "parent gone"):
							t.Errorf("conflicts = %s, want the child's change recorded (parent gone)", kinds)
						}
					})
				}
			}
		}
	}
}

// One site deletes a parent row (ON DELETE SET NULL) while the other
// changes or deletes a child of it. Where the parent's DELETE came first
// the child holds NULL, not its before-image's reference: that is the
// DELETE's doing, in no binlog, so the child's change applies as where it
// came first, whichever site wins.
func TestConflictChildNulledByParentDelete(t *testing.T) {
	testutil.RequireDB(t)
	srv := testutil.StartMariaDB(t)
	db := testutil.DB(t, srv)
	pc, cc := cols("id", "v"), cols("id", "pid", "v")
	delP := func(seqno uint64) *thlpb.Event {
		return from("east", rowsEvent(seqno, thlpb.RowChange_DELETE, "p", pc, &thlpb.Row{Before: row(vInt(1), vBytes("orig"))}))
	}
	child := func(seqno uint64, del bool) *thlpb.Event {
		before := row(vInt(10), vInt(1), vBytes("orig"))
		if del {
			return from("west", rowsEvent(seqno, thlpb.RowChange_DELETE, "c", cc, &thlpb.Row{Before: before}))
		}
		return from("west", rowsEvent(seqno, thlpb.RowChange_UPDATE, "c", cc, &thlpb.Row{Before: before, After: row(vInt(10), vInt(1), vBytes("west"))}))
	}
	for _, del := range []bool{false, true} {
		want := "10:NULL:west"
		if del {
			want = ""
		}
		for _, order := range [][]string{{"east", "west"}, {"west", "east"}} {
			for _, childFirst := range []bool{false, true} {
				t.Run(fmt.Sprintf("delete %v %v child first %v", del, order, childFirst), func(t *testing.T) {
					freshApp(t, db, "CREATE TABLE app.p (id INT PRIMARY KEY, v VARCHAR(10))",
						"CREATE TABLE app.c (id INT PRIMARY KEY, pid INT, v VARCHAR(10), FOREIGN KEY (pid) REFERENCES app.p (id) ON DELETE SET NULL)",
						"INSERT INTO app.p VALUES (1, 'orig')", "INSERT INTO app.c VALUES (10, 1, 'orig')")
					a := newConflictApplier(t, srv.Addr(), 1, PolicyConverge, order...)
					evs := []*thlpb.Event{delP(0), child(1, del)}
					if childFirst {
						evs = []*thlpb.Event{child(0, del), delP(1)}
					}
					for _, ev := range evs {
						if err := runUntil(t, a, ev.GetSeqno(), ev); err != nil {
							t.Fatal(err)
						}
					}
					got := testutil.QueryString(t, db, "SELECT IFNULL(GROUP_CONCAT(id, ':', IFNULL(pid, 'NULL'), ':', v), '') FROM app.c")
					if got != want {
						t.Errorf("children = %q, want %q", got, want)
					}
				})
			}
		}
	}
}

// TestConflictParentReinsertedConverges: east deletes a parent row and
// inserts it again while west changes a child of it. The DELETE's work on
// the child (CASCADE: the row gone; SET NULL: its reference NULL) is in no
// binlog, and where the parent is back the child's change finds no parent
// gone. Every order a host can meet them in must end the same, whichever
// site wins: as the parent's DELETE leaves the child.
func TestConflictParentReinsertedConverges(t *testing.T) {
	testutil.RequireDB(t)
	srv := testutil.StartMariaDB(t)
	db := testutil.DB(t, srv)
	pc := []*thlpb.Column{{Name: "id", Key: true}, {Name: "v"}}
	cc := []*thlpb.Column{{Name: "id", Key: true}, {Name: "pid"}, {Name: "v"}}
	for _, rule := range []string{"CASCADE", "SET NULL"} {
		want := "p 1:new; c "
		if rule == "SET NULL" {
			want = "p 1:new; c 10:NULL:w"
		}
		for _, order := range [][]string{{"east", "west"}, {"west", "east"}} {
			t.Run(fmt.Sprintf("%s %v", rule, order), func(t *testing.T) {
				for _, channels := range []int{1, 2} {
					for _, seq := range interleavings(make([]siteChange, 2), make([]siteChange, 1)) {
						freshApp(t, db, "CREATE TABLE app.p (id INT PRIMARY KEY, v VARCHAR(10))",
							"CREATE TABLE app.c (id INT PRIMARY KEY, pid INT, v VARCHAR(10), FOREIGN KEY (pid) REFERENCES app.p (id) ON DELETE "+rule+")",
							"INSERT INTO app.p VALUES (1, 'orig')", "INSERT INTO app.c VALUES (10, 1, 'o')")
						thl := newSiteTHL()
						a := openApplier(t, Config{Addr: srv.Addr(), Service: "east", Site: "east", Channels: channels,
							Conflicts: Conflicts{Policy: PolicyConverge, SiteOrder: order}, Deleted: thl.deleted, Positions: thl.positions})
						east := []func(uint64) *thlpb.Event{
							func(n uint64) *thlpb.Event {
								return rowsEvent(n, thlpb.RowChange_DELETE, "p", pc, &thlpb.Row{Before: row(vInt(1), vBytes("orig"))})
							},
							func(n uint64) *thlpb.Event {
								return rowsEvent(n, thlpb.RowChange_INSERT, "p", pc, &thlpb.Row{After: row(vInt(1), vBytes("new"))})
							},
						}
						west := func(n uint64) *thlpb.Event {
							return rowsEvent(n, thlpb.RowChange_UPDATE, "c", cc,
								&thlpb.Row{Before: row(vInt(10), vInt(1), vBytes("o")), After: row(vInt(10), vInt(1), vBytes("w"))})
						}
						applyCrossing(t, a, thl, seq, east, []func(uint64) *thlpb.Event{west})
						if got := parentChildRows(t, db); got != want {
							t.Errorf("channels %d, order %s: %q, want %q", channels, seq, got, want)
						}
					}
				}
			})
		}
	}
}

// TestConflictParentReinsertedChildSet: east deletes a parent row and
// inserts it again while west points a child at it (an INSERT, or an
// UPDATE that sets the reference). Where west's change comes first, the
// DELETE takes the child (CASCADE; RESTRICT: the children first) or sets
// its reference NULL; where it comes second, the parent is back. Every
// order must end as the DELETE leaves the child, whichever site wins (west
// did not change the parent: east's DELETE meets no conflict).
func TestConflictParentReinsertedChildSet(t *testing.T) {
	testutil.RequireDB(t)
	srv := testutil.StartMariaDB(t)
	db := testutil.DB(t, srv)
	pc := []*thlpb.Column{{Name: "id", Key: true}, {Name: "v"}}
	cc := []*thlpb.Column{{Name: "id", Key: true}, {Name: "pid"}, {Name: "v"}}
	changes := map[string]struct {
		setup string // the child before west's change, if any
		west  *thlpb.Event
	}{
		"insert": {"", rowsEvent(0, thlpb.RowChange_INSERT, "c", cc, &thlpb.Row{After: row(vInt(10), vInt(1), vBytes("w"))})},
		"update from NULL": {"INSERT INTO app.c VALUES (10, NULL, 'o')", rowsEvent(0, thlpb.RowChange_UPDATE, "c", cc,
			&thlpb.Row{Before: row(vInt(10), vNull(), vBytes("o")), After: row(vInt(10), vInt(1), vBytes("w"))})},
		"update from 2": {"INSERT INTO app.c VALUES (10, 2, 'o')", rowsEvent(0, thlpb.RowChange_UPDATE, "c", cc,
			&thlpb.Row{Before: row(vInt(10), vInt(2), vBytes("o")), After: row(vInt(10), vInt(1), vBytes("w"))})},
	}
	for _, rule := range []string{"CASCADE", "RESTRICT", "SET NULL"} {
		want := "p 1:new,2:orig; c "
		if rule == "SET NULL" {
			want += "10:NULL:w"
		}
		for name, change := range changes {
			for _, order := range [][]string{{"east", "west"}, {"west", "east"}} {
				t.Run(fmt.Sprintf("%s %s %v", rule, name, order), func(t *testing.T) {
					for _, channels := range []int{1, 2} {
						for _, seq := range interleavings(make([]siteChange, 2), make([]siteChange, 1)) {
							setup := []string{"CREATE TABLE app.p (id INT PRIMARY KEY, v VARCHAR(10))",
								"CREATE TABLE app.c (id INT PRIMARY KEY, pid INT, v VARCHAR(10), FOREIGN KEY (pid) REFERENCES app.p (id) ON DELETE " + rule + ")",
								"INSERT INTO app.p VALUES (1, 'orig'), (2, 'orig')"}
							if change.setup != "" {
								setup = append(setup, change.setup)
							}
							freshApp(t, db, setup...)
							thl := newSiteTHL()
							a := openApplier(t, Config{Addr: srv.Addr(), Service: "east", Site: "east", Channels: channels,
								Conflicts: Conflicts{Policy: PolicyConverge, SiteOrder: order}, Deleted: thl.deleted, Positions: thl.positions})
							east := []func(uint64) *thlpb.Event{
								func(n uint64) *thlpb.Event {
									return rowsEvent(n, thlpb.RowChange_DELETE, "p", pc, &thlpb.Row{Before: row(vInt(1), vBytes("orig"))})
								},
								func(n uint64) *thlpb.Event {
									return rowsEvent(n, thlpb.RowChange_INSERT, "p", pc, &thlpb.Row{After: row(vInt(1), vBytes("new"))})
								},
							}
							west := func(n uint64) *thlpb.Event {
								ev := proto.Clone(change.west).(*thlpb.Event)
								ev.Seqno = n
								return ev
							}
							applyCrossing(t, a, thl, seq, east, []func(uint64) *thlpb.Event{west})
							if got := parentChildRows(t, db); got != want {
								t.Errorf("channels %d, order %s: %q, want %q", channels, seq, got, want)
							}
						}
					}
				})
			}
		}
	}
}

// TestConflictParentReinsertedByChildSite: east deletes a parent row,
// inserts it again and adds a child of it, while west deletes the
// parent. West's DELETE meets east's new parent row: a conflict, which
// the policy decides, and the child with it. East winning, the parent is
// back and the child stays on every host; west winning, the parent goes
// and the child as its foreign key says.
func TestConflictParentReinsertedByChildSite(t *testing.T) {
	testutil.RequireDB(t)
	srv := testutil.StartMariaDB(t)
	db := testutil.DB(t, srv)
	pc := []*thlpb.Column{{Name: "id", Key: true}, {Name: "v"}}
	cc := []*thlpb.Column{{Name: "id", Key: true}, {Name: "pid"}, {Name: "v"}}
	for _, rule := range []string{"CASCADE", "RESTRICT", "SET NULL"} {
		for _, order := range [][]string{{"east", "west"}, {"west", "east"}} {
			want := "p 1:new,2:orig; c 10:1:e"
			if order[0] == "west" {
				want = "p 2:orig; c "
				if rule == "SET NULL" {
					want += "10:NULL:e"
				}
			}
			t.Run(fmt.Sprintf("%s %v", rule, order), func(t *testing.T) {
				for _, channels := range []int{1, 2} {
					for _, seq := range interleavings(make([]siteChange, 3), make([]siteChange, 1)) {
						freshApp(t, db, "CREATE TABLE app.p (id INT PRIMARY KEY, v VARCHAR(10))",
							"CREATE TABLE app.c (id INT PRIMARY KEY, pid INT, v VARCHAR(10), FOREIGN KEY (pid) REFERENCES app.p (id) ON DELETE "+rule+")",
							"INSERT INTO app.p VALUES (1, 'orig'), (2, 'orig')")
						thl := newSiteTHL()
						a := openApplier(t, Config{Addr: srv.Addr(), Service: "east", Site: "east", Channels: channels,
							Conflicts: Conflicts{Policy: PolicyConverge, SiteOrder: order}, Deleted: thl.deleted, Positions: thl.positions})
						east := []func(uint64) *thlpb.Event{
							func(n uint64) *thlpb.Event {
								return rowsEvent(n, thlpb.RowChange_DELETE, "p", pc, &thlpb.Row{Before: row(vInt(1), vBytes("orig"))})
							},
							func(n uint64) *thlpb.Event {
								return rowsEvent(n, thlpb.RowChange_INSERT, "p", pc, &thlpb.Row{After: row(vInt(1), vBytes("new"))})
							},
							func(n uint64) *thlpb.Event {
								return rowsEvent(n, thlpb.RowChange_INSERT, "c", cc, &thlpb.Row{After: row(vInt(10), vInt(1), vBytes("e"))})
							},
						}
						west := func(n uint64) *thlpb.Event {
							return rowsEvent(n, thlpb.RowChange_DELETE, "p", pc, &thlpb.Row{Before: row(vInt(1), vBytes("orig"))})
						}
						applyCrossing(t, a, thl, seq, east, []func(uint64) *thlpb.Event{west})
						got := parentChildRows(t, db)
						if got != want {
							t.Errorf("channels %d, order %s: %q, want %q", channels, seq, got, want)
						}
					}
				}
			})
		}
	}
}

// applyCrossing applies on a, in the order seq names ('e', 'w'), east's
// and west's changes (each made for its seqno in seq), each after what
// its source had of the other at the start (siteTHLBase), and records
// each in thl once applied.
func applyCrossing(t *testing.T, a *Applier, thl *siteTHL, seq string, east, west []func(uint64) *thlpb.Event) {
	t.Helper()
	next := map[string]int{}
	for n, c := range seq {
		origin, other, changes := "east", "west", east
		if c == 'w' {
			origin, other, changes = "west", "east", west
		}
		ev := from(origin, changes[next[origin]](uint64(n)))
		next[origin]++
		ev.After = []*thlpb.After{{Service: other, Seqno: siteTHLBase}}
		if err := runUntil(t, a, uint64(n), ev); err != nil {
			t.Fatalf("order %s, change %d: %v", seq, n, err)
		}
		thl.add(origin, ev)
	}
}

// parentChildRows returns app.p's and app.c's rows (id:pid:v) as text.
func parentChildRows(t *testing.T, db *sql.DB) string {
	return testutil.QueryString(t, db, "SELECT CONCAT('p ', (SELECT GROUP_CONCAT(id, ':', v ORDER BY id) FROM app.p), '; c ', "+
		"(SELECT IFNULL(GROUP_CONCAT(id, ':', IFNULL(pid, 'NULL'), ':', v ORDER BY id), '') FROM app.c))")
}
