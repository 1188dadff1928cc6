package thl

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
)

// An index file holds, little-endian: magic "CTHI", version, the segment's
// size, first and last seqno, the last event's epoch, the first and last
// events' commit times (µs), the last event id (u32 length + bytes), the
// entry count (u32) and entries of (seqno u64, fragno u32, offset u64),
// then a CRC32C of all that.
var indexMagic = [4]byte{'C', 'T', 'H', 'I'}

const (
	indexFixed     = 60
	indexEntrySize = 20
	maxEventIDLen  = 1 << 16
)

// indexEntry says the record of (seqno, fragno) starts at off.
type indexEntry struct {
	pos
	off int64
}

// segment is what the store knows of one segment file.
type segment struct {
	num    uint64
	path   string // data file
	ipath  string // index file
	first  uint64 // from the header: the seqno of its first record
	size   int64  // sealed: the file's size; active: the published end
	sealed bool

	// Of its records: whether it has any, and its last complete
	// transaction (sealed segments end with one).
	hasRecords    bool
	hasComplete   bool
	last          uint64
	lastEpoch     uint64
	lastEventID   string
	firstCommitUs int64
	lastCommitUs  int64

	entries []indexEntry
}

// addRecord notes a record of the segment at off, keeping an index entry
// every interval bytes.
func (g *segment) addRecord(p pos, lastFrag bool, off, size int64, epoch uint64, eventID string, commitUs int64, interval int64) {
	if len(g.entries) == 0 || off-g.entries[len(g.entries)-1].off >= interval {
		g.entries = append(g.entries, indexEntry{p, off})
	}
	if !g.hasRecords {
		g.hasRecords, g.firstCommitUs = true, commitUs
	}
	if lastFrag {
		g.hasComplete, g.last, g.lastEpoch, g.lastEventID, g.lastCommitUs = true, p.seqno, epoch, eventID, commitUs
	}
	g.size = off + size
}

// seekEntry returns the last index entry at or before the first fragment
// of seqno; ok is false when the segment has none.
func (g *segment) seekEntry(seqno uint64) (indexEntry, bool) {
	i := sort.Search(len(g.entries), func(i int) bool { return (pos{seqno, 0}).less(g.entries[i].pos) })
	if i == 0 {
		return indexEntry{}, false
	}
	return g.entries[i-1], true
}

// encodeIndex returns the index file of sealed segment g.
func encodeIndex(g *segment) []byte {
	b := make([]byte, 0, indexFixed+len(g.lastEventID)+4+indexEntrySize*len(g.entries)+4)
	b = append(b, indexMagic[:]...)
	b = binary.LittleEndian.AppendUint32(b, formatVersion)
	b = binary.LittleEndian.AppendUint64(b, uint64(g.size))
	b = binary.LittleEndian.AppendUint64(b, g.first)
	b = binary.LittleEndian.AppendUint64(b, g.last)
	b = binary.LittleEndian.AppendUint64(b, g.lastEpoch)
	b = binary.LittleEndian.AppendUint64(b, uint64(g.firstCommitUs))
	b = binary.LittleEndian.AppendUint64(b, uint64(g.lastCommitUs))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(g.lastEventID)))
	b = append(b, g.lastEventID...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(g.entries)))
	for _, e := range g.entries {
		b = binary.LittleEndian.AppendUint64(b, e.seqno)
		b = binary.LittleEndian.AppendUint32(b, e.fragno)
		b = binary.LittleEndian.AppendUint64(b, uint64(e.off))
	}
	return binary.LittleEndian.AppendUint32(b, crc(b))
}

// decodeIndex reads an index file into g, whose first seqno (from the
// segment header) and file size are known; the error says what is wrong.
func decodeIndex(data []byte, g *segment, fileSize int64) error {
	if len(data) < indexFixed+8 {
		return errors.New("is cut short")
	}
	body := data[:len(data)-4]
	if crc(body) != binary.LittleEndian.Uint32(data[len(data)-4:]) {
		return errors.New("fails its CRC check")
	}
	if [4]byte(body[:4]) != indexMagic || binary.LittleEndian.Uint32(body[4:]) != formatVersion {
		return errors.New("has the wrong magic number or version")
	}
	size := int64(binary.LittleEndian.Uint64(body[8:]))
	first := binary.LittleEndian.Uint64(body[16:])
	last := binary.LittleEndian.Uint64(body[24:])
	if size != fileSize {
		return fmt.Errorf("is stale: it describes %d bytes of data, the segment has %d", size, fileSize)
	}
	if first != g.first || last < first {
		return fmt.Errorf("names seqnos %d..%d for a segment that starts at %d", first, last, g.first)
	}
	idLen := int(binary.LittleEndian.Uint32(body[56:]))
	if idLen > maxEventIDLen || indexFixed+idLen+4 > len(body) {
		return errors.New("has a malformed event id")
	}
	rest := body[indexFixed:]
	eventID := string(rest[:idLen])
	rest = rest[idLen:]
	n := int(binary.LittleEndian.Uint32(rest))
	rest = rest[4:]
	if n == 0 || len(rest) != n*indexEntrySize {
		return fmt.Errorf("holds %d bytes of entries for a count of %d", len(rest), n)
	}
	entries := make([]indexEntry, n)
	for i := range entries {
		e := rest[i*indexEntrySize:]
		entries[i] = indexEntry{pos{binary.LittleEndian.Uint64(e), binary.LittleEndian.Uint32(e[8:])}, int64(binary.LittleEndian.Uint64(e[12:]))}
		if i == 0 && (entries[0].pos != pos{first, 0} || entries[0].off != headerSize) {
			return errors.New("does not start at the segment's first record")
		}
		if i > 0 && (!entries[i-1].pos.less(entries[i].pos) || entries[i-1].off >= entries[i].off) {
			return fmt.Errorf("has entry %d out of order", i)
		}
		if entries[i].off >= size || entries[i].seqno > last {
			return fmt.Errorf("has entry %d past the end of the segment", i)
		}
	}
	g.size, g.last, g.hasRecords, g.hasComplete = size, last, true, true
	g.lastEpoch = binary.LittleEndian.Uint64(body[32:])
	g.firstCommitUs = int64(binary.LittleEndian.Uint64(body[40:]))
	g.lastCommitUs = int64(binary.LittleEndian.Uint64(body[48:]))
	g.lastEventID = eventID
	g.entries = entries
	return nil
}
