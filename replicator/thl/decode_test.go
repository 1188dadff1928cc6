package thl

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"unsafe"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

// randomValue returns a value of every kind the schema has, edge values
// included.
func randomValue(r *rand.Rand) *thlpb.Value {
	switch r.IntN(11) {
	case 0:
		return &thlpb.Value{Value: &thlpb.Value_Null{Null: true}}
	case 1:
		return &thlpb.Value{Value: &thlpb.Value_Int{Int: []int64{0, -1, math.MinInt64, math.MaxInt64, r.Int64()}[r.IntN(5)]}}
	case 2:
		return &thlpb.Value{Value: &thlpb.Value_Uint{Uint: []uint64{0, math.MaxUint64, r.Uint64()}[r.IntN(3)]}}
	case 3:
		return &thlpb.Value{Value: &thlpb.Value_Double{Double: []float64{0, math.Inf(-1), -0.5, r.Float64()}[r.IntN(4)]}}
	case 4:
		return &thlpb.Value{Value: &thlpb.Value_Float{Float: []float32{0, 1.5, r.Float32()}[r.IntN(3)]}}
	case 5:
		return &thlpb.Value{Value: &thlpb.Value_Decimal{Decimal: "-1234.5678"}}
	case 6:
		b := make([]byte, r.IntN(40))
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return &thlpb.Value{Value: &thlpb.Value_Bytes{Bytes: b}}
	case 7:
		return &thlpb.Value{Value: &thlpb.Value_Bytes{Bytes: []byte{}}}
	case 8:
		return &thlpb.Value{Value: &thlpb.Value_Text{Text: []string{"", "2024-02-29 23:59:59.123456", "héllo 🎉"}[r.IntN(3)]}}
	case 9:
		return &thlpb.Value{}
	}
	return &thlpb.Value{Value: &thlpb.Value_Int{Int: int64(r.IntN(1000))}}
}

// randomEvent returns an event with every field the schema has.
func randomEvent(r *rand.Rand, big bool) *thlpb.Event {
	ev := &thlpb.Event{
		Seqno: r.Uint64(), Fragno: r.Uint32(), LastFrag: r.IntN(2) == 0, Epoch: uint64(r.IntN(100)),
		EventId: "mysql-bin.000003:0000000000001234;0-101-5", SourceId: []string{"east1", "west2", ""}[r.IntN(3)],
		OriginService: "east", Shard: []string{"app", "#multi", "ü"}[r.IntN(3)],
		SourceCommitTimeUs: r.Int64N(1 << 52), ExtractTimeUs: -r.Int64N(10),
	}
	if r.IntN(10) == 0 {
		ev.Heartbeat, ev.PreparedFrom = "hb", "mysql-bin.000001:4"
	}
	for range r.IntN(3) {
		ev.After = append(ev.After, &thlpb.After{Service: []string{"west", "north", ""}[r.IntN(3)], Seqno: r.Uint64N(1 << 40)})
	}
	for range r.IntN(5) {
		if r.IntN(4) == 0 {
			ev.Changes = append(ev.Changes, &thlpb.Change{Change: &thlpb.Change_Statement{Statement: &thlpb.Statement{
				Schema: "app", Sql: "CREATE TABLE t (id INT)", Timestamp: r.Int64N(1 << 40),
				Session: map[string]string{"sql_mode": "STRICT_TRANS_TABLES", "@x": "1", "time_zone": ""}}}})
			continue
		}
		if r.IntN(10) == 0 {
			ev.Changes = append(ev.Changes, &thlpb.Change{})
			continue
		}
		ncols := 1 + r.IntN(70)
		rc := &thlpb.RowChange{Schema: "app", Table: []string{"t", "orders", "ünï"}[r.IntN(3)],
			Action: thlpb.RowChange_Action(r.IntN(5) - 1), NoForeignKeyChecks: r.IntN(2) == 0}
		for i := range ncols {
			rc.Columns = append(rc.Columns, &thlpb.Column{Name: "c" + strings.Repeat("x", i%3), Type: uint32(r.IntN(256)), Unsigned: r.IntN(2) == 0, Key: i == 0, Meta: uint32(r.IntN(1 << 16))})
		}
		for range r.IntN(80) {
			row := &thlpb.Row{}
			for range ncols * r.IntN(2) {
				row.Before = append(row.Before, randomValue(r))
			}
			for range ncols * r.IntN(2) {
				row.After = append(row.After, randomValue(r))
			}
			rc.Rows = append(rc.Rows, row)
		}
		if r.IntN(2) == 0 {
			rc.Binlog = []byte("\x00\x01binlog events\xff")
		}
		if big {
			rc.Rows = append(rc.Rows, &thlpb.Row{After: []*thlpb.Value{{Value: &thlpb.Value_Bytes{Bytes: make([]byte, sharedCopies)}}}})
		}
		ev.Changes = append(ev.Changes, &thlpb.Change{Change: &thlpb.Change_Rows{Rows: rc}})
	}
	return ev
}

