package extract

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/go-mysql-org/go-mysql/replication"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	"github.com/carbidedb/carbide/internal/testutil"
	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

// spillLimits cuts fragments of 10 rows and spills past 5,000 bytes of
// weight: a 10-row fragment of fill's weighs about 10*(3*64+16+8) = 2,160.
func spillLimits(t *testing.T, dir string) txnLimits {
	return txnLimits{maxRows: 10, maxBytes: 1 << 20, spillBytes: 5000, spillDir: dir,
		spillPattern: "carbide-extract-east-*.spill", log: testutil.Logger(t)}
}

// fill adds n one-row inserts of two tables (a statement every 100 rows)
// to tx, calling check after each.
func fill(tx *txn, n int, check func()) {
	a := &tableInfo{schema: "app", table: "a"}
	b := &tableInfo{schema: "app", table: "b"}
	for i := range n {
		ti := a
		if i%7 == 0 {
			ti = b
		}
		row := &thlpb.Row{After: []*thlpb.Value{vInt(int64(i)), vBytes(fmt.Sprintf("row %04d", i))}}
		tx.addRows(ti, thlpb.RowChange_INSERT, []*thlpb.Row{row}, 16, []byte("map"), fmt.Appendf(nil, "event %d", i), false)
		if i%100 == 99 {
			tx.addStatement(&thlpb.Statement{Schema: "app", Sql: fmt.Sprintf("UPDATE app.c SET n = %d", i)})
		}
		if check != nil {
			check()
		}
	}
}

// spillFiles lists the spill files in dir.
func spillFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "carbide-extract-*.spill"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// sendCalls records the calls to send.
type sendCalls [][]*thlpb.Event

func (c *sendCalls) send(evs []*thlpb.Event) error {
	*c = append(*c, evs)
	return nil
}

func (c sendCalls) all() []*thlpb.Event {
	var out []*thlpb.Event
	for _, evs := range c {
		out = append(out, evs...)
	}
	return out
}

var testStamp = stamp{pos: position0, sourceID: "east1", service: "east", preparedFrom: "mysql-bin.000001:0000000000000004", commitUS: 1, extractUS: 2}

// TestSpillRoundTrip: a transaction of many fragments moves its completed
// fragments to a spill file as it grows, holding no more than the bound in
// memory; its commit sends, in several calls of about the bound, exactly
// the fragments, stamped, that it would have sent whole from memory, in
// order, only the last marked LastFrag; the file goes with the reset.
func TestSpillRoundTrip(t *testing.T) {
	dir := t.TempDir()
	tx := txn{lim: spillLimits(t, dir)}
	tx.heartbeat, tx.heartName = true, "hb"
	maxFrags := 0
	fill(&tx, 1000, func() {
		if tx.held > tx.lim.spillBytes {
			t.Fatalf("%d bytes of completed fragments held in memory, above the bound %d", tx.held, tx.lim.spillBytes)
		}
		maxFrags = max(maxFrags, len(tx.frags))
	})
	// About 2,160 a fragment: two completed (4,320) stay, the third spills
	// them all.
	if maxFrags > 3 {
		t.Errorf("up to %d fragments in memory, want at most 3 (5,000 bytes of 2,160-byte fragments, and the one being filled)", maxFrags)
	}
	if tx.spilled < 90 || len(spillFiles(t, dir)) != 1 {
		t.Fatalf("%d fragments spilled, files %v; want most of the 100+ in one file", tx.spilled, spillFiles(t, dir))
	}

	whole := txn{lim: txnLimits{maxRows: 10, maxBytes: 1 << 20}}
	whole.heartbeat, whole.heartName = true, "hb"
	fill(&whole, 1000, nil)
	var want sendCalls
	if _, err := whole.finish(testStamp, want.send); err != nil || len(want) != 1 {
		t.Fatalf("the transaction held in memory: %d calls to send, %v; want 1", len(want), err)
	}

	var got sendCalls
	n, err := tx.finish(testStamp, got.send)
	if err != nil {
		t.Fatal(err)
	}
	all := got.all()
	if n != len(all) || len(all) != len(want[0]) {
		t.Fatalf("%d fragments sent (finish says %d), want %d", len(all), n, len(want[0]))
	}
	if len(got) < 10 {
		t.Errorf("%d calls to send, want one per spill of about 5,000 bytes (2 or 3 fragments)", len(got))
	}
	for i, evs := range got {
		if len(evs) > 3 {
			t.Errorf("call %d carries %d fragments, more than the bound of 5,000 bytes holds", i, len(evs))
		}
		for j, f := range evs {
			if last := i == len(got)-1 && j == len(evs)-1; f.LastFrag != last {
				t.Errorf("call %d fragment %d: LastFrag %v", i, j, f.LastFrag)
			}
		}
	}
	for i := range all {
		if !proto.Equal(all[i], want[0][i]) {
			t.Fatalf("fragment %d read back differs:\n%s\nwant\n%s", i, prototext.Format(all[i]), prototext.Format(want[0][i]))
		}
		if f := all[i]; f.Fragno != uint32(i) || f.EventId != eventID(position0) || f.PreparedFrom != testStamp.preparedFrom ||
			f.Heartbeat != "hb" || f.Shard != "app" || f.SourceCommitTimeUs != 1 {
			t.Fatalf("fragment %d stamped %s", i, prototext.Format(&thlpb.Event{Fragno: f.Fragno, EventId: f.EventId, PreparedFrom: f.PreparedFrom, Heartbeat: f.Heartbeat, Shard: f.Shard}))
		}
	}
	tx.reset()
	if m := spillFiles(t, dir); len(m) != 0 {
		t.Errorf("spill files left after the reset: %v", m)
	}
	if !tx.empty() || tx.lim.spillBytes != 5000 {
		t.Errorf("after the reset: empty %v, limits %+v", tx.empty(), tx.lim)
	}
}

