package extract

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/carbidedb/carbide/internal/position"
	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

// maxCachedTables bounds the table-id cache: ids grow with every DDL and
// table cache eviction, so old ones are dropped wholesale now and then.
const maxCachedTables = 4096

// run is the state of one Run: the binlog file being read, the
// transaction being assembled, and caches.
type run struct {
	x      *Extractor
	flavor string
	coll   collations
	tables *tables
	send   func([]*thlpb.Event) error

	file    string // binlog file of the events being read
	lastPos uint32 // end of the last event read, for error messages
	tx      txn
	arena   arena

	// crc: the events of the current file end in a CRC32 checksum.
	crc bool
	// stmtCtx holds what the events before a statement said of its
	// session (stmtctx.go), for that statement.
	stmtCtx map[string]string
	// maps holds the last Table_map event of each table id, as
	// sourceEvent returns it, for the RowChange's binlog.
	maps     map[uint64][]byte
	prepared map[string]*xaPrepared // XA transactions awaiting XA COMMIT, by xid
	after    position.Position      // sent before this Run: replay up to here (xa.go)
	// applied is how far each other stream had been applied into the
	// database as of the event being read (after.go).
	applied appliedVector
}

// handle consumes one binlog event; end is its end offset in r.file (the
// enclosing event's for events inside a MySQL transaction payload).
func (r *run) handle(ctx context.Context, ev *replication.BinlogEvent, end uint32) error {
	if end != 0 {
		r.lastPos = end
	}
	switch e := ev.Event.(type) {
	case *replication.RotateEvent:
		// The first event of every dump is an artificial rotate naming the
		// file; a real one at the end of a file names the next.
		r.file = string(e.NextLogName)
		r.lastPos = uint32(e.Position)
	case *replication.FormatDescriptionEvent:
		// Starts every file. A transaction still open here was cut off by a
		// server crash and rolled back by its recovery.
		if r.tx.open {
			r.discard("binlog file restarted (server crash?) inside the transaction")
			r.tx.reset()
		}
		r.crc = e.ChecksumAlgorithm == replication.BINLOG_CHECKSUM_ALG_CRC32
	case *replication.TableMapEvent:
		if r.maps == nil || len(r.maps) > maxCachedTables {
			r.maps = map[uint64][]byte{}
		}
		r.maps[e.TableID] = r.sourceEvent(ev.RawData)
	case *replication.MariadbGTIDEvent:
		if r.tx.open {
			r.discard("a new transaction began before its end")
		}
		r.tx.reset()
		r.tx.gtid = mariadbGTID(e.GTID.DomainID, e.GTID.ServerID, e.GTID.SequenceNumber)
		r.tx.open = true
		r.tx.standalone = e.IsStandalone()
		r.tx.xa = e.Flags&flPreparedXA != 0
		r.noteStart(ev.Header, end)
	case *replication.GtidTaggedLogEvent:
		r.mysqlGTID(&e.GTIDEvent)
		r.noteStart(ev.Header, end)
	case *replication.GTIDEvent:
		r.mysqlGTID(e)
		r.noteStart(ev.Header, end)
	case *replication.QueryEvent:
		return r.query(ev.Header, e, end)
	case *replication.RowsEvent:
		return r.rows(ctx, e, ev.RawData)
	case *replication.XIDEvent:
		return r.commit(ev.Header, end)
	case *replication.IntVarEvent:
		r.intVar(e)
	case *replication.GenericEvent:
		if ev.Header.EventType == replication.XA_PREPARE_LOG_EVENT {
			return r.xaPrepare(ev.Header, e.Data, end)
		}
		return r.statementContext(ev.Header, e.Data)
	case *replication.BeginLoadQueryEvent, *replication.ExecuteLoadQueryEvent:
		return errorf(ErrDecode, "LOAD DATA at %s:%d was logged as a statement (a session with binlog_format=STATEMENT or MIXED), "+
			"whose file the extractor cannot carry; load with SET SESSION binlog_format=ROW, then skip this transaction (trepctl online -from-event after it)", r.file, end)
	case *replication.TransactionPayloadEvent: // MySQL binlog_transaction_compression
		for _, inner := range e.Events {
			if err := r.handle(ctx, inner, end); err != nil {
				return err
			}
		}
	default:
		// Heartbeats, GTID lists, checkpoints, annotations and
		// previous-GTIDs carry nothing to extract.
	}
	return nil
}

