package extract

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/carbidedb/carbide/internal/mysqld"
	"github.com/carbidedb/carbide/internal/testutil"
	"github.com/carbidedb/carbide/replicator/apply"
	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

// TestAppliedCreateTableSelect: CREATE TABLE … SELECT is logged as one
// group, the CREATE TABLE statement and then its rows, however many
// fragments they take. Extracted on west and applied on east (as west's
// service, on four channels), every table ends equal, and east's
// extractor takes none of what the applier wrote: not the statement, not
// the rows after it, not the rows of a non-transactional table, not a
// table created, filled and dropped at once, not the rows of a DML
// statement, alone or after rows.
func TestAppliedCreateTableSelect(t *testing.T) {
	t.Parallel()
	west, wdb := startDB(t)
	east, edb := startDB(t)
	wx := newExtractor(t, west, func(c *Config) { c.Service, c.SourceID, c.FragmentRows = "west", "west1", 500 })
	from := currentPosition(t, wx)

	workload := []string{
		"CREATE DATABASE app",
		"CREATE TABLE app.s (id INT PRIMARY KEY, v VARCHAR(20))",
		"INSERT INTO app.s SELECT seq, CONCAT('row ', seq) FROM app.seq_1_to_2000",
		"CREATE VIEW app.vw AS SELECT * FROM app.s WHERE id <= 100",
		"CREATE TABLE app.nokey SELECT * FROM app.s", // 2,000 rows: 5 fragments
		"CREATE TABLE app.keyed (id INT PRIMARY KEY) SELECT * FROM app.s WHERE id <= 10",
		"CREATE TABLE app.fromview (id INT PRIMARY KEY) SELECT * FROM app.vw",
		"CREATE TABLE app.big (id INT PRIMARY KEY) SELECT * FROM app.s", // keyed, 5 fragments
		"CREATE TABLE app.m ENGINE=MyISAM SELECT * FROM app.s WHERE id <= 10",
		// 6 MB: the applier sends it in parts before the commit.
		"CREATE TABLE app.wide (id INT PRIMARY KEY) SELECT id, REPEAT('x', 3000) AS pad FROM app.s",
		"CREATE TABLE app.t1 (a VARCHAR(10))",
		"INSERT INTO app.t1 VALUES ('x')",
		"DROP TABLE app.t1",
		// DML the source logs as a statement, which the applier runs as one.
		"SET SESSION binlog_format = STATEMENT",
		"INSERT INTO app.keyed VALUES (1000, 'statement')",
		// Rows, then a statement, in one transaction (MIXED logs the
		// unsafe insert as rows, the safe one as a statement).
		"SET SESSION binlog_format = MIXED",
		"BEGIN",
		"INSERT INTO app.keyed VALUES (1001, LEFT(UUID(), 8))",
		"INSERT INTO app.keyed VALUES (1002, 'statement')",
		"COMMIT",
		"SET SESSION binlog_format = ROW",
		"INSERT INTO app.s VALUES (100000, 'end')",
	}
	c := conn(t, wdb)
	for _, q := range workload {
		execConn(t, c, q)
	}
	txs := start(t, wx, from).wait(t, len(workload)-6) // less the SETs, BEGIN and COMMIT
	if mixed := txs[len(txs)-2][0].Changes; len(mixed) != 2 || mixed[0].GetRows() == nil || mixed[1].GetStatement() == nil {
		t.Fatalf("the MIXED transaction was extracted as %v, want rows then a statement", mixed)
	}
	if n := len(txs[4]); n < 4 {
		t.Fatalf("CREATE TABLE nokey SELECT extracted as %d fragments, want 4 or more", n)
	}
	first := txs[4][0]
	// Fragments end between Rows events: the statement, then as many whole
	// events' rows as fit in 500 (none when the first event holds more).
	if rcs := rowChanges(t, txs[4][:1]); first.Changes[0].GetStatement() == nil || len(rcs) > 1 || len(rcs) == 1 && len(rcs[0].Rows) > 499 {
		t.Fatalf("CREATE TABLE nokey SELECT: first fragment %v, want the statement then up to 499 rows", first.Changes[0])
	}
	ex := newExtractor(t, east, nil)
	efrom := currentPosition(t, ex)
	applyOn(t, east, 4, txs)

	sameChecksums(t, wdb, edb, "app.s", "app.nokey", "app.keyed", "app.fromview", "app.big", "app.m", "app.wide")

	testutil.Exec(t, edb, "INSERT INTO app.s VALUES (200000, 'east')")
	col := start(t, ex, efrom)
	got := col.wait(t, 1)
	if firstID(got[0]) != 200000 {
		t.Errorf("east extracted %v first, want only its own insert of id 200000", got[0])
	}
	col.stop(t)
	if n := col.count(); n != 1 {
		t.Errorf("east extracted %d transactions, want 1 (its own)", n)
	}
}

// applyOn applies txs (each a transaction's fragments) to srv as west's
// service on channels connections, numbered from seqno 0, and waits until
// the last is applied.
func applyOn(t *testing.T, srv *mysqld.Server, channels int, txs [][]*thlpb.Event) {
	t.Helper()
	var events []*thlpb.Event
	for i, tx := range txs {
		for _, ev := range tx {
			ev.Seqno = uint64(i)
			events = append(events, ev)
		}
	}
	a, err := apply.New(apply.Config{Addr: srv.Addr(), User: "tungsten", Password: "secret", Service: "west", Channels: channels, Logger: testutil.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	if err := a.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	applyAll(t, a, events)
}

// sameChecksums fails t for each of the tables whose CHECKSUM TABLE
// differs between west and east.
func sameChecksums(t *testing.T, west, east *sql.DB, tables ...string) {
	t.Helper()
	for _, table := range tables {
		var name, wsum, esum string
		testutil.QueryRow(t, west, "CHECKSUM TABLE "+table, nil, &name, &wsum)
		testutil.QueryRow(t, east, "CHECKSUM TABLE "+table, nil, &name, &esum)
		if wsum != esum {
			t.Errorf("%s: checksum %s on east, %s on west", table, esum, wsum)
		}
	}
}

// applyAll applies events with a and waits until the last is applied.
func applyAll(t *testing.T, a *apply.Applier, events []*thlpb.Event) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	i := 0
	done := make(chan error, 1)
	go func() {
		done <- a.Run(ctx, func(ctx context.Context) (*thlpb.Event, int, error) {
			if i < len(events) {
				i++
				return events[i-1], 1, nil
			}
			<-ctx.Done()
			return nil, 0, ctx.Err()
		})
	}()
	last := events[len(events)-1].Seqno
	deadline := time.Now().Add(waitFor)
	for {
		if p, ok := a.Position(); ok && p.Seqno == last {
			cancel()
			<-done
			return
		}
		select {
		case err := <-done:
			t.Fatalf("apply stopped before seqno %d: %v", last, err)
		case <-time.After(testutil.PollInterval):
		}
		if time.Now().After(deadline) {
			t.Fatalf("seqno %d not applied after %s", last, waitFor)
		}
	}
}