// TestSpillSmallTransaction: a transaction within the bound creates no
// file and goes in one call.
func TestSpillSmallTransaction(t *testing.T) {
	dir := t.TempDir()
	tx := txn{lim: spillLimits(t, dir)}
	fill(&tx, 20, nil)
	var got sendCalls
	if n, err := tx.finish(testStamp, got.send); err != nil || n != 2 || len(got) != 1 || !got[0][1].LastFrag {
		t.Fatalf("finish: %d fragments in %d calls, %v; want 2 in one call", n, len(got), err)
	}
	if tx.file != nil || len(spillFiles(t, dir)) != 0 {
		t.Errorf("a transaction within the bound made a spill file")
	}
}

// testRun is a run of an extractor that is never started.
func testRun(t *testing.T, dir string, send func([]*thlpb.Event) error) *run {
	x := &Extractor{cfg: Config{Service: "east", SourceID: "east1", Clock: DefaultConfig().Clock}, log: testutil.Logger(t)}
	r := &run{x: x, file: "mysql-bin.000001", send: send}
	r.tx.lim = spillLimits(t, dir)
	return r
}

// TestSpillRemoved: however a spilled transaction ends — dropped by loop
// prevention, failed, sent, a send that fails, discarded, an XA one
// rolled back, committed or still prepared when Run ends — its spill file
// goes.
func TestSpillRemoved(t *testing.T) {
	h := &replication.EventHeader{}
	failing := errors.New("store full")
	for _, c := range []struct {
		name string
		end  func(r *run) error
		want error
	}{
		{"dropped", func(r *run) error { r.tx.drop = "origin=west"; return r.commit(h, 100) }, nil},
		{"failed", func(r *run) error { r.tx.err = errorf(ErrDecode, "bad row"); return r.commit(h, 100) }, ErrDecode},
		{"sent", func(r *run) error { return r.commit(h, 100) }, nil},
		{"send fails", func(r *run) error {
			r.send = func([]*thlpb.Event) error { return failing }
			return r.commit(h, 100)
		}, failing},
		{"discarded", func(r *run) error {
			return r.handle(context.Background(), &replication.BinlogEvent{Header: h, Event: &replication.FormatDescriptionEvent{}}, 100)
		}, nil},
		{"XA rolled back", func(r *run) error {
			r.prepared = map[string]*xaPrepared{"x'01',x'',1": {tx: r.tx}}
			r.tx = txn{lim: r.tx.lim}
			return r.xaStatement(h, []byte("XA ROLLBACK X'01',X'',1"), 100)
		}, nil},
		{"XA committed", func(r *run) error {
			r.prepared = map[string]*xaPrepared{"x'01',x'',1": {tx: r.tx}}
			r.tx = txn{lim: r.tx.lim}
			return r.xaStatement(h, []byte("XA COMMIT X'01',X'',1"), 100)
		}, nil},
		{"prepared when Run ends", func(r *run) error {
			r.prepared = map[string]*xaPrepared{"x'01',x'',1": {tx: r.tx}}
			r.tx = txn{lim: r.tx.lim}
			fill(&r.tx, 100, nil) // and one being read
			r.close()
			return nil
		}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			var sent sendCalls
			r := testRun(t, dir, sent.send)
			r.tx.open = true
			fill(&r.tx, 100, nil)
			if len(spillFiles(t, dir)) != 1 {
				t.Fatalf("no spill file")
			}
			if err := c.end(r); !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			if m := spillFiles(t, dir); len(m) != 0 {
				t.Errorf("spill files left: %v", m)
			}
			if (c.name == "sent" || c.name == "XA committed") && (len(sent.all()) != 11 || r.x.Stats().Spilled != 1 || r.x.Stats().Fragments != 11) {
				t.Errorf("sent %d fragments, stats %+v", len(sent.all()), r.x.Stats())
			}
		})
	}
}

