package extract

import (
	"bytes"
	"compress/flate"
	"compress/zlib"
	"fmt"
	"io"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"
)

// MariaDB's binlog types of COMPRESSED columns (column compression): a
// VARCHAR or a BLOB/TEXT whose stored bytes are compressed.
const (
	typeBlobCompressed    = 140
	typeVarcharCompressed = 141
)

// compression lets go-mysql read the rows of tables with COMPRESSED
// columns, which it does not know: it sees every event right after go-mysql
// parsed it and before go-mysql parses the next (the binlog reader's
// synchronous handler, or RunTail's callback), and decodes a table map that
// has such columns again with their plain types (VARCHAR, BLOB; the
// metadata is the same), in place, so the rows events that follow decode.
// Their values are then the stored bytes, which decompress turns into the
// column's value. The events' raw bytes (for the BINLOG statements of the
// applier) stay as they were.
type compression struct {
	crc bool // the binlog's events end with a CRC32
}

// see looks at ev, returning for a table map with COMPRESSED columns which
// they are (nil for any other event).
func (c *compression) see(ev *replication.BinlogEvent) ([]bool, error) {
	switch e := ev.Event.(type) {
	case *replication.FormatDescriptionEvent:
		c.crc = e.ChecksumAlgorithm == replication.BINLOG_CHECKSUM_ALG_CRC32
	case *replication.TableMapEvent:
		if !bytes.ContainsAny(e.ColumnType, string([]byte{typeVarcharCompressed, typeBlobCompressed})) {
			return nil, nil
		}
		return c.plain(ev, e)
	}
	return nil, nil
}

// plain decodes the table map e again with COMPRESSED types replaced.
func (c *compression) plain(ev *replication.BinlogEvent, e *replication.TableMapEvent) ([]bool, error) {
	flags := make([]bool, len(e.ColumnType))
	for i, t := range e.ColumnType {
		flags[i] = t == typeVarcharCompressed || t == typeBlobCompressed
	}
	body := ev.RawData[replication.EventHeaderSize:]
	if c.crc {
		body = body[:len(body)-replication.BinlogChecksumLength]
	}
	body = append([]byte(nil), body...)
	// The column types follow the table id (6 bytes), the flags (2), the
	// schema and table names (length, name, NUL) and the column count.
	at := 6 + 2
	for range 2 {
		if at >= len(body) {
			break
		}
		at += 1 + int(body[at]) + 1
	}
	if at < len(body) {
		_, _, n := mysql.LengthEncodedInt(body[at:])
		at += n
	}
	if at+len(e.ColumnType) > len(body) || !bytes.Equal(body[at:at+len(e.ColumnType)], e.ColumnType) {
		return nil, fmt.Errorf("the table map of %s.%s does not hold its column types where expected", e.Schema, e.Table)
	}
	for i := range flags {
		switch body[at+i] {
		case typeVarcharCompressed:
			body[at+i] = mysql.MYSQL_TYPE_VARCHAR
		case typeBlobCompressed:
			body[at+i] = mysql.MYSQL_TYPE_BLOB
		}
	}
	if err := e.Decode(body); err != nil {
		return nil, fmt.Errorf("decode the table map of %s.%s with its COMPRESSED columns as plain ones: %v", e.Schema, e.Table, err)
	}
	return flags, nil
}

// decompress returns the value of a COMPRESSED column from its stored
// bytes: a header byte, then the bytes as they are (header 0) or zlib's
// (header 0x80 | 8 for a raw deflate stream | the number of bytes of the
// big-endian original length that follow).
func decompress(stored []byte) ([]byte, error) {
	if len(stored) == 0 {
		return stored, nil
	}
	h, rest := stored[0], stored[1:]
	if h&0x80 == 0 {
		return rest, nil
	}
	n := int(h & 0x07)
	if len(rest) < n {
		return nil, fmt.Errorf("a COMPRESSED value of %d bytes is shorter than its header says", len(stored))
	}
	size := 0
	for _, b := range rest[:n] {
		size = size<<8 | int(b)
	}
	var r io.ReadCloser
	if h&0x08 != 0 {
		r = flate.NewReader(bytes.NewReader(rest[n:]))
	} else {
		var err error
		if r, err = zlib.NewReader(bytes.NewReader(rest[n:])); err != nil {
			return nil, fmt.Errorf("a COMPRESSED value does not hold a zlib stream: %v", err)
		}
	}
	defer r.Close()
	out := make([]byte, 0, size)
	buf := bytes.NewBuffer(out)
	if _, err := io.Copy(buf, io.LimitReader(r, int64(size)+1)); err != nil {
		return nil, fmt.Errorf("a COMPRESSED value does not decompress: %v", err)
	}
	if buf.Len() != size {
		return nil, fmt.Errorf("a COMPRESSED value decompresses to %d bytes, its header says %d", buf.Len(), size)
	}
	return buf.Bytes(), nil
}

// decompressed is decompress for a value as go-mysql decodes it: a string
// (VARCHAR) or bytes (BLOB), returned as the same type.
func decompressed(x any) (any, error) {
	switch v := x.(type) {
	case string:
		b, err := decompress([]byte(v))
		return string(b), err
	case []byte:
		return decompress(v)
	}
	return nil, fmt.Errorf("a COMPRESSED value decoded as %T", x)
}
