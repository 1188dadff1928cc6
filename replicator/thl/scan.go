package thl

import (
	"fmt"

	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

// scanResult is what a full scan of a segment found.
type scanResult struct {
	last      *thlpb.Event // header of the last complete transaction's last record
	lastPos   pos          // the last valid record
	next      pos          // expected after it
	txStart   int64        // where the trailing incomplete transaction starts (when partial > 0)
	partial   int          // fragments of an incomplete transaction at the end
	tornAt    int64        // where a torn tail starts (when torn)
	torn      recProblem   // recOK: none
	fileSize  int64
	validEnd  int64 // end of the last valid record
	hasRecord bool
}

// scanSegment reads every record of g's file (of fileSize bytes) into g's
// index and state. With tail set (the last segment) a torn tail ends the
// scan and is reported in the result; any other damage is an error.
func scanSegment(r *segReader, g *segment, fileSize, interval int64, tail bool) (*scanResult, error) {
	res := &scanResult{fileSize: fileSize, next: pos{g.first, 0}}
	g.entries, g.hasRecords, g.hasComplete = nil, false, false
	g.size = headerSize
	off := int64(headerSize)
	for off < fileSize {
		payload, size, p, err := r.record(off, fileSize)
		if err != nil {
			return nil, err
		}
		if p != recOK {
			if tail && tornFrom(r, off, size, p, fileSize) {
				res.torn, res.tornAt = p, off
				break
			}
			return nil, corruptRecord(r.path, off, p.String())
		}
		ev, err := unmarshalEvent(payload)
		if err != nil {
			return nil, corruptRecord(r.path, off, fmt.Sprintf("does not decode as an event (%v)", err))
		}
		got := pos{ev.GetSeqno(), ev.GetFragno()}
		if got != res.next {
			return nil, corruptRecord(r.path, off, fmt.Sprintf("holds %s where %s was expected", got, res.next))
		}
		g.addRecord(got, ev.GetLastFrag(), off, size, ev.GetEpoch(), ev.GetEventId(), ev.GetSourceCommitTimeUs(), interval)
		if ev.GetLastFrag() {
			res.last, res.partial = headerOf(ev), 0
		} else {
			if got.fragno == 0 {
				res.txStart = off
			}
			res.partial++
		}
		res.hasRecord, res.lastPos, res.next = true, got, got.after(ev.GetLastFrag())
		off += size
	}
	res.validEnd = off
	return res, nil
}

// tornFrom reports whether the bad record at off (of problem p and, when
// frameable, size) starts a torn tail: no record with a valid CRC can be
// reached from it by following record lengths to the end of the file.
func tornFrom(r *segReader, off, size int64, p recProblem, fileSize int64) bool {
	for {
		if !p.frameable() {
			return true
		}
		off += size
		if off >= fileSize {
			return true
		}
		var err error
		_, size, p, err = r.record(off, fileSize)
		if err != nil {
			return false
		}
		if p == recOK {
			return false
		}
	}
}

// trimTo drops g's records at and past off (a record boundary).
func (g *segment) trimTo(off int64) {
	i := len(g.entries)
	for i > 0 && g.entries[i-1].off >= off {
		i--
	}
	g.entries = g.entries[:i]
	g.size = off
	if off <= headerSize {
		g.hasRecords, g.hasComplete = false, false
	}
}

// setLast records ev as g's last complete transaction.
func (g *segment) setLast(ev *thlpb.Event) {
	g.hasComplete, g.last, g.lastEpoch, g.lastEventID, g.lastCommitUs = true, ev.GetSeqno(), ev.GetEpoch(), ev.GetEventId(), ev.GetSourceCommitTimeUs()
}

// lastEvent reads the last record of g before end (a transaction
// boundary, past g's first record), starting from the last index entry
// before it.
func lastEvent(g *segment, end int64) (*thlpb.Event, error) {
	i := len(g.entries)
	for i > 0 && g.entries[i-1].off >= end {
		i--
	}
	if i == 0 {
		return nil, corruptRecord(g.path, end, "ends a segment with no index entry before it")
	}
	r, err := openSegReader(g.path)
	if err != nil {
		return nil, fmt.Errorf("thl: %w", err)
	}
	defer r.close()
	e := g.entries[i-1]
	off, want := e.off, e.pos
	var last *eventAt
	for off < end {
		ea, err := r.event(off, end, want)
		if err != nil {
			return nil, err
		}
		last, off, want = ea, off+ea.size, want.after(ea.ev.GetLastFrag())
	}
	if last == nil || !last.ev.GetLastFrag() {
		return nil, corruptRecord(g.path, e.off, "starts records that do not end a transaction where the segment's index says one ends")
	}
	return last.ev, nil
}