// mysqlGTID notes a MySQL GTID: the transaction starts at BEGIN, or is
// the one statement that follows (DDL).
func (r *run) mysqlGTID(e *replication.GTIDEvent) {
	if r.tx.open {
		r.discard("a new transaction began before its end")
	}
	r.tx.reset()
	if len(e.SID) == 16 && e.GNO > 0 { // anonymous GTIDs have GNO 0
		var b strings.Builder
		h := hex.EncodeToString(e.SID)
		b.WriteString(h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32] + ":")
		if e.Tag != "" {
			b.WriteString(e.Tag + ":")
		}
		b.WriteString(strconv.FormatInt(e.GNO, 10))
		r.tx.gtid = b.String()
	}
	if e.OriginalCommitTimestamp != 0 {
		r.tx.commitUS = int64(e.OriginalCommitTimestamp)
	}
}

// query handles a query event: BEGIN/COMMIT/ROLLBACK delimit transactions
// (MySQL, and non-transactional tables on MariaDB); anything else is a
// statement, inside the open transaction or a transaction of its own.
func (r *run) query(h *replication.EventHeader, e *replication.QueryEvent, end uint32) error {
	q := bytes.TrimSpace(e.Query)
	switch {
	case bytes.EqualFold(q, []byte("BEGIN")):
		if r.tx.open && !r.tx.empty() {
			r.discard("BEGIN inside an open transaction")
			r.tx.reset()
		}
		r.tx.open, r.tx.standalone = true, false
		r.appliedThread(e)
		return nil
	case bytes.EqualFold(q, []byte("COMMIT")):
		r.appliedThread(e)
		return r.commit(h, end)
	case bytes.EqualFold(q, []byte("ROLLBACK")):
		// Only a transaction that also changed non-transactional tables is
		// logged with ROLLBACK; replaying it would apply its transactional
		// changes, which the source rolled back.
		r.discard("the source rolled it back (it mixed transactional and non-transactional tables)")
		r.tx.reset()
		return nil
	}
	switch {
	case hasPrefixFold(q, "SAVEPOINT"), hasPrefixFold(q, "ROLLBACK TO"), hasPrefixFold(q, "RELEASE SAVEPOINT"):
		// The server already cut rolled-back transactional rows out of the
		// transaction; an applier replaying rows has no use for savepoints.
		return nil
	case hasPrefixFold(q, "XA "):
		return r.xaStatement(h, q, end)
	}
	r.tables.invalidate()              // DDL may have changed any table
	defer func() { r.stmtCtx = nil }() // it was this statement's
	sqlText := string(e.Query)
	schema := string(e.Schema)
	if svc, ok := Origin(sqlText); ok {
		r.tx.drop = "origin=" + svc
	} else if e.SlaveProxyID == OriginThreadID {
		r.tx.drop = "origin thread id"
	} else if strings.HasPrefix(schema, r.x.cfg.LoopSchemaPrefix) {
		r.tx.drop = "statement in schema " + schema
	}
	if r.tx.drop == "" {
		st := &thlpb.Statement{
			Schema:    schema,
			Sql:       hidePasswords(sqlText),
			Session:   sessionVars(e.StatusVars, r.flavor, r.coll),
			Timestamp: int64(h.Timestamp),
		}
		for k, v := range r.stmtCtx {
			st.Session[k] = v
		}
		if e.ErrorCode != 0 {
			st.Session[SessionErrorCode] = strconv.Itoa(int(e.ErrorCode))
		}
		if sch, table, ok := createdTable(sqlText); ok {
			if sch == "" {
				sch = schema
			}
			if engine := r.x.engineOf(sch, table); engine != "" {
				st.Session[SessionEngine] = engine
			}
		}
		if createsOrDropsDatabase(sqlText) {
			// The server logs CREATE/DROP DATABASE with the database itself
			// as default schema (for binlog-do-db), which an applier cannot
			// USE before it exists: run it without one.
			st.Schema = ""
		}
		r.tx.addStatement(st)
		r.tx.noteSchema(schema)
	}
	if !r.tx.open || r.tx.standalone {
		return r.commit(h, end)
	}
	return nil
}

// rowsNoForeignKeyChecks is the Rows event flag of a source session
// with foreign_key_checks=0.
const rowsNoForeignKeyChecks = 0x02

