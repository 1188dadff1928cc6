package thl

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

// benchEvent returns an event of about 2 KB: a 20-row insert.
func benchEvent(seqno uint64) *thlpb.Event {
	ev := &thlpb.Event{
		Seqno: seqno, LastFrag: true, Epoch: 1, SourceId: "east1", OriginService: "east", Shard: "app",
		EventId:            "mysql-bin.000003:0000000000001234;0-101-5",
		SourceCommitTimeUs: time.Now().UnixMicro(),
	}
	rc := &thlpb.RowChange{Schema: "app", Table: "orders", Action: thlpb.RowChange_INSERT,
		Columns: []*thlpb.Column{{Name: "id", Type: 8, Key: true}, {Name: "customer", Type: 15}, {Name: "note", Type: 15}, {Name: "amount", Type: 246}}}
	for i := range 20 {
		rc.Rows = append(rc.Rows, &thlpb.Row{After: []*thlpb.Value{
			{Value: &thlpb.Value_Int{Int: int64(seqno)*20 + int64(i)}},
			{Value: &thlpb.Value_Bytes{Bytes: []byte("customer-000123")}},
			{Value: &thlpb.Value_Bytes{Bytes: []byte(strings.Repeat("n", 50))}},
			{Value: &thlpb.Value_Decimal{Decimal: "1234.56"}},
		}})
	}
	ev.Changes = []*thlpb.Change{{Change: &thlpb.Change_Rows{Rows: rc}}}
	return ev
}

// BenchmarkAppend appends ~2 KB events one per call and syncs every 100,
// with the default segment size: the extractor's pattern.
func BenchmarkAppend(b *testing.B) {
	for _, batch := range []int{1, 100} {
		name := "one-per-append"
		if batch > 1 {
			name = "100-per-append"
		}
		b.Run(name, func(b *testing.B) {
			cfg := DefaultConfig(b.TempDir())
			cfg.Logger = slog.New(slog.DiscardHandler)
			s, err := Open(cfg)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			evs := make([]*thlpb.Event, 100)
			for i := range evs {
				evs[i] = benchEvent(uint64(i))
			}
			b.SetBytes(int64(proto.Size(evs[0]) + recordHeaderSize))
			b.ResetTimer()
			seqno := uint64(0)
			for seqno < uint64(b.N) {
				n := min(uint64(len(evs)), uint64(b.N)-seqno)
				for i := range n {
					evs[i].Seqno = seqno + i
				}
				if batch == 1 {
					for i := range n {
						if err := s.Append(evs[i]); err != nil {
							b.Fatal(err)
						}
					}
				} else if err := s.Append(evs[:n]...); err != nil {
					b.Fatal(err)
				}
				if err := s.Sync(); err != nil {
					b.Fatal(err)
				}
				seqno += n
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
