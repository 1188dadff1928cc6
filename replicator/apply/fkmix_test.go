package apply

import (
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/carbidedb/carbide/internal/testutil"
	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

// TestConflictForeignKeyMixConverges: random short mixes of parent and
// child changes on both sites, all concurrent (each site's after what
// both had at the start), applied in every order a host can meet them,
// must end the same in every order, for each ON DELETE rule and either
// site winning. Each site's changes are made on a model of its own
// database (a parent's DELETE cascading, nulling or refused as the rule
// says, none of which is in its binlog), so that every change is one
// its site could have made. FKMIX_SCENARIOS sets how many mixes (default
// 2, about 25 s; 60 passed on 2026-12-08), FKMIX_SEED the first seed.
func TestConflictForeignKeyMixConverges(t *testing.T) {
	testutil.RequireDB(t)
	srv := testutil.StartMariaDB(t)
	db := testutil.DB(t, srv)
	scenarios, seed := mixSeeds("FKMIX", 2)
	for s := seed; s < seed+uint64(scenarios); s++ {
		for _, rules := range [][]string{{"CASCADE"}, {"RESTRICT"}, {"SET NULL"}, {"CASCADE", "RESTRICT", "SET NULL"}} {
			rng := rand.New(rand.NewPCG(s, 7))
			east, west := fkMixSite("east", rules, rng), fkMixSite("west", rules, rng)
			for _, order := range [][]string{{"east", "west"}, {"west", "east"}} {
				ends := map[string][]string{}
				for _, seq := range interleavings(make([]siteChange, len(east)), make([]siteChange, len(west))) {
					end := fkMixRun(t, db, srv.Addr(), rules, order, seq, east, west)
					ends[end] = append(ends[end], seq)
				}
				if len(ends) > 1 {
					var b strings.Builder
					for end, seqs := range ends {
						fmt.Fprintf(&b, "\n  %s: orders %v", end, seqs)
					}
					t.Errorf("seed %d, %v, %s wins: east %s, west %s end differently:%s", s, rules, order[0], fkMixText(east), fkMixText(west), b.String())
				}
			}
		}
	}
}

// fkMixOp is one change a site made: its event's action and row.
type fkMixOp struct {
	table  string
	action thlpb.RowChange_Action
	row    *thlpb.Row
	text   string
}

func fkMixText(ops []fkMixOp) string {
	var out []string
	for _, op := range ops {
		out = append(out, op.text)
	}
	return "[" + strings.Join(out, "; ") + "]"
}

// fkMixChild is a child row of the model: its parents (0: NULL), one
// per foreign key, and its value.
type fkMixChild struct {
	refs [3]int
	v    string
}

// fkMixSite draws 1 to 4 changes site makes on its own copy of the start
// (parents 1 to 3, child 10 of parent 1 by each key), each one its
// database allows; the child table has a foreign key to the parents for
// each of rules.
func fkMixSite(site string, rules []string, rng *rand.Rand) []fkMixOp {
	p := map[int]string{1: "o", 2: "o", 3: "o"}
	c := map[int]fkMixChild{10: {[3]int{1, 1, 1}, "o"}}
	pimg := func(id int, v string) []*thlpb.Value { return row(vInt(int64(id)), vBytes(v)) }
	cimg := func(id int, ch fkMixChild) []*thlpb.Value {
		img := row(vInt(int64(id)))
		for k := range rules {
			if ch.refs[k] == 0 {
				img = append(img, vNull())
			} else {
				img = append(img, vInt(int64(ch.refs[k])))
			}
		}
		return append(img, vBytes(ch.v))
	}
	refs := func() (out [3]int, ok bool) {
		for k := range rules {
			out[k] = rng.IntN(4) // 0: NULL
			if _, there := p[out[k]]; out[k] != 0 && !there {
				return out, false
			}
		}
		return out, true
	}
	var ops []fkMixOp
	for n, want, tries := 0, 1+rng.IntN(4), 0; n < want && tries < 100; tries++ {
		v := fmt.Sprintf("%s%d", site[:1], n)
		id, cid := 1+rng.IntN(3), 10+rng.IntN(2)
		switch rng.IntN(5) {
		case 0: // delete a parent
			old, ok := p[id]
			if !ok {
				continue
			}
			refused := false
			for _, ch := range c {
				for k, rule := range rules {
					refused = refused || ch.refs[k] == id && rule == "RESTRICT"
				}
			}
			if refused {
				continue
			}
			delete(p, id)
			for cid, ch := range c {
				for k, rule := range rules {
					if ch.refs[k] != id {
						continue
					}
					if rule == "CASCADE" {
						delete(c, cid)
						break
					}
					ch.refs[k] = 0
					c[cid] = ch
				}
			}
			ops = append(ops, fkMixOp{"p", thlpb.RowChange_DELETE, &thlpb.Row{Before: pimg(id, old)}, fmt.Sprintf("delete p%d", id)})
		case 1: // insert a parent
			if _, ok := p[id]; ok {
				continue
			}
			p[id] = v
			ops = append(ops, fkMixOp{"p", thlpb.RowChange_INSERT, &thlpb.Row{After: pimg(id, v)}, fmt.Sprintf("insert p%d", id)})
		case 2: // insert a child
			r, ok := refs()
			if _, there := c[cid]; there || !ok {
				continue
			}
			c[cid] = fkMixChild{r, v}
			ops = append(ops, fkMixOp{"c", thlpb.RowChange_INSERT, &thlpb.Row{After: cimg(cid, c[cid])}, fmt.Sprintf("insert c%d→%v", cid, r[:len(rules)])})
		case 3: // point a child elsewhere
			old, there := c[cid]
			r, ok := refs()
			if !there || !ok {
				continue
			}
			c[cid] = fkMixChild{r, v}
			ops = append(ops, fkMixOp{"c", thlpb.RowChange_UPDATE, &thlpb.Row{Before: cimg(cid, old), After: cimg(cid, c[cid])}, fmt.Sprintf("update c%d→%v", cid, r[:len(rules)])})
		default: // delete a child
			old, ok := c[cid]
			if !ok {
				continue
			}
			delete(c, cid)
			ops = append(ops, fkMixOp{"c", thlpb.RowChange_DELETE, &thlpb.Row{Before: cimg(cid, old)}, fmt.Sprintf("delete c%d", cid)})
		}
		n++
	}
	return ops
}

// fkMixRun applies east's and west's changes in the order seq names on a
// fresh start, order[0] winning, and returns the rows it ends with.
func fkMixRun(t *testing.T, db *sql.DB, addr string, rules []string, order []string, seq string, east, west []fkMixOp) string {
	t.Helper()
	cc := fkMixDDL(t, db, rules)
	thl := newSiteTHL()
	a := openApplier(t, Config{Addr: addr, Service: "east", Site: "east", Channels: 1,
		Conflicts: Conflicts{Policy: PolicyConverge, SiteOrder: order}, Deleted: thl.deleted, Positions: thl.positions})
	pc := []*thlpb.Column{{Name: "id", Key: true}, {Name: "v"}}
	i, j := 0, 0
	for n, site := range seq {
		op, origin, other := fkMixOp{}, "east", "west"
		if site == 'e' {
			op, i = east[i], i+1
		} else {
			op, j, origin, other = west[j], j+1, "west", "east"
		}
		cols := pc
		if op.table == "c" {
			cols = cc
		}
		ev := from(origin, rowsEvent(uint64(n), op.action, op.table, cols, op.row))
		ev.After = []*thlpb.After{{Service: other, Seqno: siteTHLBase}}
		if err := runUntil(t, a, uint64(n), ev); err != nil {
			return fmt.Sprintf("error at %s's %s: %v", origin, op.text, err)
		}
		thl.add(origin, ev)
	}
	a.Close()
	return fkMixRows(t, db, rules)
}

// mixSeeds reads how many mixes a mix test draws (PREFIX_SCENARIOS,
// default n) and its first seed (PREFIX_SEED, default 1).
func mixSeeds(prefix string, n int) (scenarios int, seed uint64) {
	scenarios, seed = n, 1
	if v, err := strconv.Atoi(os.Getenv(prefix + "_SCENARIOS")); err == nil {
		scenarios = v
	}
	if v, err := strconv.ParseUint(os.Getenv(prefix+"_SEED"), 10, 64); err == nil {
		seed = v
	}
	return scenarios, seed
}
