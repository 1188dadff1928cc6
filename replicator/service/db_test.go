package service

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/carbidedb/carbide/internal/consistency"
	"github.com/carbidedb/carbide/internal/testutil"
	"github.com/carbidedb/carbide/replicator/apply"
	"github.com/carbidedb/carbide/rpc/gen/replicatorpb"
)

// The operations that only a real database can answer: heartbeat,
// datadir, the conflict log and a consistency check's master side. Their
// service is a master on a real MariaDB (its applier, the tracker, real;
// its extractor the fake binlog).

// TestOperationsOnTheDatabase: on an ONLINE master of a real database
// (one server for all: its subtests run in order, each on what the one
// before left).
func TestOperationsOnTheDatabase(t *testing.T) {
	testutil.RequireDB(t)
	srv := testutil.StartMariaDB(t)
	db := testutil.DB(t, srv)
	h := newHarness(t)
	cfg := h.config(RoleMaster)
	cfg.DBAddr, cfg.DBUser, cfg.DBPassword = srv.Addr(), "tungsten", "secret"
	cfg.Stages.NewApplier = nil // the real one
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// Conflicts before any applier made the tracking schema: none.
	if cs, err := s.Conflicts(ctx, 10); err != nil || len(cs) != 0 {
		t.Fatalf("conflicts before the tracking schema exists: %v, %v; want none", cs, err)
	}
	if err := s.Online(OnlineOptions{}); err != nil {
		t.Fatal(err)
	}
	waitState(t, s, StateOnline)
	t.Run("heartbeat", func(t *testing.T) { testHeartbeatRow(t, ctx, s, db) })
	t.Run("datadir", func(t *testing.T) { testDatadir(t, ctx, s, srv.Config().DataDir()) })
	t.Run("conflicts", func(t *testing.T) { testConflicts(t, ctx, s, db) })
	t.Run("check", func(t *testing.T) { testCheck(t, ctx, s, db) })
}

// testHeartbeatRow: heartbeats write the heartbeat row: one row, named by
// the last heartbeat, stamped.
func testHeartbeatRow(t *testing.T, ctx context.Context, s *Service, db *sql.DB) {
	for _, name := range []string{"first", "second"} {
		if err := s.Heartbeat(ctx, name); err != nil {
			t.Fatalf("heartbeat %s: %v", name, err)
		}
	}
	if got := testutil.QueryString(t, db, "SELECT CONCAT(COUNT(*), ' ', MAX(name), ' ', MAX(source_tstamp IS NOT NULL)) FROM tungsten_east.heartbeat"); got != "1 second 1" {
		t.Fatalf("heartbeat rows (count, name, stamped): %q, want \"1 second 1\"", got)
	}
}

