package raftstore

import (
	"encoding/binary"
	"hash/crc32"
)

// A record is a 4-byte little-endian payload length, the 4-byte CRC32C of
// the payload, and the payload, which is never empty.
const (
	headerSize = 8
	// maxPayload is the largest payload written; a StoreLogs batch that
	// encodes to more fails with ErrTooLarge.
	maxPayload = 1 << 30
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// beginRecord appends room for a record header to buf and returns where the
// record starts; the caller appends the payload and calls endRecord.
func beginRecord(buf []byte) ([]byte, int) {
	return append(buf, make([]byte, headerSize)...), len(buf)
}

// endRecord fills in the header of the record that starts at start and runs
// to the end of buf. It reports false when the payload is too large.
func endRecord(buf []byte, start int) bool {
	payload := buf[start+headerSize:]
	if len(payload) > maxPayload {
		return false
	}
	binary.LittleEndian.PutUint32(buf[start:], uint32(len(payload)))
	binary.LittleEndian.PutUint32(buf[start+4:], crc32.Checksum(payload, castagnoli))
	return true
}

// recProblem is what is wrong with a record's framing.
type recProblem int

const (
	recOK    recProblem = iota
	recShort            // the header or the payload runs past the end of the data
	recEmpty            // the length is zero
	recCRC              // the payload does not match its CRC
)

func (p recProblem) String() string {
	switch p {
	case recShort:
		return "is cut short by the end of the file"
	case recEmpty:
		return "has a zero length"
	case recCRC:
		return "fails its CRC check"
	default:
		return "is valid"
	}
}

// readRecord parses the record at off in data. It returns the payload and
// the offset after the record; next is meaningful whenever the length fits
// in data, also for recCRC.
func readRecord(data []byte, off int) (payload []byte, next int, p recProblem) {
	if len(data)-off < headerSize {
		return nil, len(data), recShort
	}
	n := binary.LittleEndian.Uint32(data[off:])
	if n == 0 {
		return nil, off + headerSize, recEmpty
	}
	if uint64(n) > uint64(len(data)-off-headerSize) {
		return nil, len(data), recShort
	}
	next = off + headerSize + int(n)
	payload = data[off+headerSize : next]
	if crc32.Checksum(payload, castagnoli) != binary.LittleEndian.Uint32(data[off+4:]) {
		return nil, next, recCRC
	}
	return payload, next, recOK
}

// scanLog calls apply with the payload of each record of data, in order,
// and returns the length of the valid prefix: len(data), or where a torn
// tail starts. A bad record with a valid record anywhere after it, or a
// payload apply rejects, is a *CorruptError.
func scanLog(path string, data []byte, apply func(payload []byte) error) (int, error) {
	off := 0
	for off < len(data) {
		payload, next, p := readRecord(data, off)
		if p != recOK {
			if validRecordAfter(data, off, next, p) {
				return 0, &CorruptError{Path: path, Offset: int64(off), Problem: p.String()}
			}
			return off, nil
		}
		if err := apply(payload); err != nil {
			return 0, &CorruptError{Path: path, Offset: int64(off), Problem: "does not decode (" + err.Error() + ")"}
		}
		off = next
	}
	return off, nil
}

// validRecordAfter reports whether a record with a valid CRC and a known
// kind starts after the bad record at off (whose framing ends at next when
// p is recCRC). A crash tears only the last write, which is one record, so
// such a record means the damage is elsewhere than in a torn tail. The end
// the bad record claims is tried first (a flipped bit in a payload); then
// every byte offset, since the damage may be in the length itself.
func validRecordAfter(data []byte, off, next int, p recProblem) bool {
	if p == recCRC && candidate(data, next) {
		return true
	}
	for o := off + 1; o+headerSize < len(data); o++ {
		if candidate(data, o) {
			return true
		}
	}
	return false
}

// candidate reports whether a valid record of a known kind starts at off.
func candidate(data []byte, off int) bool {
	if off+headerSize >= len(data) || !knownKind(data[off+headerSize]) {
		return false // checked before the CRC, to keep the scan cheap
	}
	_, _, p := readRecord(data, off)
	return p == recOK
}
