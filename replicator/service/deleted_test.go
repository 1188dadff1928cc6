package service

import (
	"context"
	"testing"
	"time"

	"github.com/carbidedb/carbide/replicator/apply"
	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

// TestChangedIndex: Deleted names the rows the THL's transactions after
// a seqno changed (an INSERT, a DELETE, an UPDATE: its key before and
// after), as it grows; an earlier seqno, and a history that starts again,
// are read anew.
func TestChangedIndex(t *testing.T) {
	h := newHarness(t)
	s := h.start(RoleSlave)
	cols := []*thlpb.Column{{Name: "id", Key: true}, {Name: "v"}}
	img := func(id int64) []*thlpb.Value {
		return []*thlpb.Value{{Value: &thlpb.Value_Int{Int: id}}, {Value: &thlpb.Value_Bytes{Bytes: []byte("v")}}}
	}
	key := func(id int64) string {
		k, _ := apply.RowKey(&thlpb.RowChange{Columns: cols}, img(id))
		return k
	}
	change := func(seqno uint64, action thlpb.RowChange_Action, rows ...*thlpb.Row) *thlpb.Event {
		return &thlpb.Event{Seqno: seqno, LastFrag: true, EventId: eventID(seqno), SourceId: "east1", Changes: []*thlpb.Change{{Change: &thlpb.Change_Rows{
			Rows: &thlpb.RowChange{Schema: "app", Table: "t", Action: action, Columns: cols, Rows: rows}}}}}
	}
	add := func(evs ...*thlpb.Event) {
		if err := s.Store().Append(evs...); err != nil {
			t.Fatal(err)
		}
	}
	add(change(0, thlpb.RowChange_DELETE, &thlpb.Row{Before: img(1)}),
		change(1, thlpb.RowChange_INSERT, &thlpb.Row{After: img(2)}),
		change(2, thlpb.RowChange_DELETE, &thlpb.Row{Before: img(3)}))
	ctx := context.Background()
	ask := func(after uint64, ids ...int64) map[int64]bool {
		var qs []apply.DeletedQuery
		for _, id := range ids {
			qs = append(qs, apply.DeletedQuery{After: after, Schema: "app", Table: "t", Key: key(id)})
		}
		got, err := s.Deleted(ctx, qs)
		if err != nil || len(got) != len(qs) {
			t.Fatalf("Deleted: %v, %v", got, err)
		}
		out := map[int64]bool{}
		for i, id := range ids {
			if got[i] {
				out[id] = true
			}
		}
		return out
	}
	if got := ask(1, 1, 2, 3); len(got) != 1 || !got[3] {
		t.Errorf("after 1: %v, want 3 deleted", got)
	}
	add(change(3, thlpb.RowChange_UPDATE, &thlpb.Row{Before: img(2), After: img(5)}))
	if got := ask(1, 1, 2, 3); len(got) != 2 || !got[2] || !got[3] {
		t.Errorf("after 1, the THL grown: %v, want 2 and 3", got)
	}
	if got := ask(0, 1, 2); len(got) != 1 || !got[2] {
		t.Errorf("after 0: %v, want 2", got)
	}
	if got := ask(3, 1, 2, 3); len(got) != 0 {
		t.Errorf("after the last: %v, want none", got)
	}
	if got := ask(2, 5); len(got) != 1 || !got[5] {
		t.Errorf("after 2: %v, want 5 (the key row 2 moved to)", got)
	}
	// Up to a bound (what the asking host applied): row 2 changed at 1
	// and 3.
	for _, c := range []struct {
		after, upTo uint64
		want        bool
	}{{0, 2, true}, {1, 2, false}, {1, 3, true}, {1, 0, true}, {3, 0, false}} {
		got, err := s.Deleted(ctx, []apply.DeletedQuery{{After: c.after, UpTo: c.upTo, Schema: "app", Table: "t", Key: key(2)}})
		if err != nil || len(got) != 1 || got[0] != c.want {
			t.Errorf("row 2 changed after %d up to %d: %v %v, want %v", c.after, c.upTo, got, err, c.want)
		}
	}
	add(change(4, thlpb.RowChange_UPDATE, &thlpb.Row{Before: img(1), After: img(1)}))
	if got := ask(3, 1, 2, 5); len(got) != 1 || !got[1] {
		t.Errorf("after 3: %v, want 1 (updated in place)", got)
	}
	if s.changes.from != 1 || s.changes.upTo != 4 {
		t.Errorf("index [%d, %d], want [1, 4]: read once, from the earliest seqno asked", s.changes.from, s.changes.upTo)
	}
}

// TestChangedIndexUniqueValues: a question about a unique key's values
// (apply.UniqueKey) is answered for values a row took (an INSERT's or
// UPDATE's after-image) after its seqno, not for values given up (an
// UPDATE's before-image, a DELETE's), including the changes read before
// the key was first asked about.
func TestChangedIndexUniqueValues(t *testing.T) {
	h := newHarness(t)
	s := h.start(RoleSlave)
	cols := []*thlpb.Column{{Name: "id", Key: true}, {Name: "email"}}
	img := func(id int64, email string) []*thlpb.Value {
		return []*thlpb.Value{{Value: &thlpb.Value_Int{Int: id}}, {Value: &thlpb.Value_Bytes{Bytes: []byte(email)}}}
	}
	rc := &thlpb.RowChange{Columns: cols}
	change := func(seqno uint64, action thlpb.RowChange_Action, row *thlpb.Row) *thlpb.Event {
		return &thlpb.Event{Seqno: seqno, LastFrag: true, EventId: eventID(seqno), SourceId: "east1", Changes: []*thlpb.Change{{Change: &thlpb.Change_Rows{
			Rows: &thlpb.RowChange{Schema: "app", Table: "t", Action: action, Columns: cols, Rows: []*thlpb.Row{row}}}}}}
	}
	if err := s.Store().Append(
		change(0, thlpb.RowChange_DELETE, &thlpb.Row{Before: img(8, "z")}),
		change(1, thlpb.RowChange_INSERT, &thlpb.Row{After: img(1, "a")}),
		change(2, thlpb.RowChange_UPDATE, &thlpb.Row{Before: img(1, "a"), After: img(1, "b")}),
		change(3, thlpb.RowChange_DELETE, &thlpb.Row{Before: img(9, "c")})); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	email := []string{"email"}
	// The row key is asked first: the index holds no unique values yet.
	pk, _ := apply.RowKey(rc, img(1, "a"))
	if got, err := s.Deleted(ctx, []apply.DeletedQuery{{After: 0, Schema: "app", Table: "t", Key: pk}}); err != nil || !got[0] {
		t.Fatalf("row 1 after 0: %v %v", got, err)
	}
	for _, c := range []struct {
		after uint64
		email string
		want  bool
	}{{0, "a", true}, {1, "a", false}, {2, "a", false}, {1, "b", true}, {2, "b", false}, {2, "c", false}, {0, "d", false}} {
		k, _ := apply.UniqueKey(rc, email, img(0, c.email))
		got, err := s.Deleted(ctx, []apply.DeletedQuery{{After: c.after, Schema: "app", Table: "t", Key: k, Unique: email}})
		if err != nil || len(got) != 1 || got[0] != c.want {
			t.Errorf("email %s taken after %d: %v %v, want %v", c.email, c.after, got, err, c.want)
		}
	}
	// A row key never answers for a unique value, nor the reverse.
	if k, _ := apply.UniqueKey(rc, []string{"id"}, img(1, "")); k == pk {
		t.Errorf("a unique key renders as the row key %q", pk)
	}
	// Deleted rows are known apart from changed ones (DeletedKey): row 9
	// deleted after 2, row 1 changed but never deleted.
	for _, c := range []struct {
		id    int64
		after uint64
		want  bool
	}{{9, 2, true}, {9, 3, false}, {8, 0, false}, {1, 0, false}} {
		k, _ := apply.RowKey(rc, img(c.id, ""))
		got, err := s.Deleted(ctx, []apply.DeletedQuery{{After: c.after, Schema: "app", Table: "t", Key: apply.DeletedKey(k)}})
		if err != nil || len(got) != 1 || got[0] != c.want {
			t.Errorf("row %d deleted after %d: %v %v, want %v", c.id, c.after, got, err, c.want)
		}
	}
}

// TestDeletedOnMasterWaitsForExtraction: on a master, its clients' deletes
// are in the database before the THL; a question is answered once the
// extractor stored everything the binlog held when it came, so a delete
// committed before the asking applier locked its row is never missed.
func TestDeletedOnMasterWaitsForExtraction(t *testing.T) {
	h := newHarness(t)
	cols := []*thlpb.Column{{Name: "id", Key: true}, {Name: "v"}}
	img := []*thlpb.Value{{Value: &thlpb.Value_Int{Int: 7}}, {Value: &thlpb.Value_Bytes{Bytes: []byte("v")}}}
	key, _ := apply.RowKey(&thlpb.RowChange{Columns: cols}, img)
	h.binlog.changes = map[uint64][]*thlpb.Change{300: {{Change: &thlpb.Change_Rows{
		Rows: &thlpb.RowChange{Schema: "app", Table: "t", Action: thlpb.RowChange_DELETE, Columns: cols, Rows: []*thlpb.Row{{Before: img}}}}}}}
	h.binlog.commit(2)
	s := h.start(RoleMaster)
	if err := s.Online(OnlineOptions{FromEvent: localID(0)}); err != nil {
		t.Fatal(err)
	}
	waitApplied(t, s, 1)
	h.binlog.pause(true)
	h.binlog.commit(1) // a client's DELETE of id 7, committed, not extracted
	answer := make(chan []bool, 1)
	go func() {
		got, err := s.Deleted(context.Background(), []apply.DeletedQuery{{After: 1, Schema: "app", Table: "t", Key: key}})
		if err != nil {
			t.Error(err)
		}
		answer <- got
	}()
	select {
	case got := <-answer:
		t.Fatalf("answered %v before the delete was extracted", got)
	case <-time.After(200 * time.Millisecond):
	}
	h.binlog.pause(false)
	select {
	case got := <-answer:
		if len(got) != 1 || !got[0] {
			t.Fatalf("answered %v, want the row deleted", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no answer once the extractor went on")
	}
}

// TestChangedIndexReinserted: a row deleted and then made again (an
// INSERT, an UPDATE moving another row to its key, in the same
// transaction or a later one) is known as such (apply.ReinsertedKey), at
// its DELETE's seqno; a row deleted and not made again is not.
func TestChangedIndexReinserted(t *testing.T) {
	h := newHarness(t)
	s := h.start(RoleSlave)
	cols := []*thlpb.Column{{Name: "id", Key: true}, {Name: "v"}}
	img := func(id int64) []*thlpb.Value {
		return []*thlpb.Value{{Value: &thlpb.Value_Int{Int: id}}, {Value: &thlpb.Value_Bytes{Bytes: []byte("v")}}}
	}
	rows := func(action thlpb.RowChange_Action, row *thlpb.Row) *thlpb.Change {
		return &thlpb.Change{Change: &thlpb.Change_Rows{Rows: &thlpb.RowChange{Schema: "app", Table: "t", Action: action, Columns: cols, Rows: []*thlpb.Row{row}}}}
	}
	tx := func(seqno uint64, changes ...*thlpb.Change) *thlpb.Event {
		return &thlpb.Event{Seqno: seqno, LastFrag: true, EventId: eventID(seqno), SourceId: "east1", Changes: changes}
	}
	del := func(id int64) *thlpb.Change { return rows(thlpb.RowChange_DELETE, &thlpb.Row{Before: img(id)}) }
	if err := s.Store().Append(tx(0),
		tx(1, del(1)),
		tx(2, rows(thlpb.RowChange_INSERT, &thlpb.Row{After: img(1)})),
		tx(3, del(2)),
		tx(4, rows(thlpb.RowChange_UPDATE, &thlpb.Row{Before: img(3), After: img(2)})),
		tx(5, del(1)),
		tx(6, del(4), rows(thlpb.RowChange_INSERT, &thlpb.Row{After: img(4)}))); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		id          int64
		after, upTo uint64
		want        bool
	}{{1, 0, 0, true}, {1, 1, 0, false}, {2, 2, 0, true}, {2, 3, 0, false}, {3, 0, 0, false}, {4, 5, 0, true}, {4, 6, 0, false},
		{1, 0, 1, true}, {2, 0, 2, false}} {
		k, _ := apply.RowKey(&thlpb.RowChange{Columns: cols}, img(c.id))
		got, err := s.Deleted(context.Background(), []apply.DeletedQuery{{After: c.after, UpTo: c.upTo, Schema: "app", Table: "t", Key: apply.ReinsertedKey(k)}})
		if err != nil || len(got) != 1 || got[0] != c.want {
			t.Errorf("row %d deleted after %d up to %d and back: %v %v, want %v", c.id, c.after, c.upTo, got, err, c.want)
		}
	}
}

// TestChangedIndexDeletePositions: the first transaction after a seqno
// that deleted a row is known with what it had applied of another
// service (its Event.after), plus one; none, 0; one that had applied none
// of that service, 1.
func TestChangedIndexDeletePositions(t *testing.T) {
	h := newHarness(t)
	s := h.start(RoleSlave)
	cols := []*thlpb.Column{{Name: "id", Key: true}, {Name: "v"}}
	img := func(id int64) []*thlpb.Value {
		return []*thlpb.Value{{Value: &thlpb.Value_Int{Int: id}}, {Value: &thlpb.Value_Bytes{Bytes: []byte("v")}}}
	}
	tx := func(seqno uint64, action thlpb.RowChange_Action, row *thlpb.Row, after ...*thlpb.After) *thlpb.Event {
		return &thlpb.Event{Seqno: seqno, LastFrag: true, EventId: eventID(seqno), SourceId: "west1", After: after, Changes: []*thlpb.Change{{Change: &thlpb.Change_Rows{
			Rows: &thlpb.RowChange{Schema: "app", Table: "t", Action: action, Columns: cols, Rows: []*thlpb.Row{row}}}}}}
	}
	if err := s.Store().Append(tx(0, thlpb.RowChange_INSERT, &thlpb.Row{After: img(2)}),
		tx(1, thlpb.RowChange_DELETE, &thlpb.Row{Before: img(1)}, &thlpb.After{Service: "east", Seqno: 5}),
		tx(2, thlpb.RowChange_INSERT, &thlpb.Row{After: img(1)}, &thlpb.After{Service: "east", Seqno: 7}),
		tx(3, thlpb.RowChange_DELETE, &thlpb.Row{Before: img(1)}, &thlpb.After{Service: "east", Seqno: 9}),
		tx(4, thlpb.RowChange_DELETE, &thlpb.Row{Before: img(2)}, &thlpb.After{Service: "south", Seqno: 3})); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		id          int64
		after, upTo uint64
		want        uint64
	}{{1, 0, 0, 6}, {1, 1, 0, 10}, {1, 3, 0, 0}, {1, 1, 2, 0}, {2, 0, 0, 1}, {3, 0, 0, 0}} {
		k, _ := apply.RowKey(&thlpb.RowChange{Columns: cols}, img(c.id))
		got, err := s.DeletePositions(context.Background(), []apply.DeletedQuery{{After: c.after, UpTo: c.upTo, Schema: "app", Table: "t", Key: k, AfterOf: "east"}})
		if err != nil || len(got) != 1 || got[0] != c.want {
			t.Errorf("row %d deleted after %d up to %d: %v %v, want %d", c.id, c.after, c.upTo, got, err, c.want)
		}
	}
}
