package raftstore

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/hashicorp/raft"
)

// Payload kinds, the first byte of every payload. Numbers are never reused.
//
//	kindEntries  count, then count entries (one StoreLogs call)
//	kindDelete   first, last: DeleteRange(first, last)
//	kindStable   n, n × (key, value); m, m × (key, uint64)   (stable file only)
//
// An entry is Index, Term (uvarints), Type (a byte), Data and Extensions
// (each a uvarint length+1, 0 for nil, then the bytes), and AppendedAt (a
// byte 0 for the zero time, or 1 then Unix seconds as a varint and
// nanoseconds as a uvarint). Keys and values in the stable payload are a
// uvarint length then the bytes.
const (
	kindEntries byte = 1
	kindDelete  byte = 2
	kindStable  byte = 3
)

// minEntrySize is the smallest encoded entry: six one-byte fields.
const minEntrySize = 6

func knownKind(k byte) bool { return k >= kindEntries && k <= kindStable }

// appendEntry appends the encoding of l to buf.
func appendEntry(buf []byte, l *raft.Log) []byte {
	buf = binary.AppendUvarint(buf, l.Index)
	buf = binary.AppendUvarint(buf, l.Term)
	buf = append(buf, byte(l.Type))
	buf = appendNilBytes(buf, l.Data)
	buf = appendNilBytes(buf, l.Extensions)
	if l.AppendedAt.IsZero() {
		return append(buf, 0)
	}
	buf = append(buf, 1)
	buf = binary.AppendVarint(buf, l.AppendedAt.Unix())
	return binary.AppendUvarint(buf, uint64(l.AppendedAt.Nanosecond()))
}

// canonicalTime returns t as decoding returns it: the zero Time, or the
// same instant in the local zone without a monotonic reading. Stored
// entries use it so that GetLog returns the same before and after a reopen.
func canonicalTime(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return time.Unix(t.Unix(), int64(t.Nanosecond()))
}

// appendNilBytes appends b so that decoding tells nil from empty.
func appendNilBytes(buf, b []byte) []byte {
	if b == nil {
		return append(buf, 0)
	}
	buf = binary.AppendUvarint(buf, uint64(len(b))+1)
	return append(buf, b...)
}

func appendBytes(buf, b []byte) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(b)))
	return append(buf, b...)
}

// appendDelete appends a kindDelete payload.
func appendDelete(buf []byte, first, last uint64) []byte {
	buf = append(buf, kindDelete)
	buf = binary.AppendUvarint(buf, first)
	return binary.AppendUvarint(buf, last)
}

// appendStable appends a kindStable payload, keys in order.
func appendStable(buf []byte, kv map[string][]byte, kvInt map[string]uint64) []byte {
	buf = append(buf, kindStable)
	buf = binary.AppendUvarint(buf, uint64(len(kv)))
	for _, k := range sortedKeys(kv) {
		buf = appendBytes(buf, []byte(k))
		buf = appendBytes(buf, kv[k])
	}
	buf = binary.AppendUvarint(buf, uint64(len(kvInt)))
	for _, k := range sortedKeys(kvInt) {
		buf = appendBytes(buf, []byte(k))
		buf = binary.AppendUvarint(buf, kvInt[k])
	}
	return buf
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, cmp.Compare)
	return keys
}

// decoder reads a payload; the first error sticks and later reads return
// zero values. Decoded byte slices are copies.
type decoder struct {
	b   []byte
	off int
	err error
}

var errShort = errors.New("payload ends early")

func (d *decoder) remaining() int { return len(d.b) - d.off }

func (d *decoder) u8() byte {
	if d.err != nil {
		return 0
	}
	if d.remaining() < 1 {
		d.err = errShort
		return 0
	}
	d.off++
	return d.b[d.off-1]
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b[d.off:])
	if n <= 0 {
		d.err = errors.New("bad uvarint")
		return 0
	}
	d.off += n
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b[d.off:])
	if n <= 0 {
		d.err = errors.New("bad varint")
		return 0
	}
	d.off += n
	return v
}

// take returns a copy of the next n bytes.
func (d *decoder) take(n uint64) []byte {
	if d.err != nil {
		return nil
	}
	if n > uint64(d.remaining()) {
		d.err = errShort
		return nil
	}
	out := make([]byte, n)
	d.off += copy(out, d.b[d.off:])
	return out
}

func (d *decoder) nilBytes() []byte {
	n := d.uvarint()
	if n == 0 {
		return nil
	}
	return d.take(n - 1)
}

func (d *decoder) bytes() []byte { return d.take(d.uvarint()) }

// count reads an element count and checks that elements of at least
// minSize bytes each can fit in the rest of the payload.
func (d *decoder) count(minSize int) int {
	n := d.uvarint()
	if d.err == nil && n > uint64(d.remaining()/minSize) {
		d.err = fmt.Errorf("count %d does not fit in the payload", n)
		return 0
	}
	return int(n)
}

// end reports the decoder's error, or trailing bytes.
func (d *decoder) end() error {
	if d.err == nil && d.remaining() != 0 {
		d.err = fmt.Errorf("%d unexpected trailing bytes", d.remaining())
	}
	return d.err
}

// decodeEntries decodes a kindEntries payload into entries with their
// encoded sizes.
func decodeEntries(payload []byte) ([]entry, error) {
	d := decoder{b: payload, off: 1}
	n := d.count(minEntrySize)
	out := make([]entry, 0, n)
	for range n {
		start := d.off
		l := &raft.Log{Index: d.uvarint(), Term: d.uvarint(), Type: raft.LogType(d.u8())}
		l.Data = d.nilBytes()
		l.Extensions = d.nilBytes()
		switch d.u8() {
		case 0:
		case 1:
			sec, nsec := d.varint(), d.uvarint()
			if nsec >= uint64(time.Second) && d.err == nil {
				d.err = fmt.Errorf("nanoseconds %d out of range", nsec)
			}
			l.AppendedAt = time.Unix(sec, int64(nsec)) // as canonicalTime returns it
		default:
			if d.err == nil {
				d.err = errors.New("bad time flag")
			}
		}
		if d.err != nil {
			break
		}
		out = append(out, entry{log: l, size: int64(d.off - start)})
	}
	if err := d.end(); err != nil {
		return nil, err
	}
	return out, nil
}

// decodeDelete decodes a kindDelete payload.
func decodeDelete(payload []byte) (first, last uint64, err error) {
	d := decoder{b: payload, off: 1}
	first, last = d.uvarint(), d.uvarint()
	return first, last, d.end()
}

// decodeStable decodes a kindStable payload.
func decodeStable(payload []byte) (map[string][]byte, map[string]uint64, error) {
	if len(payload) == 0 || payload[0] != kindStable {
		return nil, nil, errors.New("not a stable-store record")
	}
	d := decoder{b: payload, off: 1}
	n := d.count(2)
	kv := make(map[string][]byte, n)
	for range n {
		k := d.bytes()
		kv[string(k)] = d.bytes()
	}
	n = d.count(2)
	kvInt := make(map[string]uint64, n)
	for range n {
		k := d.bytes()
		kvInt[string(k)] = d.uvarint()
	}
	if err := d.end(); err != nil {
		return nil, nil, err
	}
	return kv, kvInt, nil
}
