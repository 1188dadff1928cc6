package consistency

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

func intv(n int64) *thlpb.Value { return &thlpb.Value{Value: &thlpb.Value_Int{Int: n}} }
func strv(s string) *thlpb.Value {
	return &thlpb.Value{Value: &thlpb.Value_Bytes{Bytes: []byte(s)}}
}

func rowEvent(schema, table string, cols []string, rows ...[2][]*thlpb.Value) *thlpb.Event {
	rc := &thlpb.RowChange{Schema: schema, Table: table, Action: thlpb.RowChange_UPDATE}
	for _, c := range cols {
		rc.Columns = append(rc.Columns, &thlpb.Column{Name: c})
	}
	for _, r := range rows {
		rc.Rows = append(rc.Rows, &thlpb.Row{Before: r[0], After: r[1]})
	}
	return &thlpb.Event{LastFrag: true, Changes: []*thlpb.Change{{Change: &thlpb.Change_Rows{Rows: rc}}}}
}

// TestTouchedKeys: a row change of the chunk's table names the keys it
// changed in the chunk's range (before and after images), as a rows query
// lists them; another table's changes and rows outside an integer range
// do not count; a statement naming the table, a key it cannot render or a
// source without column names count as any row.
func TestTouchedKeys(t *testing.T) {
	ch := &Chunk{Schema: "app", Table: "k", Key: []string{"id"}, IntKey: true, TextKey: true, HasLo: true, LoInt: 10, HasHi: true, HiInt: 20}
	ev := rowEvent("app", "k", []string{"id", "v"},
		[2][]*thlpb.Value{{intv(12), strv("a")}, {intv(12), strv("b")}},
		[2][]*thlpb.Value{{intv(5), strv("a")}, {intv(15), strv("b")}}, // moved into the chunk
		[2][]*thlpb.Value{{intv(30), strv("a")}, {intv(31), strv("b")}})
	all, keys := TouchedKeys(ev, ch)
	if all || strings.Join(keys, ",") != "12,12,15" {
		t.Errorf("TouchedKeys = %v %q, want 12,12,15", all, keys)
	}
	if all, keys := TouchedKeys(rowEvent("app", "other", []string{"id"}, [2][]*thlpb.Value{{intv(12)}, {intv(12)}}), ch); all || len(keys) > 0 {
		t.Error("another table's row counts")
	}
	comp := &Chunk{Schema: "app", Table: "s", Key: []string{"a", "b"}, TextKey: true}
	_, keys = TouchedKeys(rowEvent("app", "s", []string{"a", "b", "v"}, [2][]*thlpb.Value{nil, {strv("x'y"), intv(2), strv("v")}}), comp)
	if len(keys) != 1 || keys[0] != "x'y\x1f2" {
		t.Errorf("composite key: %q", keys)
	}
	st := &thlpb.Event{Changes: []*thlpb.Change{{Change: &thlpb.Change_Statement{Statement: &thlpb.Statement{Sql: "ALTER TABLE app.K ADD c INT"}}}}}
	for name, ev := range map[string]*thlpb.Event{
		"a statement naming the table": st,
		"a temporal key":               rowEvent("app", "s", []string{"a", "b"}, [2][]*thlpb.Value{nil, {{Value: &thlpb.Value_Text{Text: "2024-01-01"}}, intv(1)}}),
		"no column names":              rowEvent("app", "s", []string{"", ""}, [2][]*thlpb.Value{nil, {strv("x"), intv(1)}}),
	} {
		c := comp
		if name == "a statement naming the table" {
			c = ch
		}
		if all, _ := TouchedKeys(ev, c); !all {
			t.Errorf("%s: not taken as any row", name)
		}
	}
}

// TestMarkers: a marker is an insert into the applying service's own
// marker table; other services' and other actions are not.
func TestMarkers(t *testing.T) {
	ev := rowEvent("tungsten_east", MarkerTable, []string{"check_id", "chunk", "db", "tbl", "boundaries", "query"},
		[2][]*thlpb.Value{nil, {intv(77), intv(3), strv("app"), strv("k"), strv(""), strv("SELECT 1")}})
	ev.Changes[0].GetRows().Action = thlpb.RowChange_INSERT
	if m := Markers(ev, "tungsten_east"); len(m) != 1 || m[0] != (Marker{CheckID: 77, Chunk: 3, Query: "SELECT 1"}) {
		t.Errorf("Markers = %+v", m)
	}
	if m := Markers(ev, "tungsten_west"); len(m) != 0 {
		t.Errorf("another service's marker: %+v", m)
	}
	ev.Changes[0].GetRows().Action = thlpb.RowChange_DELETE
	if m := Markers(ev, "tungsten_east"); len(m) != 0 {
		t.Errorf("a deleted marker: %+v", m)
	}
}

// TestCompare: equal rows are equal whatever the vectors; different rows
// are a difference when the streams stood at the same seqnos, or the
// transactions between did not touch the chunk; otherwise changing.
func TestCompare(t *testing.T) {
	ref := &Result{Host: "east1", Snapshot: Snapshot{Count: 10, CRC: "a", Tracking: map[string]int64{"east": 100, "west": 50}}}
	same := &Result{Host: "west2", Snapshot: Snapshot{Count: 10, CRC: "a", Tracking: map[string]int64{"east": 100, "west": 70}}}
	other := &Result{Host: "west2", Snapshot: Snapshot{Count: 10, CRC: "b", Tracking: map[string]int64{"east": 100, "west": 50}}}
	behind := &Result{Host: "west2", Snapshot: Snapshot{Count: 10, CRC: "b", Tracking: map[string]int64{"east": 100, "west": 60}}}
	never := func(string, int64, int64) (bool, error) { t.Error("asked for nothing to compare"); return true, nil }
	var asked string
	touched := func(v bool, err error) Touched {
		return func(svc string, from, to int64) (bool, error) {
			asked = strings.Join([]string{svc, itoa(from), itoa(to)}, " ")
			return v, err
		}
	}
	for _, c := range []struct {
		name string
		r    *Result
		t    Touched
		want Verdict
	}{
		{"equal", same, never, Equal},
		{"different at the same point", other, never, Different},
		{"different, untouched between", behind, touched(false, nil), Different},
		{"different, touched between", behind, touched(true, nil), Changing},
		{"different, THL unreadable", behind, touched(false, errors.New("purged")), Changing},
		{"failed there", &Result{Err: "Unknown column"}, never, Different},
	} {
		if v, why := Compare(ref, c.r, c.t); v != c.want {
			t.Errorf("%s: %v (%s), want %v", c.name, v, why, c.want)
		}
	}
	if asked != "west 50 60" {
		t.Errorf("asked about %q, want west 50 60", asked)
	}
	unknown := &Result{Snapshot: Snapshot{Count: 1, CRC: "c", Tracking: map[string]int64{"east": 100, "west": Unknown}}}
	if v, _ := Compare(ref, unknown, never); v != Changing {
		t.Errorf("an unknown seqno: %v, want changing", v)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
