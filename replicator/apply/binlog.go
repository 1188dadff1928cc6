package apply

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

// Rows of a table with triggers on the target are applied as the server's
// own replication applies them: the source's Table_map and Rows events
// (carried in the RowChange) run in a BINLOG statement. The server then
// writes the rows without firing triggers (slave_run_triggers_for_rbr=NO),
// and cascades foreign keys as the source did; the rows a trigger wrote
// on the source are in the transaction already.

// Binlog event layout (MariaDB and MySQL, binlog version 4).
const (
	eventHeaderSize  = 19
	eventTypeOffset  = 4
	eventSizeOffset  = 9
	formatEventType  = 15
	tableMapType     = 19
	rowsFlagsOffset  = eventHeaderSize + 6 // after the 6-byte table id
	rowsStmtEndFlag  = 0x01
	binlogVersion    = 4
	serverVersionLen = 50
)

// formatDescription is a format description event announcing binlog
// version 4 without checksums; every BINLOG statement starts with it, so
// that it needs no state on its connection. The post-header lengths are
// MariaDB 10.11's, which read every event MariaDB 10.x and MySQL 5.7/8.0
// write for rows (Rows v1 and v2, Table_map).
var formatDescription = func() []byte {
	post := make([]byte, 171)
	copy(post, []byte{
		0x38, 0x0d, 0x00, 0x08, 0x00, 0x12, 0x00, 0x04, 0x04, 0x04, 0x04, 0x12, 0x00, 0x00, 0xe4, 0x00,
		0x04, 0x1a, 0x08, 0x00, 0x00, 0x00, 0x08, 0x08, 0x08, 0x02, 0x00, 0x00, 0x00, 0x0a, 0x0a, 0x0a,
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x0a, 0x0a,
	})
	copy(post[160:], []byte{0x04, 0x13, 0x04, 0x00, 0x0d, 0x08, 0x08, 0x08, 0x0a, 0x0a, 0x0a})
	b := make([]byte, eventHeaderSize, eventHeaderSize+2+serverVersionLen+4+1+len(post)+1+4)
	b[eventTypeOffset] = formatEventType
	b = binary.LittleEndian.AppendUint16(b, binlogVersion)
	version := make([]byte, serverVersionLen)
	copy(version, "10.11.0-MariaDB")
	b = append(b, version...)
	b = append(b, 0, 0, 0, 0, eventHeaderSize) // create timestamp, header length
	b = append(b, post...)
	// The checksum algorithm (OFF), then the room a checksum takes: the
	// server reads the algorithm at that place whatever it is.
	b = append(b, 0, 0, 0, 0, 0)
	binary.LittleEndian.PutUint32(b[eventSizeOffset:], uint32(len(b)))
	return b
}()

// binlogRows adds the source's events of rc to the builder's pending
// BINLOG statement: its Rows events become one statement of their own
// (only the last ends it), so the Table_map before them stays in force
// for all. Consecutive row changes share one BINLOG statement, which
// flushBinlog writes.
func (b *builder) binlogRows(t *table, rc *thlpb.RowChange) error {
	raw := rc.GetBinlog()
	if len(raw) == 0 {
		return fmt.Errorf("%s.%s has triggers or system versioning on this database, and the transaction carries no source binlog events "+
			"to apply its rows as the source wrote them (it was extracted by an older replicator); skip the transaction and repair the rows", t.schema, t.name)
	}
	start := len(b.run)
	b.run = append(b.run, raw...)
	lastRows := -1
	for off := start; off < len(b.run); {
		rel := off - start
		if len(b.run)-off < eventHeaderSize {
			return fmt.Errorf("the source binlog events of %s.%s are cut short at byte %d of %d", t.schema, t.name, rel, len(raw))
		}
		size := int(binary.LittleEndian.Uint32(b.run[off+eventSizeOffset:]))
		if size < eventHeaderSize || off+size > len(b.run) {
			return fmt.Errorf("a source binlog event of %s.%s at byte %d claims %d bytes of the %d left", t.schema, t.name, rel, size, len(b.run)-off)
		}
		if b.run[off+eventTypeOffset] != tableMapType {
			if size < rowsFlagsOffset+2 {
				return fmt.Errorf("a source Rows event of %s.%s at byte %d is %d bytes, too short for its header", t.schema, t.name, rel, size)
			}
			b.run[off+rowsFlagsOffset] &^= rowsStmtEndFlag
			lastRows = off
		}
		off += size
	}
	if lastRows < 0 {
		return fmt.Errorf("the source binlog events of %s.%s hold no Rows event", t.schema, t.name)
	}
	b.run[lastRows+rowsFlagsOffset] |= rowsStmtEndFlag
	return nil
}

// flushBinlog writes the pending BINLOG statement, if any.
func (b *builder) flushBinlog() {
	if len(b.run) == 0 {
		return
	}
	b.buf = append(b.buf, "BINLOG '"...)
	n := base64.StdEncoding.EncodedLen(len(formatDescription) + len(b.run))
	b.buf = slices.Grow(b.buf, n+2)
	events := append(append(make([]byte, 0, len(formatDescription)+len(b.run)), formatDescription...), b.run...)
	b.buf = base64.StdEncoding.AppendEncode(b.buf, events)
	b.buf = append(b.buf, "';"...)
	b.marks.cuts = append(b.marks.cuts, len(b.buf))
	b.run = b.run[:0]
}
