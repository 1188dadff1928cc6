package apply

import (
	"context"
	"database/sql"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/carbidedb/carbide/internal/testutil"
	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

// siteChange is one row change a site's client made: the images are
// (id, u, v); nil for none. applied is how many of the other site's
// changes its source had applied.
type siteChange struct {
	before, after []string
	applied       int
}

// TestConflictUniqueCrossingConverges: east and west cross on a unique
// key other than the primary key (east wins), each scenario's changes
// applied in every order a host can meet them (each site's in its order,
// after what its source had applied of the other), one block each, the
// other site's THL answered from its changes. Every order must end with
// the same rows.
func TestConflictUniqueCrossingConverges(t *testing.T) {
	testutil.RequireDB(t)
	srv := testutil.StartMariaDB(t)
	db := testutil.DB(t, srv)
	img := func(id, u, v string) []string { return []string{id, u, v} }
	ins := func(id, u, v string) siteChange { return siteChange{after: img(id, u, v)} }
	upd := func(b, a []string) siteChange { return siteChange{before: b, after: a} }
	del := func(id, u, v string) siteChange { return siteChange{before: img(id, u, v)} }
	for _, sc := range []struct {
		name       string
		initial    string
		east, west []siteChange
		want       string
	}{
		{"values apart", "", []siteChange{ins("1", "x", "a")}, []siteChange{ins("2", "y", "b")}, "1:x:a,2:y:b"},
		{"loser moves off later", "",
			[]siteChange{ins("1", "x", "a")},
			[]siteChange{ins("2", "x", "b"), upd(img("2", "x", "b"), img("2", "w", "b"))}, "1:x:a,2:w:b"},
		{"loser changes in place later", "",
			[]siteChange{ins("1", "x", "a")},
			[]siteChange{ins("2", "x", "b"), upd(img("2", "x", "b"), img("2", "x", "c"))}, "1:x:a"},
		{"winner deletes", "",
			[]siteChange{ins("1", "x", "a"), del("1", "x", "a")},
			[]siteChange{ins("2", "x", "b")}, ""},
		{"winner moves off", "",
			[]siteChange{ins("1", "x", "a"), upd(img("1", "x", "a"), img("1", "z", "a"))},
			[]siteChange{ins("2", "x", "b")}, "1:z:a"},
		{"loser moves onto a value held concurrently", "(2, 'y', 'b')",
			[]siteChange{ins("1", "x", "a"), upd(img("1", "x", "a"), img("1", "z", "a"))},
			[]siteChange{upd(img("2", "y", "b"), img("2", "x", "b"))}, "1:z:a"},
		{"winner gives up a value the loser had freed", "(2, 'y', 'b'), (3, 'x', 'd')",
			[]siteChange{del("3", "x", "d")},
			[]siteChange{del("3", "x", "d"), upd(img("2", "y", "b"), img("2", "x", "b")), ins("4", "w", "e")}, "2:x:b,4:w:e"},
		{"winner moves off a value the loser had freed", "(2, 'y', 'b'), (3, 'x', 'd')",
			[]siteChange{upd(img("3", "x", "d"), img("3", "z", "d"))},
			[]siteChange{upd(img("3", "x", "d"), img("3", "v", "d")), ins("4", "x", "e")}, "2:y:b,3:z:d,4:x:e"},
		// REPLACE over a row holding the value, where InnoDB does it as
		// an UPDATE: the binlog has an UPDATE that moves the row to a
		// new primary key (the next AUTO_INCREMENT value).
		{"both replace over a value", "(1, 'x', 'o')",
			[]siteChange{upd(img("1", "x", "o"), img("5", "x", "a"))},
			[]siteChange{upd(img("1", "x", "o"), img("6", "x", "b"))}, "5:x:a"},
		{"loser replaces a row the winner changes", "(1, 'x', 'o')",
			[]siteChange{upd(img("1", "x", "o"), img("1", "x", "a"))},
			[]siteChange{upd(img("1", "x", "o"), img("6", "x", "b"))}, "1:x:a"},
		{"winner replaces a row the loser changes", "(1, 'x', 'o')",
			[]siteChange{upd(img("1", "x", "o"), img("5", "x", "a"))},
			[]siteChange{upd(img("1", "x", "o"), img("1", "x", "b"))}, "5:x:a"},
		{"winner replaces a row the loser deletes", "(1, 'x', 'o')",
			[]siteChange{upd(img("1", "x", "o"), img("5", "x", "a"))},
			[]siteChange{del("1", "x", "o")}, "5:x:a"},
		{"loser replaces a row the winner deletes", "(1, 'x', 'o')",
			[]siteChange{del("1", "x", "o")},
			[]siteChange{upd(img("1", "x", "o"), img("6", "x", "b"))}, "6:x:b"},
		{"loser replaces then moves the row off", "(1, 'x', 'o')",
			[]siteChange{upd(img("1", "x", "o"), img("1", "x", "a"))},
			[]siteChange{upd(img("1", "x", "o"), img("6", "x", "b")), upd(img("6", "x", "b"), img("6", "y", "b"))}, "1:x:a,6:y:b"},
		{"winner replaces, loser inserts the value", "(1, 'x', 'o')",
			[]siteChange{upd(img("1", "x", "o"), img("5", "x", "a"))},
			[]siteChange{del("1", "x", "o"), ins("6", "x", "b")}, "5:x:a"},
		{"loser replaces, winner moves the row off", "(1, 'x', 'o')",
			[]siteChange{upd(img("1", "x", "o"), img("1", "z", "o"))},
			[]siteChange{upd(img("1", "x", "o"), img("6", "x", "b"))}, "1:z:o,6:x:b"},
		{"loser replaces twice, winner deletes", "(1, 'x', 'o')",
			[]siteChange{del("1", "x", "o")},
			[]siteChange{upd(img("1", "x", "o"), img("6", "x", "b")), upd(img("6", "x", "b"), img("10", "x", "c"))}, "10:x:c"},
		{"loser replaces then changes, winner deletes", "(1, 'x', 'o')",
			[]siteChange{del("1", "x", "o")},
			[]siteChange{upd(img("1", "x", "o"), img("6", "x", "b")), upd(img("6", "x", "b"), img("6", "x", "c"))}, "6:x:c"},
		{"winner replaces twice, loser changes", "(1, 'x', 'o')",
			[]siteChange{upd(img("1", "x", "o"), img("5", "x", "a")), upd(img("5", "x", "a"), img("9", "x", "b"))},
			[]siteChange{upd(img("1", "x", "o"), img("1", "x", "c"))}, "9:x:b"},
		{"both replace, loser then moves off", "(1, 'x', 'o')",
			[]siteChange{upd(img("1", "x", "o"), img("5", "x", "a"))},
			[]siteChange{upd(img("1", "x", "o"), img("6", "x", "b")), upd(img("6", "x", "b"), img("6", "y", "b"))}, "5:x:a,6:y:b"},
		{"loser after the winner's delete", "",
			[]siteChange{ins("1", "x", "a"), del("1", "x", "a")},
			[]siteChange{ins("2", "y", "b"), {before: img("2", "y", "b"), after: img("2", "x", "b"), applied: 2}}, "2:x:b"},
	} {
		t.Run(sc.name, func(t *testing.T) {
			for _, channels := range []int{1, 4} {
				for _, order := range interleavings(sc.east, sc.west) {
					got := applyOrder(t, srv.Addr(), db, channels, sc.initial, sc.east, sc.west, order)
					if got != sc.want {
						t.Errorf("channels %d, order %s: rows = %q, want %q", channels, order, got, sc.want)
					}
				}
			}
		})
	}
}

// interleavings returns every order ("e"/"w" per change) a host can meet
// the two sites' changes in: each site's in its order, each change after
// the other site's changes its source had applied.
func interleavings(east, west []siteChange) []string {
	var out []string
	var walk func(i, j int, prefix string)
	walk = func(i, j int, prefix string) {
		if i == len(east) && j == len(west) {
			out = append(out, prefix)
			return
		}
		if i < len(east) && east[i].applied <= j {
			walk(i+1, j, prefix+"e")
		}
		if j < len(west) && west[j].applied <= i {
			walk(i, j+1, prefix+"w")
		}
	}
	walk(0, 0, "")
	return out
}

// applyOrder applies the changes in order to a fresh app.t holding
// initial, with east winning, and returns its rows.
func applyOrder(t *testing.T, addr string, db *sql.DB, channels int, initial string, east, west []siteChange, order string) string {
	t.Helper()
	ddl := []string{"CREATE TABLE app.t (id INT PRIMARY KEY, u VARCHAR(10), v VARCHAR(10), UNIQUE KEY (u))"}
	if initial != "" {
		ddl = append(ddl, "INSERT INTO app.t VALUES "+initial)
	}
	freshApp(t, db, ddl...)
	c := []*thlpb.Column{{Name: "id", Key: true}, {Name: "u"}, {Name: "v"}}
	thl := newSiteTHL()
	a := openApplier(t, Config{Addr: addr, Service: "east", Site: "east", Channels: channels,
		Conflicts: Conflicts{Policy: PolicyConverge, SiteOrder: []string{"east", "west"}}, Deleted: thl.deleted, Positions: thl.positions})
	value := func(img []string) []*thlpb.Value {
		if img == nil {
			return nil
		}
		id, _ := strconv.ParseInt(img[0], 10, 64)
		return row(vInt(id), vBytes(img[1]), vBytes(img[2]))
	}
	var i, j int
	for seqno, site := range order {
		ch, origin, other := siteChange{}, "east", "west"
		if site == 'e' {
			ch, i = east[i], i+1
		} else {
			ch, j, origin, other = west[j], j+1, "west", "east"
		}
		action := thlpb.RowChange_UPDATE
		switch {
		case ch.before == nil:
			action = thlpb.RowChange_INSERT
		case ch.after == nil:
			action = thlpb.RowChange_DELETE
		}
		ev := from(origin, rowsEvent(uint64(seqno), action, "t", c, &thlpb.Row{Before: value(ch.before), After: value(ch.after)}))
		ev.After = []*thlpb.After{{Service: other, Seqno: uint64(siteTHLBase + ch.applied)}}
		if err := runUntil(t, a, uint64(seqno), ev); err != nil {
			t.Fatalf("order %s, change %d: %v", order, seqno, err)
		}
		thl.add(origin, ev)
	}
	return testutil.QueryString(t, db, "SELECT IFNULL(GROUP_CONCAT(id, ':', u, ':', v ORDER BY id), '') FROM app.t")
}

// siteTHLBase is each site's last seqno before a test's changes.
const siteTHLBase = 10

// siteTHL answers the concurrent-change question (Config.Deleted) from
// the changes of each site this host applied, as the sites' THLs on a
// host would: a site's changes have seqnos siteTHLBase+1… in order.
type siteTHL struct {
	mu   sync.Mutex
	done map[string][]*thlpb.Event
}

func newSiteTHL() *siteTHL { return &siteTHL{done: map[string][]*thlpb.Event{}} }

// add records ev, a change of site applied here.
func (s *siteTHL) add(site string, ev *thlpb.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.done[site] = append(s.done[site], ev)
}

// positions answers PositionsFunc from the changes of each site applied
// here.
func (s *siteTHL) positions(_ context.Context, svc string, qs []DeletedQuery) ([]uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]uint64, len(qs))
	for i, q := range qs {
		for n, ev := range s.done[svc] {
			if uint64(siteTHLBase+1+n) <= q.After || out[i] > 0 {
				continue
			}
			for _, c := range ev.GetChanges() {
				rc := c.GetRows()
				if rc == nil || rc.GetSchema() != q.Schema || rc.GetTable() != q.Table || !slices.Contains(DeletedRowKeys(rc), DeletedKey(q.Key)) {
					continue
				}
				out[i] = 1
				for _, a := range ev.GetAfter() {
					if a.GetService() == q.AfterOf {
						out[i] = a.GetSeqno() + 1
					}
				}
			}
		}
	}
	return out, nil
}

func (s *siteTHL) deleted(_ context.Context, svc string, qs []DeletedQuery) ([]bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]bool, len(qs))
	for i, q := range qs {
		deleted := false // a ReinsertedKey's row, deleted after q.After
		for n, ev := range s.done[svc] {
			if uint64(siteTHLBase+1+n) <= q.After {
				continue
			}
			for _, c := range ev.GetChanges() {
				rc := c.GetRows()
				if rc == nil || rc.GetSchema() != q.Schema || rc.GetTable() != q.Table {
					continue
				}
				if k, ok := strings.CutPrefix(q.Key, "+"); ok {
					out[i] = out[i] || deleted && slices.Contains(MadeRowKeys(rc), k)
					deleted = deleted || slices.Contains(DeletedRowKeys(rc), DeletedKey(k))
					continue
				}
				keys := append(ChangedRowKeys(rc), DeletedRowKeys(rc)...)
				if len(q.Unique) > 0 {
					keys = ChangedUniqueKeys(rc, q.Unique)
				}
				out[i] = out[i] || slices.Contains(keys, q.Key)
			}
		}
	}
	return out, nil
}
