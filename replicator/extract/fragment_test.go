package extract

import (
	"fmt"
	"testing"

	"github.com/carbidedb/carbide/internal/position"
	"github.com/carbidedb/carbide/internal/testutil"
	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

// TestFragments: a 5,000-row transaction arrives as fragments of at most
// 1,000 rows sharing one event_id, in order, last_frag on the last only;
// a byte limit cuts too. Fragments end between Rows events, whose source
// bytes travel with their rows.
func TestFragments(t *testing.T) {
	t.Parallel()
	srv, db := startDB(t)
	testutil.Exec(t, db, "CREATE DATABASE app")
	testutil.Exec(t, db, "CREATE TABLE app.big (id INT PRIMARY KEY, v VARCHAR(100))")
	testutil.Exec(t, db, "CREATE TABLE app.other (id INT PRIMARY KEY)")
	x := newExtractor(t, srv, nil)
	bytesX := newExtractor(t, srv, func(c *Config) { c.FragmentBytes = 1000; c.SourceID = "east1-bytes" })
	from := currentPosition(t, x)

	c := conn(t, db, "USE app", "BEGIN")
	execConn(t, c, "INSERT INTO app.big SELECT seq, CONCAT('row ', seq) FROM seq_1_to_5000")
	execConn(t, c, "INSERT INTO app.other VALUES (1)")
	execConn(t, c, "COMMIT")
	// Three rows events of 10 rows of 100 bytes: 1,000+ bytes each, cut
	// at 1,000 between them.
	execConn(t, c, "BEGIN")
	for i := range 3 {
		execConn(t, c, fmt.Sprintf("INSERT INTO app.big SELECT %d + seq, REPEAT('x', 100) FROM seq_1_to_10", 10000+10*i))
	}
	execConn(t, c, "COMMIT")

	txs := start(t, x, from).wait(t, 2)
	frags := txs[0]
	if len(frags) < 6 {
		t.Fatalf("%d fragments, want at least 6 (5,000 rows by 1,000 + the last row)", len(frags))
	}
	next := 1
	for i, f := range frags {
		last := i == len(frags)-1
		if f.Fragno != uint32(i) || f.LastFrag != last || f.EventId != frags[0].EventId || f.Shard != "app" || f.SourceId != "east1" {
			t.Errorf("fragment %d: fragno %d last %v event_id %s shard %s", i, f.Fragno, f.LastFrag, f.EventId, f.Shard)
		}
		n := 0
		for _, rc := range rowChanges(t, []*thlpb.Event{f}) {
			for _, row := range rc.Rows {
				n++
				if rc.Table == "other" {
					continue
				}
				if got := row.After[0].GetInt(); got != int64(next) {
					t.Fatalf("fragment %d: row id %d, want %d", i, got, next)
				}
				if got := string(row.After[1].GetBytes()); got != fmt.Sprintf("row %d", next) {
					t.Fatalf("fragment %d: row %d value %q", i, next, got)
				}
				next++
			}
		}
		if n == 0 || n > 1000 {
			t.Errorf("fragment %d has %d rows, want 1 to 1,000", i, n)
		}
		for _, rc := range rowChanges(t, []*thlpb.Event{f}) {
			if len(rc.Binlog) == 0 {
				t.Errorf("fragment %d: a RowChange of %s carries no source events", i, rc.Table)
			}
		}
	}
	if next != 5001 {
		t.Errorf("rows 1..%d extracted, want 1..5000", next-1)
	}
	last := rowChanges(t, frags[len(frags)-1:])
	if len(last) == 0 || last[len(last)-1].Table != "other" {
		t.Errorf("last fragment: %v", last)
	}

	// Byte limit: 3 events of 10 rows of ~108 bytes, at most 1,000 bytes
	// each → 3 fragments.
	small := start(t, bytesX, from).wait(t, 2)[1]
	if len(small) != 3 {
		t.Fatalf("%d fragments under FragmentBytes=1000, want 3", len(small))
	}
	total := 0
	for i, f := range small {
		n := 0
		for _, rc := range rowChanges(t, []*thlpb.Event{f}) {
			n += len(rc.Rows)
		}
		if n != 10 || f.LastFrag != (i == 2) || f.Fragno != uint32(i) {
			t.Errorf("fragment %d: %d rows, last %v", i, n, f.LastFrag)
		}
		total += n
	}
	if total != 30 {
		t.Errorf("%d rows in the fragments, want 30", total)
	}
}

// TestTxnFragmentLimits checks the cutting rules without a database.
func TestTxnFragmentLimits(t *testing.T) {
	ti := &tableInfo{schema: "a", table: "t"}
	tx := txn{lim: txnLimits{maxRows: 3, maxBytes: 100}}
	one := []*thlpb.Row{{}}
	for range 7 {
		tx.addRows(ti, thlpb.RowChange_INSERT, one, 10, nil, nil, false)
	}
	tx.addStatement(&thlpb.Statement{Schema: "b", Sql: "x"})
	tx.addRows(ti, thlpb.RowChange_INSERT, one, 500, nil, nil, false) // too big alone: gets a fragment of its own
	// A Rows event is never split: its rows stay with its source event.
	tx.addRows(ti, thlpb.RowChange_INSERT, make([]*thlpb.Row, 5), 10, []byte("m"), []byte("e"), false)
	var evs []*thlpb.Event
	calls := 0
	if _, err := tx.finish(stamp{pos: position0, sourceID: "h", service: "east", commitUS: 1, extractUS: 2}, func(frags []*thlpb.Event) error {
		calls++
		evs = append(evs, frags...)
		return nil
	}); err != nil || calls != 1 {
		t.Fatalf("finish: %d calls to send, %v; want one call", calls, err)
	}
	var shape []string
	for _, ev := range evs {
		s := ""
		for _, ch := range ev.Changes {
			if rc := ch.GetRows(); rc != nil {
				s += fmt.Sprintf("r%d", len(rc.Rows))
			} else {
				s += "s"
			}
		}
		shape = append(shape, s)
		if ev.Shard != multiShard {
			t.Errorf("shard %q, want %q", ev.Shard, multiShard)
		}
	}
	if got := fmt.Sprint(shape); got != "[r3 r3 r1s r1 r5]" {
		t.Errorf("fragments %s, want [r3 r3 r1s r1 r5]", got)
	}
	if rc := evs[len(evs)-1].Changes[0].GetRows(); string(rc.Binlog) != "me" {
		t.Errorf("the last RowChange's binlog is %q, want the table map and its event, \"me\"", rc.Binlog)
	}
}

func TestEventIDMatchesPosition(t *testing.T) {
	for _, p := range []position.Position{
		{File: "mysql-bin.000001", Offset: 4},
		{File: "mysql-bin.000123", Offset: 1234567, GTID: "0-1001-42"},
		{File: "b.1", Offset: 1<<64 - 1, GTID: "3e11fa47-71ca-11e1-9e33-c80aa9429562:23"},
	} {
		if got, want := eventID(p), p.String(); got != want {
			t.Errorf("eventID = %q, want %q", got, want)
		}
	}
	if got := mariadbGTID(1, 1001, 1<<40); got != "1-1001-1099511627776" {
		t.Errorf("mariadbGTID = %q", got)
	}
}
