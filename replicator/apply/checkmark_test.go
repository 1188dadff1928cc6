package apply

import (
	"context"
	"testing"

	"github.com/carbidedb/carbide/internal/consistency"
	"github.com/carbidedb/carbide/internal/testutil"
	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

// TestCheckMarker: a consistency check's marker in the stream is applied
// like any row, and the applier checksums its chunk after committing
// everything before it and nothing after: with the blocks of 10 and 4
// channels it would otherwise commit with the rows around it. The result
// holds the marker's seqno and the tracking rows of the same snapshot; a
// marker whose query fails here is recorded as failed, and the stream
// goes on.
func TestCheckMarker(t *testing.T) {
	testutil.RequireDB(t)
	srv := testutil.StartMariaDB(t)
	db := testutil.DB(t, srv)
	testutil.Exec(t, db, "CREATE DATABASE app")
	testutil.Exec(t, db, "CREATE TABLE app.t (id INT PRIMARY KEY, v INT)")
	var checks consistency.Registry
	a, err := New(Config{Addr: srv.Addr(), User: "tungsten", Password: "secret", Service: "east", Channels: 4, Checks: &checks, Logger: testutil.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	c := cols("id", "v")
	ins := func(seqno uint64, id int64) *thlpb.Event {
		return rowsEvent(seqno, thlpb.RowChange_INSERT, "t", c, &thlpb.Row{After: []*thlpb.Value{vInt(id), vInt(id)}})
	}
	mcols := cols("check_id", "chunk", "db", "tbl", "boundaries", "query", "master", "ts")
	marker := func(seqno uint64, chunk int64, query string) *thlpb.Event {
		ev := rowsEvent(seqno, thlpb.RowChange_INSERT, consistency.MarkerTable, mcols,
			&thlpb.Row{After: []*thlpb.Value{vUint(9), vInt(chunk), vBytes("app"), vBytes("t"), vBytes(""), vBytes(query), vBytes("east1"), vNull()}})
		ev.Changes[0].GetRows().Schema, ev.Shard = "tungsten_east", "tungsten_east"
		return ev
	}
	tb := &consistency.Table{Schema: "app", Name: "t", Columns: []string{"id", "v"}, Key: []string{"id"}, IntKey: true}
	var evs []*thlpb.Event
	for i := uint64(0); i < 5; i++ {
		evs = append(evs, ins(i, int64(i)))
	}
	evs = append(evs, marker(5, 0, consistency.ChecksumQuery(tb, "")), marker(6, 1, "SELECT nosuch FROM app.t"))
	for i := uint64(7); i < 12; i++ {
		evs = append(evs, ins(i, int64(i)))
	}
	if err := runUntil(t, a, 11, evs...); err != nil {
		t.Fatal(err)
	}
	rs := checks.Results(9)
	if len(rs) != 2 {
		t.Fatalf("%d results, want 2: %+v", len(rs), rs)
	}
	if r := rs[0]; r.Chunk != 0 || r.Seqno != 5 || r.Count != 5 || r.Err != "" || r.Tracking["east"] != 5 {
		t.Errorf("the first marker's result: %+v; want 5 rows (seqnos 0-4), at east seqno 5", r)
	}
	if r := rs[1]; r.Chunk != 1 || r.Err == "" {
		t.Errorf("a marker whose query fails: %+v, want it recorded as failed", r)
	}
	var n int
	db.QueryRow("SELECT COUNT(*) FROM tungsten_east.consistency WHERE check_id = 9").Scan(&n)
	if n != 2 {
		t.Errorf("%d markers in tungsten_east.consistency, want 2", n)
	}
}
