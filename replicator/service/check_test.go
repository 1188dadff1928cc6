package service

import (
	"context"
	"errors"
	"slices"
	"syscall"
	"testing"

	"github.com/carbidedb/carbide/internal/consistency"
	"github.com/carbidedb/carbide/replicator/apply"
	"github.com/carbidedb/carbide/replicator/extract"
	"github.com/carbidedb/carbide/replicator/stream"
	"github.com/carbidedb/carbide/rpc/gen/replicatorpb"
	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

// TestCheckRefusals: a consistency check runs on an ONLINE master only
// (ErrRole on a slave, ErrState on an offline master), with a chunk time
// from 0 to 60 s (ErrInput); an ONLINE master whose database does not
// answer returns the database's error. Nothing is sent when refused.
func TestCheckRefusals(t *testing.T) {
	for _, c := range []struct {
		name    string
		role    string
		online  bool
		seconds float64
		want    error
	}{
		{"slave", RoleSlave, true, 0, ErrRole},
		{"offline master", RoleMaster, false, 0, ErrState},
		{"negative chunk time", RoleMaster, true, -1, ErrInput},
		{"chunk time over a minute", RoleMaster, true, 61, ErrInput},
		{"database down", RoleMaster, true, 0.5, syscall.ECONNREFUSED},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			s := h.start(c.role)
			if c.online {
				if err := s.Online(OnlineOptions{}); err != nil {
					t.Fatal(err)
				}
				waitState(t, s, StateOnline)
			}
			sent := 0
			err := s.Check(context.Background(), &replicatorpb.CheckRequest{Service: "east", ChunkSeconds: c.seconds},
				func(*replicatorpb.CheckProgress) error { sent++; return nil })
			if !errors.Is(err, c.want) {
				t.Fatalf("check: %v, want %v", err, c.want)
			}
			if sent != 0 {
				t.Fatalf("%d progress messages sent by a check that did not start", sent)
			}
		})
	}
}

// TestCheckResultsNameThisHost: the results of a check are this host's,
// whatever host the registry recorded; another check's are not among them.
func TestCheckResultsNameThisHost(t *testing.T) {
	s := newHarness(t).start(RoleSlave)
	s.checks.Add(consistency.Result{CheckID: 7, Chunk: 0, Seqno: 12})
	s.checks.Add(consistency.Result{CheckID: 7, Chunk: 1, Host: "east1", Seqno: 13})
	s.checks.Add(consistency.Result{CheckID: 8, Chunk: 0})
	rs := s.CheckResults(7)
	if len(rs) != 2 {
		t.Fatalf("%d results of check 7, want 2", len(rs))
	}
	for i, r := range rs {
		if r.Host != "east2" || r.CheckID != 7 || r.Chunk != uint32(i) || r.Seqno != uint64(12+i) {
			t.Errorf("result %d: %+v, want check 7 chunk %d of east2", i, r, i)
		}
	}
	if rs := s.CheckResults(9); len(rs) != 0 {
		t.Errorf("results of a check never run: %v", rs)
	}
}

// rowsOf is a transaction changing rows of schema.table keyed by id.
func rowsOf(seqno uint64, table string, ids ...int64) *thlpb.Event {
	rc := &thlpb.RowChange{Schema: "app", Table: table, Action: thlpb.RowChange_UPDATE,
		Columns: []*thlpb.Column{{Name: "id", Key: true}, {Name: "v"}}}
	for _, id := range ids {
		img := []*thlpb.Value{{Value: &thlpb.Value_Int{Int: id}}, {Value: &thlpb.Value_Text{Text: "x"}}}
		rc.Rows = append(rc.Rows, &thlpb.Row{Before: img, After: img})
	}
	return &thlpb.Event{Seqno: seqno, LastFrag: true, EventId: eventID(seqno), SourceId: "east1",
		Changes: []*thlpb.Change{{Change: &thlpb.Change_Rows{Rows: rc}}}}
}

