package thl

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/carbidedb/carbide/internal/testutil"
	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

// t0 is the commit time of seqno 0 in tests; seqno n commits n seconds later.
var t0 = time.Date(2025, 1, 2, 15, 31, 31, 0, time.UTC)

// event returns fragment fragno of seqno with about size bytes of row data.
func event(seqno uint64, fragno uint32, last bool, size int) *thlpb.Event {
	return &thlpb.Event{
		Seqno:              seqno,
		Fragno:             fragno,
		LastFrag:           last,
		Epoch:              7,
		EventId:            fmt.Sprintf("mysql-bin.000003:%016d;0-101-%d", 1000+seqno, seqno),
		SourceId:           "east1",
		OriginService:      "east",
		Shard:              "app",
		SourceCommitTimeUs: t0.Add(time.Duration(seqno) * time.Second).UnixMicro(),
		Changes: []*thlpb.Change{{Change: &thlpb.Change_Rows{Rows: &thlpb.RowChange{
			Schema: "app", Table: "t", Action: thlpb.RowChange_INSERT,
			Columns: []*thlpb.Column{{Name: "id", Type: 3, Key: true}, {Name: "v", Type: 15}},
			Rows: []*thlpb.Row{{After: []*thlpb.Value{
				{Value: &thlpb.Value_Int{Int: int64(seqno)}},
				{Value: &thlpb.Value_Bytes{Bytes: []byte(strings.Repeat("x", size))}},
			}}},
		}}}},
	}
}

// txn returns the fragments of transaction seqno: frags of them.
func txn(seqno uint64, frags int, size int) []*thlpb.Event {
	out := make([]*thlpb.Event, frags)
	for i := range out {
		out[i] = event(seqno, uint32(i), i == frags-1, size)
	}
	return out
}

// workload returns transactions from..from+n-1; every 7th has 3 fragments.
func workload(from uint64, n int, size int) []*thlpb.Event {
	var out []*thlpb.Event
	for q := from; q < from+uint64(n); q++ {
		frags := 1
		if q%7 == 3 {
			frags = 3
		}
		out = append(out, txn(q, frags, size+int(q%13)*10)...)
	}
	return out
}

func testConfig(t testing.TB, dir string) Config {
	cfg := DefaultConfig(dir)
	cfg.SegmentSize = 8 << 10
	cfg.IndexInterval = 1 << 10
	cfg.Logger = testutil.Logger(t)
	return cfg
}

func mustOpen(t testing.TB, cfg Config) *Store {
	t.Helper()
	s, err := Open(cfg)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// appendAll appends evs in batches of up to batch events.
func appendAll(t testing.TB, s *Store, evs []*thlpb.Event, batch int) {
	t.Helper()
	for len(evs) > 0 {
		n := min(batch, len(evs))
		if err := s.Append(evs[:n]...); err != nil {
			t.Fatalf("append: %v", err)
		}
		evs = evs[n:]
	}
}

// readN reads n events from seqno from.
func readN(t testing.TB, s *Store, from uint64, n int) []*thlpb.Event {
	t.Helper()
	r, err := s.NewReader(from)
	if err != nil {
		t.Fatalf("new reader: %v", err)
	}
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out := make([]*thlpb.Event, 0, n)
	for len(out) < n {
		ev, err := r.Next(ctx)
		if err != nil {
			t.Fatalf("read event %d of %d from %d: %v", len(out), n, from, err)
		}
		out = append(out, ev)
	}
	return out
}

// readToEnd reads a read-only store from seqno from to its end.
func readToEnd(s *Store, from uint64) ([]*thlpb.Event, error) {
	r, err := s.NewReader(from)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var out []*thlpb.Event
	for {
		ev, err := r.Next(context.Background())
		if err != nil {
			if err.Error() == "EOF" {
				return out, nil
			}
			return out, err
		}
		out = append(out, ev)
	}
}

func sameEvents(t testing.TB, got, want []*thlpb.Event) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d events, want %d", len(got), len(want))
	}
	for i := range got {
		if !proto.Equal(got[i], want[i]) {
			t.Fatalf("event %d: got seqno %d fragno %d, want seqno %d fragno %d (or contents differ)",
				i, got[i].GetSeqno(), got[i].GetFragno(), want[i].GetSeqno(), want[i].GetFragno())
		}
	}
}
