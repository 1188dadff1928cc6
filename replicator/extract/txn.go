package extract

import (
	"log/slog"
	"strconv"

	"github.com/carbidedb/carbide/internal/position"
	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

// multiShard is the shard of a transaction that writes several schemas.
const multiShard = "#multi"

// memOverhead is about what a decoded row or value costs in memory beyond
// its data: its message, its oneof wrapper, the pointer to it.
const memOverhead = 64

// txnLimits is what a txn keeps across reset: how it cuts fragments and
// when it moves them out of memory.
type txnLimits struct {
	maxRows, maxBytes int
	// spillBytes bounds the weight (see txn.weight) of the completed
	// fragments held in memory: past it they go to a spill file. Zero
	// never spills.
	spillBytes   int
	spillDir     string
	spillPattern string // os.CreateTemp's pattern of spill file names
	log          *slog.Logger
}

// txn accumulates one transaction's changes, already cut into fragments
// of at most maxRows rows and maxBytes bytes of values. Completed
// fragments beyond lim.spillBytes wait in a spill file (spill.go).
type txn struct {
	lim txnLimits

	open       bool              // a GTID (MariaDB) or BEGIN started it; its end is pending
	standalone bool              // MariaDB FL_STANDALONE: the next statement is the whole transaction
	gtid       string            // of the current or next transaction
	commitUS   int64             // MySQL original_commit_timestamp, when the GTID event has it
	start      position.Position // where its first event begins (XA prepared_from)
	xa         bool              // an XA transaction's PREPARE group

	// frags are the fragments held in memory, cur the last of them; the
	// spilled ones, which come first, are in file.
	frags  []*thlpb.Event
	cur    *thlpb.Event     // fragment being filled
	rc     *thlpb.RowChange // RowChange rows are appended to; nil after a statement
	rcInfo *tableInfo
	rows   int // rows (statements count as one) in cur
	bytes  int // bytes of values in cur
	// weight estimates the memory cur takes: its bytes plus memOverhead
	// for every row and value, which cost that much decoded whatever
	// their size (a NULL counts as one byte in bytes).
	weight  int
	held    int        // weight of the completed fragments in frags
	file    *spillFile // nil until the transaction first spills
	spilled int        // fragments in file

	shard     string
	haveShard bool
	multi     bool
	drop      string // why loop prevention drops it; "" keeps it
	// err is why a row change could not be decoded: returned at the end
	// unless the transaction turns out to be dropped (applied elsewhere).
	err       error
	heartbeat bool
	heartName string
	// applied is what the tracking rows an applier's transaction writes
	// say of their services (after.go), by service.
	applied map[string]*thlpb.After
}

// reset forgets everything but the limits, and removes the spill file.
func (t *txn) reset() {
	if t.file != nil {
		t.file.remove(t.lim.log)
	}
	*t = txn{lim: t.lim}
}

// empty reports whether no change has been added.
func (t *txn) empty() bool { return len(t.frags) == 0 && t.spilled == 0 }

// fits reports whether a change of size bytes fits into the current
// fragment; a fragment always takes its first change.
func (t *txn) fits(size int) bool {
	return t.cur != nil && (t.rows == 0 || t.rows+1 <= t.lim.maxRows && t.bytes+size <= t.lim.maxBytes)
}

// newFragment completes cur and starts the next fragment, first moving
// the completed ones to the spill file when they weigh more than the
// bound: memory then holds at most about spillBytes plus one fragment.
func (t *txn) newFragment() {
	if t.cur != nil {
		t.held += t.weight
		if t.lim.spillBytes > 0 && t.held > t.lim.spillBytes {
			t.spill()
		}
	}
	t.cur = &thlpb.Event{}
	t.frags = append(t.frags, t.cur)
	t.rc, t.rcInfo = nil, nil
	t.rows, t.bytes, t.weight = 0, 0, 0
}

func (t *txn) noteSchema(s string) {
	if s == "" {
		return
	}
	switch {
	case !t.haveShard:
		t.shard, t.haveShard = s, true
	case s != t.shard:
		t.multi = true
	}
}

// addRows appends the rows of one Rows event of table ti, whole: a
// fragment never splits a Rows event, so the source's events (tableMap,
// event) stay with their rows. Rows of consecutive Rows events of the
// same table, action and checks share one RowChange within a fragment.
func (t *txn) addRows(ti *tableInfo, action thlpb.RowChange_Action, rows []*thlpb.Row, size int, tableMap, event []byte, noFK bool) {
	size += len(event)
	if !t.fitsRows(len(rows), size) {
		t.newFragment()
	}
	if t.rc == nil || t.rcInfo != ti || t.rc.Action != action || t.rc.NoForeignKeyChecks != noFK {
		t.rc = &thlpb.RowChange{Schema: ti.schema, Table: ti.table, Action: action, Columns: ti.columns, NoForeignKeyChecks: noFK}
		t.rc.Binlog = append(make([]byte, 0, len(tableMap)+len(event)), tableMap...)
		t.rcInfo = ti
		t.cur.Changes = append(t.cur.Changes, &thlpb.Change{Change: &thlpb.Change_Rows{Rows: t.rc}})
		t.noteSchema(ti.schema)
		size += len(tableMap)
	}
	t.rc.Binlog = append(t.rc.Binlog, event...)
	t.rc.Rows = append(t.rc.Rows, rows...)
	t.rows += len(rows)
	t.bytes += size
	if len(rows) > 0 {
		t.weight += size + memOverhead*len(rows)*(1+len(rows[0].GetBefore())+len(rows[0].GetAfter()))
	}
}

// fitsRows reports whether n rows of size bytes fit into the current
// fragment; a fragment always takes its first change.
func (t *txn) fitsRows(n, size int) bool {
	return t.cur != nil && (t.rows == 0 || t.rows+n <= t.lim.maxRows && t.bytes+size <= t.lim.maxBytes)
}

// addStatement appends a statement.
func (t *txn) addStatement(st *thlpb.Statement) {
	size := len(st.Sql)
	if !t.fits(size) {
		t.newFragment()
	}
	t.cur.Changes = append(t.cur.Changes, &thlpb.Change{Change: &thlpb.Change_Statement{Statement: st}})
	t.rc, t.rcInfo = nil, nil
	t.rows++
	t.bytes += size
	t.weight += size + memOverhead
	t.noteSchema(st.Schema)
}

// eventID is pos.String() in one allocation: "file:%016d[;gtid]".
func eventID(pos position.Position) string {
	b := make([]byte, 0, len(pos.File)+18+len(pos.GTID))
	b = append(b, pos.File...)
	b = append(b, ':')
	var num [20]byte
	d := strconv.AppendUint(num[:0], pos.Offset, 10)
	for range 16 - len(d) {
		b = append(b, '0')
	}
	b = append(b, d...)
	if pos.GTID != "" {
		b = append(b, ';')
		b = append(b, pos.GTID...)
	}
	return string(b)
}

// mariadbGTID formats domain-server-sequence.
func mariadbGTID(domain, server uint32, seq uint64) string {
	var b [32]byte
	s := strconv.AppendUint(b[:0], uint64(domain), 10)
	s = append(s, '-')
	s = strconv.AppendUint(s, uint64(server), 10)
	s = append(s, '-')
	s = strconv.AppendUint(s, seq, 10)
	return string(s)
}