// appliedThread marks the transaction as applied by a replicator when the
// BEGIN or COMMIT of its group ran with the applier's pseudo thread id:
// rows of non-transactional tables leave the applier's transaction as a
// group of their own, without its tracking write.
func (r *run) appliedThread(e *replication.QueryEvent) {
	if e.SlaveProxyID == OriginThreadID && r.tx.drop == "" {
		r.tx.drop = "origin thread id"
	}
}

// rows converts a rows event into the transaction's row changes. A change
// it cannot decode stops the extractor only at the transaction's end, and
// only if loop prevention does not drop the transaction by then: what a
// replicator applied is never extracted, whatever its rows are. raw is
// the event as read.
func (r *run) rows(ctx context.Context, e *replication.RowsEvent, raw []byte) error {
	if e.Table == nil {
		return errorf(ErrDecode, "rows event at %s:%d has no table map", r.file, r.lastPos)
	}
	if !r.tx.xa && r.replayed(position.Position{File: r.file, Offset: uint64(r.lastPos)}) {
		return nil // sent before this Run; read again for XA only
	}
	if !r.tx.open { // rows outside BEGIN … COMMIT: take them as a transaction
		r.tx.open = true
	}
	if r.tables.loopOf(e.Table.Schema, e.Table.Table) == loopTracking {
		r.tx.noteTracking(e, r.x.cfg.LoopSchemaPrefix, r.x.cfg.Service)
		if r.tx.drop == "" {
			r.tx.drop = string(e.Table.Schema) + "." + string(e.Table.Table)
		}
		return nil
	}
	if r.tx.drop != "" {
		return nil // dropped whole at its end: skip the conversion
	}
	if r.tx.err != nil {
		return nil // fails at its end, unless a tracking write follows
	}
	if err := r.convertRows(ctx, e, raw); err != nil {
		r.tx.err = err
	}
	return nil
}

func (r *run) convertRows(ctx context.Context, e *replication.RowsEvent, raw []byte) error {
	if len(r.tables.byID) > maxCachedTables {
		clear(r.tables.byID)
	}
	ti, err := r.tables.get(ctx, e.Table)
	if err != nil {
		return err
	}
	if ti.loop == loopOwnHeartbeat {
		r.tx.heartbeat = true
	}
	for _, skipped := range e.SkippedColumns {
		if len(skipped) > 0 {
			return errorf(ErrDecode, "rows event of %s.%s at %s:%d lacks columns %v: binlog_row_image is not FULL; set binlog-row-image=FULL in my.cnf and restart the database",
				ti.schema, ti.table, r.file, r.lastPos, skipped)
		}
	}
	action := rowsAction(e)
	step := 1
	if action == thlpb.RowChange_UPDATE {
		step = 2
	}
	rows := make([]*thlpb.Row, 0, len(e.Rows)/step)
	total := 0
	// A large event's values do not share chunks with the values before
	// or after it.
	r.arena.fresh(len(raw))
	defer r.arena.fresh(0)
	for i := 0; i+step <= len(e.Rows); i += step {
		row := r.arena.rows.next()
		img, size, err := r.arena.convert(ti, e.Rows[i])
		if err != nil {
			return err
		}
		switch action {
		case thlpb.RowChange_INSERT:
			row.After = img
		case thlpb.RowChange_DELETE:
			row.Before = img
		default:
			after, n, err := r.arena.convert(ti, e.Rows[i+1])
			if err != nil {
				return err
			}
			row.Before, row.After = img, after
			size += n
		}
		if ti.loop == loopOwnHeartbeat && ti.nameCol >= 0 {
			img := row.After
			if img == nil {
				img = row.Before
			}
			r.tx.heartName = heartbeatName(img[ti.nameCol])
		}
		rows = append(rows, row)
		total += size
	}
	tableMap, ok := r.maps[e.TableID]
	if !ok {
		return errorf(ErrDecode, "rows event of %s.%s at %s:%d follows no table map event of its table id %d", ti.schema, ti.table, r.file, r.lastPos, e.TableID)
	}
	r.tx.addRows(ti, action, rows, total, tableMap, r.sourceEvent(raw), e.Flags&rowsNoForeignKeyChecks != 0)
	return nil
}

