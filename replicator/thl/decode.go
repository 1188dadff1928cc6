package thl

import (
	"errors"
	"math"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

// A decoder turns record payloads into events without protobuf's
// reflection: reading the THL was a third of an applier's CPU, most of it
// an allocation per message, oneof wrapper, string and byte slice. It
// allocates messages from chunks, takes strings from one string copy of
// the payload and byte fields from one byte copy (capacity-limited, so an
// append copies), and interns names (schemas, tables, columns), which
// repeat from event to event. Anything it does not expect (an unknown
// field, a wire type that does not match, a repeated singular message,
// text that is not UTF-8, a malformed varint) sends the payload to
// proto.Unmarshal instead, which decides: the result is always what
// proto.Unmarshal returns (decode_test.go checks it).
//
// A decoder serves one reader at a time; the events it returns share no
// memory that it writes again.
type decoder struct {
	str   string // the payload being decoded, as a string
	bytes []byte // the payload being decoded, a copy

	names map[string]string

	// Every message taken from a chunk keeps the whole chunk alive, and
	// with it every event whose messages share it. shared counts the
	// payload bytes decoded into the current chunks; past sharedChunks
	// the next event starts new ones, so a reader's decoder holds no
	// more than that of events its consumer has let go (chunks of 128
	// events of a thousand rows each held a gigabyte).
	shared int

	events  []thlpb.Event
	changes []thlpb.Change
	crows   []thlpb.Change_Rows
	rcs     []thlpb.RowChange
	cols    []thlpb.Column
	colPtrs []*thlpb.Column
	rows    []thlpb.Row
	rowPtrs []*thlpb.Row
	chPtrs  []*thlpb.Change
	vals    []thlpb.Value
	valPtrs []*thlpb.Value
	nulls   []thlpb.Value_Null
	ints    []thlpb.Value_Int
	uints   []thlpb.Value_Uint
	doubles []thlpb.Value_Double
	floats  []thlpb.Value_Float
	decs    []thlpb.Value_Decimal
	blobs   []thlpb.Value_Bytes
	texts   []thlpb.Value_Text
}

// chunk is how many messages of a kind a decoder allocates at once.
const chunk = 128

// maxNames bounds the interned names; past it the table starts again.
const maxNames = 4096

// errFallback: the payload holds something the decoder leaves to
// proto.Unmarshal.
var errFallback = errors.New("thl: decode with proto.Unmarshal")

// take returns the next element of a chunked slab, allocating a new chunk
// when it is used up.
func take[T any](slab *[]T) *T {
	if len(*slab) == cap(*slab) {
		*slab = make([]T, 0, chunk)
	}
	*slab = (*slab)[:len(*slab)+1]
	return &(*slab)[len(*slab)-1]
}

// takeN returns n elements of a chunked slab as a slice whose capacity is
// its length (an append copies).
func takeN[T any](slab *[]T, n int) []T {
	if n > chunk/2 {
		return make([]T, n)
	}
	if cap(*slab)-len(*slab) < n {
		*slab = make([]T, 0, chunk)
	}
	l := len(*slab)
	*slab = (*slab)[:l+n]
	return (*slab)[l : l+n : l+n]
}

// keep copies list (a scratch slice) into n elements of slab; nil when
// list is empty.
func keep[T any](slab *[]T, list []T) []T {
	if len(list) == 0 {
		return nil
	}
	out := takeN(slab, len(list))
	copy(out, list)
	return out
}

// sharedChunks bounds the payload bytes whose events share chunks.
const sharedChunks = 256 << 10

// fresh makes the next messages come from new chunks.
func (d *decoder) fresh() {
	names := d.names
	*d = decoder{names: names}
}

// decodeEvent decodes payload; the events it returns do not point into
// payload.
func (d *decoder) decodeEvent(payload []byte) (*thlpb.Event, error) {
	if d.shared+len(payload) > sharedChunks {
		d.fresh()
	}
	d.shared += len(payload)
	d.str, d.bytes = "", nil
	ev := take(&d.events)
	if err := d.event(payload, ev); err != nil {
		ev = new(thlpb.Event)
		if err := proto.Unmarshal(payload, ev); err != nil {
			return nil, err
		}
	}
	d.str, d.bytes = "", nil
	return ev, nil
}

// sharedCopies bounds the payloads whose strings and byte fields share a
// copy of the payload; the fields of a larger one are copied one by one
// (a large row must not be held twice for one short string).
const sharedCopies = 64 << 10

// text returns b, a slice of payload, as a string.
func (d *decoder) text(payload []byte, b []byte) (string, error) {
	if !utf8.Valid(b) {
		return "", errFallback
	}
	switch {
	case len(b) == 0:
		return "", nil
	case len(payload) > sharedCopies:
		return string(b), nil
	}
	if d.str == "" {
		d.str = string(payload)
	}
	off := offsetIn(payload, b)
	return d.str[off : off+len(b)], nil
}

// blob returns a copy of b, a slice of payload.
func (d *decoder) blob(payload []byte, b []byte) []byte {
	if len(payload) > sharedCopies {
		return append(make([]byte, 0, len(b)), b...)
	}
	if d.bytes == nil {
		d.bytes = append([]byte(nil), payload...)
	}
	off := offsetIn(payload, b)
	return d.bytes[off : off+len(b) : off+len(b)]
}

// name returns b as an interned string.
func (d *decoder) name(b []byte) (string, error) {
	if s, ok := d.names[string(b)]; ok {
		return s, nil
	}
	if !utf8.Valid(b) {
		return "", errFallback
	}
	if d.names == nil || len(d.names) >= maxNames {
		d.names = make(map[string]string)
	}
	s := string(b)
	d.names[s] = s
	return s, nil
}

// offsetIn is where sub, a slice of payload, starts in it.
func offsetIn(payload, sub []byte) int {
	return cap(payload) - cap(sub)
}

// field reads one field's tag and value: v for varints and fixed values,
// b for length-delimited ones; rest is what follows.
func field(b []byte) (num protowire.Number, typ protowire.Type, v uint64, val []byte, rest []byte, err error) {
	num, typ, n := protowire.ConsumeTag(b)
	if n < 0 {
		return 0, 0, 0, nil, nil, errFallback
	}
	b = b[n:]
	switch typ {
	case protowire.VarintType:
		v, n = protowire.ConsumeVarint(b)
	case protowire.Fixed64Type:
		v, n = protowire.ConsumeFixed64(b)
	case protowire.Fixed32Type:
		var x uint32
		x, n = protowire.ConsumeFixed32(b)
		v = uint64(x)
	case protowire.BytesType:
		val, n = protowire.ConsumeBytes(b)
	default:
		return 0, 0, 0, nil, nil, errFallback
	}
	if n < 0 {
		return 0, 0, 0, nil, nil, errFallback
	}
	return num, typ, v, val, b[n:], nil
}

func (d *decoder) event(payload []byte, ev *thlpb.Event) error {
	b := payload
	var changes []*thlpb.Change
	for len(b) > 0 {
		num, typ, v, val, rest, err := field(b)
		if err != nil {
			return err
		}
		b = rest
		want := protowire.BytesType
		switch num {
		case 1, 2, 3, 4, 9, 10:
			want = protowire.VarintType
		}
		if typ != want {
			return errFallback
		}
		switch num {
		case 1:
			ev.Seqno = v
		case 2:
			ev.Fragno = uint32(v)
		case 3:
			ev.LastFrag = v != 0
		case 4:
			ev.Epoch = v
		case 5:
			ev.EventId, err = d.text(payload, val)
		case 6:
			ev.SourceId, err = d.name(val)
		case 7:
			ev.OriginService, err = d.name(val)
		case 8:
			ev.Shard, err = d.name(val)
		case 9:
			ev.SourceCommitTimeUs = int64(v)
		case 10:
			ev.ExtractTimeUs = int64(v)
		case 11:
			var c *thlpb.Change
			c, err = d.change(payload, val)
			changes = append(changes, c)
		case 12:
			ev.Heartbeat, err = d.text(payload, val)
		case 13:
			ev.PreparedFrom, err = d.text(payload, val)
		case 14:
			// On the first fragment only, and short: no slab.
			a := new(thlpb.After)
			if proto.Unmarshal(val, a) != nil {
				return errFallback
			}
			ev.After = append(ev.After, a)
		default:
			return errFallback
		}
		if err != nil {
			return err
		}
	}
	ev.Changes = keep(&d.chPtrs, changes)
	return nil
}

func (d *decoder) change(payload, b []byte) (*thlpb.Change, error) {
	c := take(&d.changes)
	seen := false
	for len(b) > 0 {
		num, typ, _, val, rest, err := field(b)
		if err != nil || typ != protowire.BytesType || seen {
			return nil, errFallback
		}
		b, seen = rest, true
		switch num {
		case 1:
			rc := take(&d.rcs)
			if err := d.rowChange(payload, val, rc); err != nil {
				return nil, err
			}
			w := take(&d.crows)
			w.Rows = rc
			c.Change = w
		case 2:
			st := new(thlpb.Statement)
			if err := proto.Unmarshal(val, st); err != nil {
				return nil, errFallback
			}
			c.Change = &thlpb.Change_Statement{Statement: st}
		default:
			return nil, errFallback
		}
	}
	return c, nil
}

func (d *decoder) rowChange(payload, b []byte, rc *thlpb.RowChange) error {
	var cols [64]*thlpb.Column
	var rows [64]*thlpb.Row
	colList, rowList := cols[:0], rows[:0]
	for len(b) > 0 {
		num, typ, v, val, rest, err := field(b)
		if err != nil {
			return err
		}
		b = rest
		want := protowire.BytesType
		if num == 3 || num == 7 {
			want = protowire.VarintType
		}
		if typ != want {
			return errFallback
		}
		switch num {
		case 1:
			rc.Schema, err = d.name(val)
		case 2:
			rc.Table, err = d.name(val)
		case 3:
			rc.Action = thlpb.RowChange_Action(int32(v))
		case 4:
			c := take(&d.cols)
			err = d.column(val, c)
			colList = append(colList, c)
		case 5:
			r := take(&d.rows)
			err = d.row(payload, val, r)
			rowList = append(rowList, r)
		case 6:
			rc.Binlog = d.blob(payload, val)
		case 7:
			rc.NoForeignKeyChecks = v != 0
		default:
			return errFallback
		}
		if err != nil {
			return err
		}
	}
	rc.Columns = keep(&d.colPtrs, colList)
	rc.Rows = keep(&d.rowPtrs, rowList)
	return nil
}

func (d *decoder) column(b []byte, c *thlpb.Column) error {
	for len(b) > 0 {
		num, typ, v, val, rest, err := field(b)
		if err != nil {
			return err
		}
		b = rest
		if (num == 1) != (typ == protowire.BytesType) || typ != protowire.BytesType && typ != protowire.VarintType {
			return errFallback
		}
		switch num {
		case 1:
			if c.Name, err = d.name(val); err != nil {
				return err
			}
		case 2:
			c.Type = uint32(v)
		case 3:
			c.Unsigned = v != 0
		case 4:
			c.Key = v != 0
		case 5:
			c.Meta = uint32(v)
		default:
			return errFallback
		}
	}
	return nil
}

func (d *decoder) row(payload, b []byte, r *thlpb.Row) error {
	var vals [64]*thlpb.Value
	before, after := vals[:0:32], vals[32:32]
	for len(b) > 0 {
		num, typ, _, val, rest, err := field(b)
		if err != nil || typ != protowire.BytesType {
			return errFallback
		}
		b = rest
		v := take(&d.vals)
		if err := d.value(payload, val, v); err != nil {
			return err
		}
		switch num {
		case 1:
			before = append(before, v)
		case 2:
			after = append(after, v)
		default:
			return errFallback
		}
	}
	r.Before = keep(&d.valPtrs, before)
	r.After = keep(&d.valPtrs, after)
	return nil
}

func (d *decoder) value(payload, b []byte, v *thlpb.Value) error {
	for len(b) > 0 {
		num, typ, x, val, rest, err := field(b)
		if err != nil {
			return err
		}
		b = rest
		want := protowire.VarintType
		switch num {
		case 4:
			want = protowire.Fixed64Type
		case 5:
			want = protowire.Fixed32Type
		case 6, 7, 8:
			want = protowire.BytesType
		}
		if typ != want {
			return errFallback
		}
		switch num {
		case 1:
			w := take(&d.nulls)
			w.Null = x != 0
			v.Value = w
		case 2:
			w := take(&d.ints)
			w.Int = protowire.DecodeZigZag(x)
			v.Value = w
		case 3:
			w := take(&d.uints)
			w.Uint = x
			v.Value = w
		case 4:
			w := take(&d.doubles)
			w.Double = math.Float64frombits(x)
			v.Value = w
		case 5:
			w := take(&d.floats)
			w.Float = math.Float32frombits(uint32(x))
			v.Value = w
		case 6:
			w := take(&d.decs)
			if w.Decimal, err = d.text(payload, val); err != nil {
				return err
			}
			v.Value = w
		case 7:
			w := take(&d.blobs)
			w.Bytes = d.blob(payload, val)
			v.Value = w
		case 8:
			w := take(&d.texts)
			if w.Text, err = d.text(payload, val); err != nil {
				return err
			}
			v.Value = w
		default:
			return errFallback
		}
	}
	return nil
}