// testDatadir: Datadir is the database's datadir.
func testDatadir(t *testing.T, ctx context.Context, s *Service, datadir string) {
	dir, err := s.Datadir(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Clean(dir) != filepath.Clean(datadir) {
		t.Fatalf("datadir %q, want %q", dir, datadir)
	}
}

// testConflicts: Conflicts lists the newest conflict records first, up to
// the limit.
func testConflicts(t *testing.T, ctx context.Context, s *Service, db *sql.DB) {
	for seqno := 1; seqno <= 3; seqno++ {
		testutil.Exec(t, db, `INSERT INTO tungsten_east.conflicts (seqno, fragno, change_no, row_no, origin, schema_name, table_name, row_key,
			action, kind, policy, decision, detected_at) VALUES (?, 0, 0, 0, 'west', 'app', 't', 'id=1', 'UPDATE', 'changed', 'log', 'applied', NOW(6))`, seqno)
	}
	cs, err := s.Conflicts(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 2 || cs[0].Seqno != 3 || cs[1].Seqno != 2 || cs[0].Origin != "west" || cs[0].Decision != apply.DecisionApplied {
		t.Fatalf("conflicts (limit 2): %+v; want seqnos 3 then 2 from west, applied", cs)
	}
}

// testCheck: a check of a schema cuts its table into chunks that count
// every row once, writes one marker per chunk (they travel through the
// THL) and records the master's result for each; checking given chunks
// again marks just those, row by row where asked, a failing checksum
// reported in its result; a schema without tables is a bad request
// (ErrInput); a failing send or a missing marker table stops the check.
func testCheck(t *testing.T, ctx context.Context, s *Service, db *sql.DB) {
	const rows = 2500
	testutil.Exec(t, db, "CREATE DATABASE app")
	testutil.Exec(t, db, "CREATE TABLE app.t (id INT PRIMARY KEY, v VARCHAR(20))")
	testutil.Exec(t, db, fmt.Sprintf("INSERT INTO app.t SELECT seq, CONCAT('v', seq) FROM app.seq_1_to_%d", rows))

	var progress []*replicatorpb.CheckProgress
	collect := func(p *replicatorpb.CheckProgress) error { progress = append(progress, p); return nil }
	if err := s.Check(ctx, &replicatorpb.CheckRequest{Service: "east", Schema: "app"}, collect); err != nil {
		t.Fatal(err)
	}
	if len(progress) < 4 {
		t.Fatalf("%d progress messages, want the tables, at least two chunks and the end", len(progress))
	}
	id := progress[0].GetCheckId()
	first, last := progress[0], progress[len(progress)-1]
	if first.GetTables() != 1 || first.GetChunk() != nil || last.GetTablesDone() != 1 || last.GetChunk() != nil {
		t.Fatalf("first %v, last %v; want 1 table announced, then done", first, last)
	}
	var chunks []*replicatorpb.CheckChunk
	counted := int64(0)
	for _, p := range progress[1 : len(progress)-1] {
		r := p.GetResult()
		if p.GetCheckId() != id || p.GetChunk().GetTable() != "t" || r.GetError() != "" || r.GetHost() != "east2" {
			t.Fatalf("chunk progress %v", p)
		}
		chunks = append(chunks, p.GetChunk())
		counted += r.GetCount()
	}
	if counted != rows {
		t.Fatalf("the chunks count %d rows, want %d", counted, rows)
	}
	marks := func() string {
		return testutil.QueryString(t, db, fmt.Sprintf("SELECT CONCAT(COUNT(*), ' ', MIN(master)) FROM tungsten_east.%s WHERE check_id = ?", consistency.MarkerTable), id)
	}
	if got, want := marks(), fmt.Sprintf("%d east2", len(chunks)); got != want {
		t.Fatalf("markers (count, master): %q, want %q", got, want)
	}
	if rs := s.CheckResults(id); len(rs) != len(chunks) {
		t.Fatalf("%d results recorded for check %d, want %d", len(rs), id, len(chunks))
	}

	// Given chunks are checked again: one as it was, one row by row, one
	// whose checksum fails (its result says so; the check goes on).
	byRow := proto.Clone(chunks[0]).(*replicatorpb.CheckChunk)
	byRow.Rows = true
	broken := &replicatorpb.CheckChunk{Chunk: 99, Schema: "app", Table: "gone", Query: "SELECT COUNT(*), 0 FROM app.gone"}
	progress = nil
	if err := s.Check(ctx, &replicatorpb.CheckRequest{Service: "east", Chunks: []*replicatorpb.CheckChunk{chunks[1], byRow, broken}}, collect); err != nil {
		t.Fatal(err)
	}
	if len(progress) != 4 || progress[0].GetChunk() != nil {
		t.Fatalf("checking 3 chunks again: %d progress messages, want 4 (the check, then each chunk)", len(progress))
	}
	if r := progress[1].GetResult(); progress[1].GetChunk().GetChunk() != chunks[1].GetChunk() || r.GetCount() <= 0 || r.GetError() != "" || len(r.GetRows()) != 0 {
		t.Errorf("chunk %d again: %v", chunks[1].GetChunk(), progress[1])
	}
	if r := progress[2].GetResult(); r.GetError() != "" || r.GetCount() <= 0 || int64(len(r.GetRows())) != r.GetCount() {
		t.Errorf("chunk %d row by row: count %d, %d rows listed, error %q; want every row listed", byRow.GetChunk(), r.GetCount(), len(r.GetRows()), r.GetError())
	}
	if r := progress[3].GetResult(); r.GetError() == "" || progress[3].GetChunk().GetChunk() != 99 {
		t.Errorf("a chunk whose checksum fails: %v; want its error in its result", progress[3])
	}

	if err := s.Check(ctx, &replicatorpb.CheckRequest{Service: "east", Schema: "nothing"}, collect); !errors.Is(err, ErrInput) {
		t.Fatalf("check of a schema without tables: %v, want ErrInput", err)
	}

	// A send that fails stops the check there, whichever message it is.
	stop := errors.New("the client went away")
	byApp := &replicatorpb.CheckRequest{Service: "east", Schema: "app"}
	again := &replicatorpb.CheckRequest{Service: "east", Chunks: chunks[:1]}
	for _, c := range []struct {
		name string
		req  *replicatorpb.CheckRequest
		at   func(*replicatorpb.CheckProgress) bool // the message whose send fails
	}{
		{"the tables", byApp, func(p *replicatorpb.CheckProgress) bool {
			return p.GetTables() > 0 && p.GetTablesDone() == 0 && p.GetChunk() == nil
		}},
		{"a chunk", byApp, func(p *replicatorpb.CheckProgress) bool { return p.GetChunk() != nil }},
		{"the end of a table", byApp, func(p *replicatorpb.CheckProgress) bool { return p.GetTablesDone() > 0 }},
		{"the check of given chunks", again, func(p *replicatorpb.CheckProgress) bool { return p.GetChunk() == nil }},
		{"a given chunk", again, func(p *replicatorpb.CheckProgress) bool { return p.GetChunk() != nil }},
	} {
		failed, after := false, 0
		err := s.Check(ctx, c.req, func(p *replicatorpb.CheckProgress) error {
			if failed {
				after++
			}
			if !failed && c.at(p) {
				failed = true
				return stop
			}
			return nil
		})
		if !errors.Is(err, stop) || !failed || after != 0 {
			t.Errorf("send of %s fails: %v, failed %v, %d sends after; want %v at once", c.name, err, failed, after, stop)
		}
	}

	// Without its marker table a check fails before it sends anything.
	testutil.Exec(t, db, "DROP TABLE tungsten_east."+consistency.MarkerTable)
	sends := 0
	if err := s.Check(ctx, &replicatorpb.CheckRequest{Service: "east", Schema: "app"}, func(*replicatorpb.CheckProgress) error { sends++; return nil }); err == nil || sends != 0 {
		t.Fatalf("check without the marker table: %v after %d sends; want an error before any", err, sends)
	}
}

// TestDatabaseOperationsUnreachable: with the database down, Datadir and
// Conflicts say so rather than answer empty.
func TestDatabaseOperationsUnreachable(t *testing.T) {
	s := newHarness(t).start(RoleMaster) // its database: 127.0.0.1:1
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if dir, err := s.Datadir(ctx); err == nil || dir != "" || !dbUnreachable(err) {
		t.Errorf("datadir with the database down: %q, %v; want an unreachable error", dir, err)
	}
	if cs, err := s.Conflicts(ctx, 5); err == nil || cs != nil || !dbUnreachable(err) {
		t.Errorf("conflicts with the database down: %v, %v; want an unreachable error", cs, err)
	}
}