// sourceEvent returns a copy of the binlog event raw without its checksum
// (its length field adjusted), as a BINLOG statement takes it after a
// format description that announces no checksums.
func (r *run) sourceEvent(raw []byte) []byte {
	n := len(raw)
	if r.crc && n >= replication.EventHeaderSize+replication.BinlogChecksumLength {
		n -= replication.BinlogChecksumLength
	}
	ev := make([]byte, n)
	copy(ev, raw)
	if n >= replication.EventHeaderSize {
		binary.LittleEndian.PutUint32(ev[9:13], uint32(n))
	}
	return ev
}

func hasPrefixFold(s []byte, prefix string) bool {
	return len(s) >= len(prefix) && bytes.EqualFold(s[:len(prefix)], []byte(prefix))
}

// createsOrDropsDatabase reports whether sql is CREATE or DROP DATABASE
// (or SCHEMA), after any leading comments.
func createsOrDropsDatabase(sql string) bool {
	f := strings.Fields(skipComments(sql))
	return len(f) >= 2 && (strings.EqualFold(f[0], "CREATE") || strings.EqualFold(f[0], "DROP")) &&
		(strings.EqualFold(f[1], "DATABASE") || strings.EqualFold(f[1], "SCHEMA"))
}

// skipComments returns sql without leading white space and /* */ comments.
func skipComments(sql string) string {
	for {
		sql = strings.TrimLeft(sql, " \t\r\n")
		if !strings.HasPrefix(sql, "/*") {
			return sql
		}
		end := strings.Index(sql[2:], "*/")
		if end < 0 {
			return sql
		}
		sql = sql[2+end+2:]
	}
}

func heartbeatName(v *thlpb.Value) string {
	switch x := v.GetValue().(type) {
	case *thlpb.Value_Bytes:
		return string(x.Bytes)
	case *thlpb.Value_Text:
		return x.Text
	}
	return ""
}

// commit ends the open transaction at end (offset in r.file): sends it,
// or counts it as filtered.
func (r *run) commit(h *replication.EventHeader, end uint32) error {
	tx := &r.tx
	pos := position.Position{File: r.file, Offset: uint64(end), GTID: tx.gtid}
	defer tx.reset()
	if r.replayed(pos) {
		return nil
	}
	switch {
	case tx.drop != "":
		r.applied = r.applied.with(tx.applied)
		r.x.setLast(pos)
		r.x.filtered.Add(1)
		r.x.log.Debug("transaction filtered", "event_id", pos.String(), "reason", tx.drop)
		if r.x.cfg.OnFilter != nil {
			r.x.cfg.OnFilter(Filtered{Pos: pos, Reason: tx.drop})
		}
		return nil
	case tx.err != nil:
		return tx.err
	case tx.empty():
		r.x.setLast(pos)
		return nil
	}
	if tx.heartbeat && tx.heartName == "" {
		tx.heartName = "heartbeat"
	}
	commitUS := tx.commitUS
	if commitUS == 0 {
		commitUS = int64(h.Timestamp) * 1e6
	}
	spilled := tx.spilled
	n, err := tx.finish(stamp{pos: pos, sourceID: r.x.cfg.SourceID, service: r.x.cfg.Service, preparedFrom: r.preparedFrom(),
		commitUS: commitUS, extractUS: r.x.cfg.Clock().UnixMicro(), after: r.applied}, r.send)
	switch {
	case errors.Is(err, ErrSpill):
		return err
	case err != nil:
		return fmt.Errorf("extract: send transaction %s: %w", pos, err)
	}
	// Only once it is sent (stored): Flush relies on it.
	r.x.setLast(pos)
	r.x.transactions.Add(1)
	r.x.fragments.Add(uint64(n))
	if tx.heartbeat {
		r.x.heartbeats.Add(1)
	}
	if spilled > 0 {
		r.x.spilled.Add(1)
		r.x.log.Info("large transaction sent in parts from its spill file", "event_id", pos.String(), "fragments", n, "spilled", spilled)
	}
	return nil
}

// close removes what the transactions still open hold on disk: the
// spill files of the one being read and of the XA transactions prepared.
// Run calls it as it returns.
func (r *run) close() {
	r.tx.reset()
	for _, p := range r.prepared {
		p.tx.reset()
	}
}

// discard drops the open transaction, which never completed.
func (r *run) discard(why string) {
	if r.tx.empty() && r.tx.drop == "" && r.tx.err == nil {
		return
	}
	r.x.discarded.Add(1)
	r.x.log.Warn("incomplete transaction discarded", "gtid", r.tx.gtid, "file", r.file, "pos", r.lastPos, "reason", why)
}