// TestTouched: Touched reads the THL's transactions after from up to to
// and says which of the chunk's rows they changed, or all of them (a
// statement naming its table); a range it cannot read whole (a seqno not
// in this THL, more transactions than it reads, a context ended) is
// "all" with an error.
func TestTouched(t *testing.T) {
	s := newHarness(t).start(RoleSlave)
	for _, ev := range []*thlpb.Event{
		rowsOf(0, "t", 5, 50), // 50 is past the chunk
		rowsOf(1, "other", 6), // another table
		rowsOf(2, "t", 7),     //
		{Seqno: 3, LastFrag: true, EventId: eventID(3), SourceId: "east1", // DDL on the table
			Changes: []*thlpb.Change{{Change: &thlpb.Change_Statement{Statement: &thlpb.Statement{Sql: "ALTER TABLE app.t ADD COLUMN w INT"}}}}},
	} {
		if err := s.Store().Append(ev); err != nil {
			t.Fatal(err)
		}
	}
	ch := &consistency.Chunk{Schema: "app", Table: "t", Key: []string{"id"}, IntKey: true, TextKey: true, HasLo: true, LoInt: 0, HasHi: true, HiInt: 10}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, c := range []struct {
		name     string
		ctx      context.Context
		from, to int64
		all      bool
		keys     []string
		err      error // nil: no error; errAny: any
	}{
		{"rows in the chunk", context.Background(), -1, 2, false, []string{"5", "5", "7", "7"}, nil},
		{"another table only", context.Background(), 0, 1, false, nil, nil},
		{"nothing after from", context.Background(), 2, 2, false, nil, nil},
		{"a statement naming the table", context.Background(), 1, 3, true, nil, nil},
		{"a seqno not stored", context.Background(), 3, 5, true, nil, errAny},
		{"too many transactions", context.Background(), -1, maxTouchedSeqnos + 1, true, nil, errAny},
		{"context ended", cancelled, -1, 2, true, nil, context.Canceled},
	} {
		t.Run(c.name, func(t *testing.T) {
			all, keys, err := s.Touched(c.ctx, c.from, c.to, ch)
			switch {
			case c.err == nil && err != nil, c.err != nil && err == nil, c.err != nil && c.err != errAny && !errors.Is(err, c.err):
				t.Fatalf("touched: %v, want %v", err, c.err)
			}
			if all != c.all || !slices.Equal(keys, c.keys) {
				t.Fatalf("touched = all %v, keys %q; want %v, %q", all, keys, c.all, c.keys)
			}
		})
	}
}

// errAny stands for any error in a table of cases.
var errAny = errors.New("any error")

// TestFetchStore: the store a slave's THL client writes to starts, when
// empty, after the applied position (none without one), and hands the
// client an unfinished transaction at its end, which it can drop.
func TestFetchStore(t *testing.T) {
	s := newHarness(t).start(RoleSlave)
	applied := apply.Position{Seqno: 9, Epoch: 4, EventID: eventID(9)}
	if _, ok := (&fetchStore{store: s.Store()}).Last(); ok {
		t.Fatal("an empty store without an applied position has a last event")
	}
	fs := &fetchStore{store: s.Store(), applied: applied, hasApplied: true}
	if ev, ok := fs.Last(); !ok || ev.GetSeqno() != 9 || ev.GetEpoch() != 4 || ev.GetEventId() != eventID(9) || !ev.GetLastFrag() {
		t.Fatalf("last of an empty store = %v (%v), want the applied position", ev, ok)
	}
	if err := fs.Append(&thlpb.Event{Seqno: 10, LastFrag: true, EventId: eventID(10), SourceId: "east1"},
		&thlpb.Event{Seqno: 11, EventId: eventID(11), SourceId: "east1"}); err != nil {
		t.Fatal(err)
	}
	if err := fs.Sync(); err != nil {
		t.Fatal(err)
	}
	if ev, ok := fs.Last(); !ok || ev.GetSeqno() != 10 {
		t.Fatalf("last = %v (%v), want the stored seqno 10", ev, ok)
	}
	if p, ok := fs.Partial(); !ok || p.GetSeqno() != 11 || p.GetFragno() != 0 {
		t.Fatalf("partial = %v (%v), want seqno 11 fragno 0", p, ok)
	}
	if err := fs.DropIncomplete(); err != nil {
		t.Fatal(err)
	}
	if p, ok := fs.Partial(); ok {
		t.Fatalf("partial after the drop: %v", p)
	}
	if max, _ := s.Store().MaxSeqno(); max != 10 {
		t.Fatalf("THL ends at %d, want 10", max)
	}
}

