package thl

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"

	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

const readBufferSize = 64 << 10

// segReader reads the records of one segment file through a buffer. Each
// read is bounded by an end offset the caller knows to be written.
type segReader struct {
	f      *os.File
	path   string
	buf    []byte // bytes of the file from bufOff
	bufOff int64
	nread  int64 // bytes read from the file, for tests of seek cost
	dec    decoder
}

func openSegReader(path string) (*segReader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	return &segReader{f: f, path: path, buf: make([]byte, 0, readBufferSize)}, nil
}

func (r *segReader) close() error {
	if r == nil || r.f == nil {
		return nil
	}
	err := r.f.Close()
	r.f = nil
	return err
}

// invalidate drops the buffer (the file changed under it).
func (r *segReader) invalidate() { r.buf, r.bufOff = r.buf[:0], 0 }

// header reads and checks the segment header; it returns the first seqno.
func (r *segReader) header() (uint64, error) {
	h := make([]byte, headerSize)
	n, err := r.f.ReadAt(h, 0)
	r.nread += int64(n)
	if err != nil && err != io.EOF {
		return 0, fmt.Errorf("thl: read %s: %w", r.path, err)
	}
	first, perr := decodeHeader(h[:n])
	if perr != nil {
		return 0, &CorruptError{Path: r.path, Subject: "header", Problem: perr.Error(), Offset: 0}
	}
	return first, nil
}

// bytesAt returns the n bytes at off; off+n <= end, and end is within the
// written part of the file. The slice is valid until the next call.
func (r *segReader) bytesAt(off int64, n int, end int64) ([]byte, error) {
	if off >= r.bufOff && off+int64(n) <= r.bufOff+int64(len(r.buf)) {
		i := off - r.bufOff
		return r.buf[i : i+int64(n)], nil
	}
	var b []byte
	if n > cap(r.buf) {
		b = make([]byte, n) // a large record: not kept
	} else {
		want := min(int64(cap(r.buf)), end-off)
		r.buf, r.bufOff = r.buf[:want], off
		b = r.buf
	}
	got, err := r.f.ReadAt(b, off)
	r.nread += int64(got)
	if got < n {
		r.invalidate()
		if err == nil || err == io.EOF {
			return nil, corruptRecord(r.path, off, fmt.Sprintf("is cut short: the file ends at %d bytes", off+int64(got)))
		}
		return nil, fmt.Errorf("thl: read %s at offset %d: %w", r.path, off, err)
	}
	if n > cap(r.buf) {
		return b, nil
	}
	return b[:n], nil
}

// record reads the record at off, before end. It returns the payload and
// the record's size, or the problem with the record; err is an I/O error.
func (r *segReader) record(off, end int64) (payload []byte, size int64, p recProblem, err error) {
	if end-off < recordHeaderSize {
		return nil, 0, recShort, nil
	}
	h, err := r.bytesAt(off, recordHeaderSize, end)
	if err != nil {
		return nil, 0, recOK, err
	}
	n, sum := binary.LittleEndian.Uint32(h), binary.LittleEndian.Uint32(h[4:])
	switch {
	case n == 0:
		return nil, recordHeaderSize, recZero, nil
	case n > MaxRecordSize:
		return nil, 0, recTooLarge, nil
	case int64(n) > end-off-recordHeaderSize:
		return nil, 0, recPastEnd, nil
	}
	size = recordHeaderSize + int64(n)
	payload, err = r.bytesAt(off+recordHeaderSize, int(n), end)
	if err != nil {
		return nil, 0, recOK, err
	}
	if crc(payload) != sum {
		return nil, size, recCRC, nil
	}
	return payload, size, recOK, nil
}

// event reads, decodes and checks the record at off: it must hold the
// event at want. It returns the event and the record's size; damage is a
// *CorruptError.
func (r *segReader) event(off, end int64, want pos) (*eventAt, error) {
	payload, size, p, err := r.record(off, end)
	if err != nil {
		return nil, err
	}
	if p != recOK {
		return nil, corruptRecord(r.path, off, p.String())
	}
	ev, err := r.dec.decodeEvent(payload)
	if err != nil {
		return nil, corruptRecord(r.path, off, fmt.Sprintf("does not decode as an event (%v)", err))
	}
	if got := (pos{ev.GetSeqno(), ev.GetFragno()}); got != want {
		return nil, corruptRecord(r.path, off, fmt.Sprintf("holds %s where %s was expected", got, want))
	}
	return &eventAt{ev: ev, off: off, size: size}, nil
}

// eventAt is a decoded record and where it is.
type eventAt struct {
	ev   *thlpb.Event
	off  int64
	size int64
}