// TestSpillFailure: a spill file that cannot be created fails the
// transaction at its commit, with ErrSpill, holding nothing more in
// memory meanwhile; loop prevention still drops it without an error.
func TestSpillFailure(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "gone")
	for _, drop := range []bool{false, true} {
		var sent sendCalls
		r := testRun(t, missing, sent.send)
		r.tx.open = true
		fill(&r.tx, 100, func() {
			if len(r.tx.frags) > 3 {
				t.Fatalf("%d fragments held in memory after the spill failed", len(r.tx.frags))
			}
		})
		if drop {
			r.tx.drop = "origin=west"
		}
		err := r.commit(&replication.EventHeader{}, 100)
		switch {
		case drop && err != nil:
			t.Errorf("dropped: %v, want nil", err)
		case !drop && !errors.Is(err, ErrSpill):
			t.Errorf("commit: %v, want ErrSpill", err)
		case len(sent) != 0:
			t.Errorf("sent %d calls of a transaction that failed to spill", len(sent))
		}
	}
	if _, err := os.Stat(missing); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the spill directory was created: %v", err)
	}
}

// TestSpillLargeTransaction: a 100,000-row INSERT ... SELECT read with a
// 1 MiB bound goes through a spill file and arrives whole, in order, in
// several calls to send; the transaction after it in one; no spill file
// is left.
func TestSpillLargeTransaction(t *testing.T) {
	t.Parallel()
	srv, db := startDB(t)
	testutil.Exec(t, db, "CREATE DATABASE app")
	testutil.Exec(t, db, "CREATE TABLE app.big (id INT PRIMARY KEY, v VARCHAR(100))")
	dir := t.TempDir()
	x := newExtractor(t, srv, func(c *Config) { c.SpillBytes, c.SpillDir = 1<<20, dir })
	from := currentPosition(t, x)
	cn := conn(t, db, "USE app")
	execConn(t, cn, "INSERT INTO app.big SELECT seq, CONCAT('row ', seq) FROM seq_1_to_100000")
	execConn(t, cn, "INSERT INTO app.big VALUES (0, 'small')")

	c := start(t, x, from)
	txs := c.wait(t, 2)
	c.stop(t)
	next := int64(1)
	for i, f := range txs[0] {
		if f.Fragno != uint32(i) || f.LastFrag != (i == len(txs[0])-1) || f.EventId != txs[0][0].EventId {
			t.Fatalf("fragment %d: fragno %d, last %v, event_id %s", i, f.Fragno, f.LastFrag, f.EventId)
		}
		for _, rc := range rowChanges(t, []*thlpb.Event{f}) {
			for _, row := range rc.Rows {
				if id := row.After[0].GetInt(); id != next || string(row.After[1].GetBytes()) != fmt.Sprintf("row %d", next) {
					t.Fatalf("fragment %d: row %d, want %d", i, id, next)
				}
				next++
			}
		}
	}
	if next != 100001 {
		t.Errorf("rows 1 to %d arrived, want 1 to 100,000", next-1)
	}
	c.mu.Lock()
	calls := c.calls
	c.mu.Unlock()
	if calls[0] < 10 || calls[1] != 1 {
		t.Errorf("the 100,000 rows came in %d calls to send, the next transaction in %d; want 10 or more (about 1 MiB each), then 1", calls[0], calls[1])
	}
	if st := x.Stats(); st.Spilled != 1 || st.Transactions != 2 {
		t.Errorf("stats: %d spilled of %d transactions, want 1 of 2", st.Spilled, st.Transactions)
	}
	if m := spillFiles(t, dir); len(m) != 0 {
		t.Errorf("spill files left: %v", m)
	}
}
