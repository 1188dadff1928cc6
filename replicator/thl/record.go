package thl

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"google.golang.org/protobuf/proto"

	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

// Segment header: magic, version, first seqno, reserved (0), CRC32C of the
// 20 bytes before it.
const (
	headerSize       = 24
	formatVersion    = 1
	recordHeaderSize = 8
)

var (
	segmentMagic = [4]byte{'C', 'T', 'H', 'L'}
	castagnoli   = crc32.MakeTable(crc32.Castagnoli)
	marshalOpts  = proto.MarshalOptions{Deterministic: true}
)

func crc(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// encodeHeader returns the header of a segment whose first seqno is first.
func encodeHeader(first uint64) []byte {
	h := make([]byte, headerSize)
	copy(h, segmentMagic[:])
	binary.LittleEndian.PutUint32(h[4:], formatVersion)
	binary.LittleEndian.PutUint64(h[8:], first)
	binary.LittleEndian.PutUint32(h[20:], crc(h[:20]))
	return h
}

// decodeHeader checks a segment header and returns its first seqno; the
// error is the problem in words.
func decodeHeader(h []byte) (uint64, error) {
	switch {
	case len(h) < headerSize:
		return 0, fmt.Errorf("is cut short (%d of %d bytes)", len(h), headerSize)
	case [4]byte(h[:4]) != segmentMagic:
		return 0, errors.New("has the wrong magic number (not a THL segment)")
	case binary.LittleEndian.Uint32(h[20:]) != crc(h[:20]):
		return 0, errors.New("fails its CRC check")
	case binary.LittleEndian.Uint32(h[4:]) != formatVersion:
		return 0, fmt.Errorf("has format version %d; this program reads version %d", binary.LittleEndian.Uint32(h[4:]), formatVersion)
	case binary.LittleEndian.Uint32(h[16:]) != 0:
		return 0, errors.New("has reserved bits set")
	}
	return binary.LittleEndian.Uint64(h[8:]), nil
}

// appendRecord appends ev's record to dst; a payload over limit bytes is
// refused.
func appendRecord(dst []byte, ev *thlpb.Event, limit int) ([]byte, error) {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0, 0, 0, 0, 0)
	dst, err := marshalOpts.MarshalAppend(dst, ev)
	if err != nil {
		return dst[:start], fmt.Errorf("%w: seqno %d fragno %d does not marshal: %v", ErrInvalid, ev.GetSeqno(), ev.GetFragno(), err)
	}
	n := len(dst) - start - recordHeaderSize
	switch {
	case n == 0:
		// Only a first fragment of seqno 0 with nothing in it marshals
		// to nothing; zero lengths are reserved to mean "no record".
		return dst[:start], fmt.Errorf("%w: seqno %d fragno %d is empty (no last_frag, no content)", ErrInvalid, ev.GetSeqno(), ev.GetFragno())
	case n > limit:
		return dst[:start], fmt.Errorf("%w: seqno %d fragno %d is %d bytes, over the THL's record limit of %d bytes (a fragment holds at least one row: a row this large cannot be replicated)", ErrInvalid, ev.GetSeqno(), ev.GetFragno(), n, limit)
	}
	binary.LittleEndian.PutUint32(dst[start:], uint32(n))
	binary.LittleEndian.PutUint32(dst[start+4:], crc(dst[start+recordHeaderSize:]))
	return dst, nil
}

// recProblem classifies a record that cannot be read.
type recProblem int

const (
	recOK       recProblem = iota
	recShort               // fewer than 8 bytes left for its header
	recZero                // length 0
	recTooLarge            // length over MaxRecordSize
	recPastEnd             // payload runs past the end
	recCRC                 // payload fails its CRC
)

func (p recProblem) String() string {
	switch p {
	case recShort:
		return "is cut short (its 8-byte header runs past the end of the file)"
	case recZero:
		return "has length 0"
	case recTooLarge:
		return fmt.Sprintf("has a length over the %d MiB record limit", MaxRecordSize>>20)
	case recPastEnd:
		return "is cut short (its length runs past the end of the file)"
	case recCRC:
		return "fails its CRC check"
	}
	return "is fine"
}

// frameable reports whether the record's extent is known, so that what
// follows it can be examined.
func (p recProblem) frameable() bool { return p == recOK || p == recZero || p == recCRC }

// decodeRecord reads the record at the start of b: it returns the payload,
// the record's size and recOK, or the problem. It never allocates.
func decodeRecord(b []byte) (payload []byte, size int, p recProblem) {
	if len(b) < recordHeaderSize {
		return nil, 0, recShort
	}
	n := binary.LittleEndian.Uint32(b)
	switch {
	case n == 0:
		return nil, recordHeaderSize, recZero
	case n > MaxRecordSize:
		return nil, 0, recTooLarge
	case uint64(len(b)-recordHeaderSize) < uint64(n):
		return nil, 0, recPastEnd
	}
	size = recordHeaderSize + int(n)
	payload = b[recordHeaderSize:size]
	if crc(payload) != binary.LittleEndian.Uint32(b[4:]) {
		return nil, size, recCRC
	}
	return payload, size, recOK
}

// unmarshalEvent decodes a payload.
func unmarshalEvent(payload []byte) (*thlpb.Event, error) {
	ev := new(thlpb.Event)
	if err := proto.Unmarshal(payload, ev); err != nil {
		return nil, err
	}
	return ev, nil
}

// pos is a place in the sequence: the seqno and fragno of a record.
type pos struct {
	seqno  uint64
	fragno uint32
}

func (p pos) String() string { return fmt.Sprintf("seqno %d fragno %d", p.seqno, p.fragno) }

// less orders positions.
func (p pos) less(q pos) bool {
	return p.seqno < q.seqno || (p.seqno == q.seqno && p.fragno < q.fragno)
}

// after returns the position expected after a record at p.
func (p pos) after(lastFrag bool) pos {
	if lastFrag {
		return pos{p.seqno + 1, 0}
	}
	return pos{p.seqno, p.fragno + 1}
}

// headerOf returns ev without its changes: what Last and Info keep.
func headerOf(ev *thlpb.Event) *thlpb.Event {
	return &thlpb.Event{
		Seqno:              ev.GetSeqno(),
		Fragno:             ev.GetFragno(),
		LastFrag:           ev.GetLastFrag(),
		Epoch:              ev.GetEpoch(),
		EventId:            ev.GetEventId(),
		SourceId:           ev.GetSourceId(),
		OriginService:      ev.GetOriginService(),
		Shard:              ev.GetShard(),
		SourceCommitTimeUs: ev.GetSourceCommitTimeUs(),
		ExtractTimeUs:      ev.GetExtractTimeUs(),
		Heartbeat:          ev.GetHeartbeat(),
		PreparedFrom:       ev.GetPreparedFrom(),
	}
}
