package extract

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"strconv"
	"strings"

	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/carbidedb/carbide/internal/position"
)

// XA transactions reach the binlog in two groups: the PREPARE group (GTID
// flagged FL_PREPARED_XA on MariaDB, XA START on MySQL; the rows; XA END;
// an XA_PREPARE_LOG_EVENT) and, later and possibly after other
// transactions or a server restart, a one-statement group "XA COMMIT xid"
// or "XA ROLLBACK xid". The extractor holds a prepared transaction's
// changes until its XA COMMIT and sends them then, as an ordinary
// transaction at the commit's position, so replicas apply XA transactions
// in commit order and never hold prepared state; XA ROLLBACK drops them.
// One-phase commits are logged as ordinary transactions (MariaDB) or as a
// PREPARE group marked one-phase (MySQL), sent at once.
//
// Restarts: every event sent while transactions are prepared carries
// prepared_from, the start of the oldest one's PREPARE group. A Run
// continuing after that event reads again from there: it rebuilds the
// prepared transactions and skips everything up to the event (sent
// already).

// flPreparedXA flags the GTID event of an XA PREPARE group (MariaDB's
// FL_PREPARED_XA, which go-mysql does not name).
const flPreparedXA = 0x40

// xaPrepared is one prepared XA transaction waiting for its end.
type xaPrepared struct {
	tx    txn
	start position.Position // of its PREPARE group
}

// xaPrepare ends a PREPARE group at end: its changes wait for the XA
// COMMIT, or are committed at once when the event says one-phase (MySQL).
func (r *run) xaPrepare(h *replication.EventHeader, data []byte, end uint32) error {
	// one_phase(1) format_id(4) gtrid_length(4) bqual_length(4) data
	if len(data) < 13 {
		return errorf(ErrDecode, "XA_PREPARE_LOG_EVENT at %s:%d has %d bytes, fewer than its 13-byte header", r.file, end, len(data))
	}
	onePhase := data[0] != 0
	format := binary.LittleEndian.Uint32(data[1:])
	g, b := binary.LittleEndian.Uint32(data[5:]), binary.LittleEndian.Uint32(data[9:])
	if uint64(len(data)) < 13+uint64(g)+uint64(b) {
		return errorf(ErrDecode, "XA_PREPARE_LOG_EVENT at %s:%d is cut short: its xid needs %d bytes", r.file, end, g+b)
	}
	if onePhase {
		return r.commit(h, end)
	}
	xid := xidKey(data[13:13+g], data[13+g:13+g+b], format)
	pos := position.Position{File: r.file, Offset: uint64(end), GTID: r.tx.gtid}
	if r.prepared == nil {
		r.prepared = make(map[string]*xaPrepared)
	}
	// A replay reads again the PREPARE groups of transactions resolved
	// before Run's start: their XA COMMIT or ROLLBACK follows, also
	// replayed, and removes them again.
	if old, ok := r.prepared[xid]; ok {
		old.tx.reset() // its spill file
	}
	r.prepared[xid] = &xaPrepared{tx: r.tx, start: r.tx.start}
	r.x.log.Debug("XA transaction prepared", "xid", xid, "event_id", pos.String())
	r.tx = txn{lim: r.tx.lim} // the prepared one keeps the spill file
	if !r.replayed(pos) {
		r.x.setLast(pos)
	}
	return nil
}

// xaStatement handles a query event starting with "XA ": START opens a
// transaction (MySQL logs it; MariaDB marks the GTID instead), END is
// left out, COMMIT sends the prepared transaction, ROLLBACK drops it
// (each is a group of its own, which commit ends).
func (r *run) xaStatement(h *replication.EventHeader, q []byte, end uint32) error {
	verb, rest, _ := bytes.Cut(q[len("XA "):], []byte(" "))
	switch strings.ToUpper(string(verb)) {
	case "START", "BEGIN":
		r.tx.open, r.tx.standalone, r.tx.xa = true, false, true
		if r.tx.start.IsZero() { // no GTID event before it
			r.noteStart(h, end)
		}
		return nil
	case "END":
		return nil
	}
	pos := position.Position{File: r.file, Offset: uint64(end), GTID: r.tx.gtid}
	if v := strings.ToUpper(string(verb)); v != "COMMIT" && v != "ROLLBACK" {
		return errorf(ErrDecode, "%.60s at %s:%d is an XA statement the extractor does not know (it knows START, END, COMMIT, ROLLBACK); "+
			"make its effect on every replica by hand, then skip it with trepctl online -from-event %s", q, r.file, end, pos)
	}
	key := xidText(rest)
	p, ok := r.prepared[key]
	rollback := strings.EqualFold(string(verb), "ROLLBACK")
	switch {
	case !ok && (rollback || r.replayed(pos)):
		// Prepared before where this Run reads from: nothing of it was
		// sent, so a rollback has nothing to undo; a replayed commit was
		// sent before the Run.
	case !ok:
		return errorf(ErrDecode, "%.60s at %s:%d ends an XA transaction whose PREPARE the extractor has not read (it precedes "+
			"the position extraction started from, and no stored event says where it is): its changes cannot be sent; "+
			"apply them on every replica by hand, then skip the statement with trepctl online -from-event %s",
			q, r.file, end, pos)
	case rollback:
		delete(r.prepared, key)
		p.tx.reset()
		if !r.replayed(pos) {
			r.x.discarded.Add(1)
		}
	default:
		delete(r.prepared, key)
		gtid, commitUS := r.tx.gtid, r.tx.commitUS // the XA COMMIT's, not the PREPARE's
		r.tx.reset()
		r.tx = p.tx
		r.tx.gtid, r.tx.commitUS = gtid, commitUS
	}
	return r.commit(h, end)
}

// noteStart records where the transaction whose first event (a GTID)
// ends at end begins, for prepared_from.
func (r *run) noteStart(h *replication.EventHeader, end uint32) {
	r.tx.start = position.Position{File: r.file, Offset: uint64(end - h.EventSize)}
}

// preparedFrom is where a restart must read again to rebuild the
// transactions still prepared: the oldest one's start, or "" for none.
func (r *run) preparedFrom() string {
	var oldest position.Position
	for _, p := range r.prepared {
		if oldest.IsZero() || p.start.Compare(oldest) < 0 {
			oldest = p.start
		}
	}
	if oldest.IsZero() {
		return ""
	}
	return oldest.String()
}

// replayed reports whether a transaction ending at pos was sent before
// this Run started (it is read again only to rebuild prepared ones).
func (r *run) replayed(pos position.Position) bool {
	return !r.after.IsZero() && pos.Compare(r.after) <= 0
}

// xidKey spells an xid as the server writes it in XA COMMIT and XA
// ROLLBACK statements, in lower case: x'gtrid',x'bqual',formatID.
func xidKey(gtrid, bqual []byte, format uint32) string {
	return "x'" + hex.EncodeToString(gtrid) + "',x'" + hex.EncodeToString(bqual) + "'," + strconv.FormatUint(uint64(format), 10)
}

// xidText normalizes the xid of a logged XA COMMIT or ROLLBACK to
// xidKey's spelling.
func xidText(s []byte) string {
	t := strings.ToLower(strings.TrimSpace(string(s)))
	t = strings.TrimSuffix(t, "one phase")
	return strings.ReplaceAll(t, " ", "")
}