// TestStagesDefaults: a configuration without stages makes the real ones
// (extract, stream, apply), each returning a nil stage, not a typed nil,
// with its package's error when its configuration is bad; stages given
// are kept.
func TestStagesDefaults(t *testing.T) {
	st := Stages{}.withDefaults()
	x, err := st.NewExtractor(extract.Config{Addr: "127.0.0.1:3306", User: "tungsten", Service: "east", SourceID: "east2"})
	if _, real := x.(*extract.Extractor); err != nil || !real {
		t.Errorf("extractor: %T, %v; want an *extract.Extractor", x, err)
	}
	if x != nil {
		x.Close()
	}
	if x, err := st.NewExtractor(extract.Config{Addr: "no port"}); !errors.Is(err, extract.ErrConfig) || x != nil {
		t.Errorf("extractor of a bad config: %v, %v; want nil, extract.ErrConfig", x, err)
	}
	c, err := st.NewTHLClient(stream.ClientConfig{Service: "east", Sources: []string{"east1:2112"}})
	if _, real := c.(*stream.Client); err != nil || !real {
		t.Errorf("THL client: %T, %v; want a *stream.Client", c, err)
	}
	if c, err := st.NewTHLClient(stream.ClientConfig{Service: "east"}); err == nil || c != nil {
		t.Errorf("THL client without a source: %v, %v; want nil and an error", c, err)
	}
	a, err := st.NewApplier(apply.Config{Addr: "127.0.0.1:3306", Service: "east"})
	if _, real := a.(*apply.Applier); err != nil || !real {
		t.Errorf("applier: %T, %v; want an *apply.Applier", a, err)
	}
	if a != nil {
		a.Close()
	}
	if a, err := st.NewApplier(apply.Config{Service: "east"}); !errors.Is(err, apply.ErrConfig) || a != nil {
		t.Errorf("applier without an address: %v, %v; want nil, apply.ErrConfig", a, err)
	}

	mine := func(apply.Config) (Applier, error) { return nil, errAny }
	kept := Stages{NewApplier: mine}.withDefaults()
	if _, err := kept.NewApplier(apply.Config{}); err != errAny || kept.NewExtractor == nil || kept.NewTHLClient == nil {
		t.Errorf("given applier not kept (%v), or the others not filled", err)
	}
}

// TestConfigValidate: a configuration needs a name, a role, a THL
// directory and a database address (ErrInput); defaults fill the rest.
func TestConfigValidate(t *testing.T) {
	good := Config{Name: "east", Role: RoleSlave, THLDir: "/tmp/thl", DBAddr: "127.0.0.1:3306"}
	for _, c := range []struct {
		name   string
		change func(*Config)
	}{
		{"no name", func(c *Config) { c.Name = "" }},
		{"bad role", func(c *Config) { c.Role = "primary" }},
		{"no THL directory", func(c *Config) { c.THLDir = "" }},
		{"no database", func(c *Config) { c.DBAddr = "" }},
	} {
		cfg := good
		c.change(&cfg)
		if err := cfg.Validate(); !errors.Is(err, ErrInput) {
			t.Errorf("%s: %v, want ErrInput", c.name, err)
		}
	}
	cfg := good
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if cfg.Logger == nil || cfg.Retention <= 0 || cfg.Stages.NewApplier == nil || cfg.Stages.NewExtractor == nil || cfg.Stages.NewTHLClient == nil {
		t.Errorf("defaults not filled: %+v", cfg)
	}
}