// sameDecoding fails t unless d decodes payload as proto.Unmarshal does.
func sameDecoding(t *testing.T, d *decoder, payload []byte) {
	t.Helper()
	want := new(thlpb.Event)
	werr := proto.Unmarshal(payload, want)
	got, err := d.decodeEvent(payload)
	if (err != nil) != (werr != nil) {
		t.Fatalf("decodeEvent error %v, proto.Unmarshal error %v", err, werr)
	}
	if err != nil {
		return
	}
	if !proto.Equal(got, want) {
		t.Fatalf("decodeEvent differs from proto.Unmarshal:\n got %v\nwant %v", got, want)
	}
}

// TestDecodeMatchesProto: random events, and the same payloads with an
// unknown field, a cut, invalid UTF-8 or a changed byte, decode as
// proto.Unmarshal decodes them; the events do not change when the payload
// buffer is reused.
func TestDecodeMatchesProto(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var d decoder
	for i := range 400 {
		ev := randomEvent(r, i%50 == 0)
		payload, err := proto.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		sameDecoding(t, &d, payload)
		buf := append([]byte(nil), payload...)
		got, err := d.decodeEvent(buf)
		if err != nil {
			t.Fatal(err)
		}
		for j := range buf {
			buf[j] = 0xee
		}
		if !proto.Equal(got, ev) {
			t.Fatalf("event changed with the payload buffer:\n got %v\nwant %v", got, ev)
		}
		sameDecoding(t, &d, protowire.AppendVarint(protowire.AppendTag(append([]byte(nil), payload...), 99, protowire.VarintType), 7))
		if len(payload) > 0 {
			sameDecoding(t, &d, payload[:r.IntN(len(payload))])
			mut := append([]byte(nil), payload...)
			mut[r.IntN(len(mut))] ^= byte(1 + r.IntN(255))
			sameDecoding(t, &d, mut)
		}
	}
	bad := protowire.AppendString(protowire.AppendTag(nil, 5, protowire.BytesType), "\xff\xfe")
	sameDecoding(t, &d, bad)
	sameDecoding(t, &d, nil)
}

// FuzzDecode: any bytes decode as proto.Unmarshal decodes them.
func FuzzDecode(f *testing.F) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 8 {
		payload, _ := proto.Marshal(randomEvent(r, false))
		f.Add(payload)
	}
	var d decoder
	f.Fuzz(func(t *testing.T, payload []byte) {
		sameDecoding(t, &d, payload)
	})
}

// BenchmarkDecode compares decodeEvent with proto.Unmarshal on the bench
// event (a 20-row insert).
func BenchmarkDecode(b *testing.B) {
	payload, _ := proto.Marshal(benchEvent(1))
	b.Run("decoder", func(b *testing.B) {
		var d decoder
		b.ReportAllocs()
		for b.Loop() {
			if _, err := d.decodeEvent(payload); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("proto-baseline", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := proto.Unmarshal(payload, new(thlpb.Event)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// A large event's messages come from chunks of their own: the events
// decoded after it never keep it alive through a shared chunk, and small
// events share chunks for at most sharedChunks bytes of payload.
func TestDecoderChunksDoNotHoldLargeEvents(t *testing.T) {
	const bound = 256 << 10 // sharedChunks
	big := &thlpb.Event{Seqno: 1, LastFrag: true}
	rc := &thlpb.RowChange{Schema: "app", Table: "t", Action: thlpb.RowChange_INSERT, Columns: []*thlpb.Column{{Name: "b"}}}
	rc.Rows = append(rc.Rows, &thlpb.Row{After: []*thlpb.Value{{Value: &thlpb.Value_Bytes{Bytes: make([]byte, 2*bound)}}}})
	big.Changes = []*thlpb.Change{{Change: &thlpb.Change_Rows{Rows: rc}}}
	bigPayload, _ := proto.Marshal(big)
	smallPayload, _ := proto.Marshal(benchEvent(2))

	var d decoder
	sameChunk := func(a, b *thlpb.Event) bool {
		return uintptr(unsafe.Pointer(b))-uintptr(unsafe.Pointer(a)) == unsafe.Sizeof(thlpb.Event{})
	}
	before, _ := d.decodeEvent(smallPayload)
	large, _ := d.decodeEvent(bigPayload)
	after, _ := d.decodeEvent(smallPayload)
	if sameChunk(before, large) || sameChunk(large, after) {
		t.Fatal("a large event shares its chunk with the events around it")
	}
	prev, _ := d.decodeEvent(smallPayload)
	shared := 0
	for range 2 * bound / len(smallPayload) {
		ev, _ := d.decodeEvent(smallPayload)
		if sameChunk(prev, ev) {
			shared += len(smallPayload)
			if shared > bound {
				t.Fatalf("small events share chunks past %d bytes of payload", bound)
			}
		} else {
			shared = len(smallPayload)
		}
		prev = ev
	}
}
