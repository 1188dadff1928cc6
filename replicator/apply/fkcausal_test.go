package apply

import (
	"database/sql"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/carbidedb/carbide/internal/testutil"
	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

// TestConflictForeignKeyCausalMixConverges: as
// TestConflictForeignKeyMixConverges, but the sites see some of each
// other's changes as they go. Each site is a database of its own whose
// clients' changes are SQL (a parent's DELETE cascading, nulling or
// refused there) and which applies the other site's changes, at random
// points, through an applier as its cross-site service would; each change
// names what its site had applied of the other (Event.after). Then the
// changes of both are applied on a fresh database in orders a host can
// meet them (each after what its source had applied of the other): every
// order, and both sites, must end the same. A site's transaction makes
// one or two changes. FKCAUSAL_SCENARIOS sets how many mixes (default 2,
// about 10 s; 40 passed on 2026-12-08), FKCAUSAL_SEED the first seed.
func TestConflictForeignKeyCausalMixConverges(t *testing.T) {
	testutil.RequireDB(t)
	east, west, host := testutil.StartMariaDB(t), testutil.StartMariaDB(t), testutil.StartMariaDB(t)
	dbs := map[string]*sql.DB{"east": testutil.DB(t, east), "west": testutil.DB(t, west)}
	addrs := map[string]string{"east": east.Addr(), "west": west.Addr()}
	hostDB := testutil.DB(t, host)
	scenarios, seed := mixSeeds("FKCAUSAL", 2)
	for s := seed; s < seed+uint64(scenarios); s++ {
		for _, rules := range [][]string{{"CASCADE"}, {"RESTRICT"}, {"SET NULL"}, {"CASCADE", "RESTRICT", "SET NULL"}} {
			for _, order := range [][]string{{"east", "west"}, {"west", "east"}} {
				rng := rand.New(rand.NewPCG(s, 11))
				mix := fkCausalMix(t, dbs, addrs, rules, order, rng)
				ends := map[string][]string{}
				for site, db := range dbs {
					end := fkMixRows(t, db, rules)
					ends[end] = append(ends[end], site)
				}
				if testing.Verbose() {
					t.Logf("seed %d, %v, %s wins: %s", s, rules, order[0], mix.text())
				}
				seqs := interleavings(mix.changes["east"], mix.changes["west"])
				rng.Shuffle(len(seqs), func(i, j int) { seqs[i], seqs[j] = seqs[j], seqs[i] })
				for _, seq := range seqs[:min(len(seqs), 12)] {
					end := fkCausalReplay(t, hostDB, host.Addr(), rules, order, seq, mix)
					ends[end] = append(ends[end], seq)
				}
				if len(ends) > 1 {
					var b strings.Builder
					for end, where := range ends {
						fmt.Fprintf(&b, "\n  %s: %v", end, where)
					}
					t.Errorf("seed %d, %v, %s wins: %s end differently:%s", s, rules, order[0], mix.text(), b.String())
				}
			}
		}
	}
}

// causalMix is what the two sites did: each site's changes, in order,
// as events, and as siteChanges (how many of the other's each came after).
type causalMix struct {
	events  map[string][]*thlpb.Event
	changes map[string][]siteChange
	texts   map[string][]string
}

func (m *causalMix) text() string {
	var b strings.Builder
	for _, site := range []string{"east", "west"} {
		fmt.Fprintf(&b, "%s [", site)
		for i, txt := range m.texts[site] {
			if i > 0 {
				b.WriteString("; ")
			}
			fmt.Fprintf(&b, "%s after %d", txt, m.changes[site][i].applied)
		}
		b.WriteString("] ")
	}
	return b.String()
}

// fkMixDDL makes the parents and children tables (a foreign key to the
// parents for each of rules) with parents 1 to 3 and child 10 of parent 1
// by each key, and returns the children's columns.
func fkMixDDL(t *testing.T, db *sql.DB, rules []string) []*thlpb.Column {
	t.Helper()
	ddl := "CREATE TABLE app.c (id INT PRIMARY KEY"
	cc := []*thlpb.Column{{Name: "id", Key: true}}
	vals := ""
	for k := range rules {
		ddl += fmt.Sprintf(", r%d INT", k)
		cc = append(cc, &thlpb.Column{Name: fmt.Sprintf("r%d", k)})
		vals += ", 1"
	}
	ddl += ", v VARCHAR(10)"
	for k, rule := range rules {
		ddl += fmt.Sprintf(", FOREIGN KEY (r%d) REFERENCES app.p (id) ON DELETE %s", k, rule)
	}
	freshApp(t, db, "CREATE TABLE app.p (id INT PRIMARY KEY, v VARCHAR(10))", ddl+")",
		"INSERT INTO app.p VALUES (1, 'o'), (2, 'o'), (3, 'o')", "INSERT INTO app.c VALUES (10"+vals+", 'o')")
	return append(cc, &thlpb.Column{Name: "v"})
}

// fkMixRows returns the parents' and children's rows as text.
func fkMixRows(t *testing.T, db *sql.DB, rules []string) string {
	refs := ""
	for k := range rules {
		refs += fmt.Sprintf(", ':', IFNULL(r%d, 'NULL')", k)
	}
	return testutil.QueryString(t, db, "SELECT CONCAT('p ', (SELECT IFNULL(GROUP_CONCAT(id, ':', v ORDER BY id), '') FROM app.p), '; c ', "+
		"(SELECT IFNULL(GROUP_CONCAT(id"+refs+", ':', v ORDER BY id), '') FROM app.c))")
}

// fkCausalMix plays the two sites: 6 to 14 steps, each a site's client
// changing a row (an INSERT or DELETE of a parent, an INSERT, UPDATE or
// DELETE of a child, as SQL its database may refuse) or the site applying
// the other's next change; then each applies the rest of the other's.
func fkCausalMix(t *testing.T, dbs map[string]*sql.DB, addrs map[string]string, rules []string, order []string, rng *rand.Rand) *causalMix {
	t.Helper()
	mix := &causalMix{events: map[string][]*thlpb.Event{}, changes: map[string][]siteChange{}, texts: map[string][]string{}}
	other := map[string]string{"east": "west", "west": "east"}
	var cc []*thlpb.Column
	thls, appliers, applied := map[string]*siteTHL{}, map[string]*Applier{}, map[string]int{}
	for site, db := range dbs {
		cc = fkMixDDL(t, db, rules)
		testutil.Exec(t, db, "DROP DATABASE IF EXISTS "+TrackingSchema(other[site]))
		thls[site] = newSiteTHL()
		// The site's cross-site service: the other site's changes.
		appliers[site] = openApplier(t, Config{Addr: addrs[site], Service: other[site], Site: site, Channels: 1,
			Conflicts: Conflicts{Policy: PolicyConverge, SiteOrder: order}, Deleted: thls[site].deleted, Positions: thls[site].positions})
		defer appliers[site].Close()
	}
	pc := []*thlpb.Column{{Name: "id", Key: true}, {Name: "v"}}
	applyNext := func(site string) {
		from := other[site]
		ev := mix.events[from][applied[site]]
		if err := runUntil(t, appliers[site], ev.GetSeqno(), ev); err != nil {
			t.Fatalf("%s applying %s's %s: %v", site, from, mix.texts[from][applied[site]], err)
		}
		thls[site].add(from, ev)
		applied[site]++
	}
	steps := 6 + rng.IntN(9)
	for step, tries := 0, 0; step < steps && tries < 200; tries++ {
		site := []string{"east", "west"}[rng.IntN(2)]
		db := dbs[site]
		if rng.IntN(10) < 4 {
			if applied[site] < len(mix.events[other[site]]) {
				applyNext(site)
				step++
			}
			continue
		}
		// A transaction of one or two changes, all refused if one is.
		tx, err := db.Begin()
		if err != nil {
			t.Fatal(err)
		}
		ev := from(site, &thlpb.Event{Seqno: uint64(siteTHLBase + 1 + len(mix.events[site])), LastFrag: true,
			EventId: fmt.Sprintf("mysql-bin.000001:%016d", 100+len(mix.events[site])), SourceId: site + "1", Shard: "app"})
		var texts []string
		for n := 1 + rng.IntN(2); n > 0; n-- {
			c, text, ok := fkCausalChange(tx, site, len(mix.events[site]), rules, pc, cc, rng)
			if !ok {
				ev.Changes = nil
				break
			}
			ev.Changes, texts = append(ev.Changes, c), append(texts, text)
		}
		if len(ev.Changes) == 0 || tx.Commit() != nil {
			_ = tx.Rollback()
			continue
		}
		ev.After = []*thlpb.After{{Service: other[site], Seqno: uint64(siteTHLBase + applied[site])}}
		mix.events[site] = append(mix.events[site], ev)
		mix.changes[site] = append(mix.changes[site], siteChange{applied: applied[site]})
		mix.texts[site] = append(mix.texts[site], strings.Join(texts, " + "))
		thls[site].add(site, ev)
		step++
	}
	for _, site := range []string{"east", "west"} {
		for applied[site] < len(mix.events[other[site]]) {
			applyNext(site)
		}
	}
	return mix
}

// fkCausalChange makes, in tx on site's database, one random change (an
// INSERT or DELETE of a parent, an INSERT, UPDATE or DELETE of a child) as
// a client would, and returns it as a row change; ok is false where the
// database refused it (a key taken, a parent missing or restricting: tx
// is then to be rolled back) or it had no row to change.
func fkCausalChange(tx *sql.Tx, site string, n int, rules []string, pc, cc []*thlpb.Column, rng *rand.Rand) (*thlpb.Change, string, bool) {
	v := fmt.Sprintf("%s%d.%d", site[:1], n, rng.IntN(10))
	id, cid := 1+rng.IntN(3), 10+rng.IntN(2)
	refs := make([]*thlpb.Value, len(rules))
	var refSQL []string
	for k := range rules {
		if r := rng.IntN(4); r == 0 {
			refs[k], refSQL = vNull(), append(refSQL, "NULL")
		} else {
			refs[k], refSQL = vInt(int64(r)), append(refSQL, strconv.Itoa(r))
		}
	}
	cimg := func() []*thlpb.Value { return append(append(row(vInt(int64(cid))), refs...), vBytes(v)) }
	var text, q string
	rc := &thlpb.RowChange{Schema: "app", Table: "c", Columns: cc}
	switch rng.IntN(5) {
	case 0:
		before, ok := fkCausalRead(tx, "SELECT id, v FROM app.p WHERE id = ?", id, 2)
		if !ok {
			return nil, "", false
		}
		rc.Table, rc.Columns, rc.Action, text, q = "p", pc, thlpb.RowChange_DELETE, fmt.Sprintf("delete p%d", id), fmt.Sprintf("DELETE FROM app.p WHERE id = %d", id)
		rc.Rows = []*thlpb.Row{{Before: before}}
	case 1:
		rc.Table, rc.Columns, rc.Action, text, q = "p", pc, thlpb.RowChange_INSERT, fmt.Sprintf("insert p%d", id), fmt.Sprintf("INSERT INTO app.p VALUES (%d, '%s')", id, v)
		rc.Rows = []*thlpb.Row{{After: row(vInt(int64(id)), vBytes(v))}}
	case 2:
		rc.Action, text = thlpb.RowChange_INSERT, fmt.Sprintf("insert c%d→%v", cid, refSQL)
		q = fmt.Sprintf("INSERT INTO app.c VALUES (%d, %s, '%s')", cid, strings.Join(refSQL, ", "), v)
		rc.Rows = []*thlpb.Row{{After: cimg()}}
	case 3:
		before, ok := fkCausalRead(tx, "SELECT * FROM app.c WHERE id = ?", cid, 2+len(rules))
		if !ok {
			return nil, "", false
		}
		var set []string
		for k := range rules {
			set = append(set, fmt.Sprintf("r%d = %s", k, refSQL[k]))
		}
		rc.Action, text = thlpb.RowChange_UPDATE, fmt.Sprintf("update c%d→%v", cid, refSQL)
		q = fmt.Sprintf("UPDATE app.c SET %s, v = '%s' WHERE id = %d", strings.Join(set, ", "), v, cid)
		rc.Rows = []*thlpb.Row{{Before: before, After: cimg()}}
	default:
		before, ok := fkCausalRead(tx, "SELECT * FROM app.c WHERE id = ?", cid, 2+len(rules))
		if !ok {
			return nil, "", false
		}
		rc.Action, text, q = thlpb.RowChange_DELETE, fmt.Sprintf("delete c%d", cid), fmt.Sprintf("DELETE FROM app.c WHERE id = %d", cid)
		rc.Rows = []*thlpb.Row{{Before: before}}
	}
	if _, err := tx.Exec(q); err != nil {
		return nil, "", false
	}
	return &thlpb.Change{Change: &thlpb.Change_Rows{Rows: rc}}, text, true
}

// fkCausalRead reads one row of n columns (integers, or text last) by id
// as an image; ok is false where there is none.
func fkCausalRead(db interface {
	QueryRow(string, ...any) *sql.Row
}, q string, id, n int) ([]*thlpb.Value, bool) {
	vals := make([]sql.NullString, n)
	dest := make([]any, n)
	for i := range vals {
		dest[i] = &vals[i]
	}
	if err := db.QueryRow(q, id).Scan(dest...); err != nil {
		return nil, false
	}
	img := make([]*thlpb.Value, n)
	for i, v := range vals {
		switch {
		case !v.Valid:
			img[i] = vNull()
		case i == n-1:
			img[i] = vBytes(v.String)
		default:
			x, _ := strconv.ParseInt(v.String, 10, 64)
			img[i] = vInt(x)
		}
	}
	return img, true
}

// fkCausalReplay applies mix's changes in the order seq names on a fresh
// database, order[0] winning, and returns the rows it ends with.
func fkCausalReplay(t *testing.T, db *sql.DB, addr string, rules []string, order []string, seq string, mix *causalMix) string {
	t.Helper()
	fkMixDDL(t, db, rules)
	thl := newSiteTHL()
	a := openApplier(t, Config{Addr: addr, Service: "east", Site: "east", Channels: 1,
		Conflicts: Conflicts{Policy: PolicyConverge, SiteOrder: order}, Deleted: thl.deleted, Positions: thl.positions})
	defer a.Close()
	next := map[string]int{}
	for n, c := range seq {
		site := map[rune]string{'e': "east", 'w': "west"}[c]
		ev := mix.events[site][next[site]]
		next[site]++
		replay := proto.Clone(ev).(*thlpb.Event)
		replay.Seqno, replay.EventId = uint64(n), fmt.Sprintf("mysql-bin.000001:%016d", 100+n)
		if err := runUntil(t, a, uint64(n), replay); err != nil {
			return fmt.Sprintf("error at %s's change %d: %v", site, next[site], err)
		}
		thl.add(site, ev)
	}
	return fkMixRows(t, db, rules)
}
