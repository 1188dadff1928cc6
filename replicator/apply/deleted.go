package apply

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"slices"
	"strconv"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

// A change of another site's row is a conflict when that site changed the
// row after what the change's source had applied of it: the two crossed.
// Comparing values finds most crossings, not all. An INSERT finds its key
// free where the other site deleted the row: east deletes row 1 while
// west deletes it and inserts it again; east's hosts meet west's INSERT
// of a free key, which would bring the row back there only. And values
// agree by chance: east and west both set v='a', then west sets v='b';
// east's hosts meet west's second UPDATE with its before-image 'a' equal
// to east's row and would apply it, while west's hosts meet east's UPDATE
// over 'b' (a conflict east wins: 'a'). Counters, flags and states go
// through equal values all the time. So a row change whose row the other
// site changed concurrently is a conflict (KindDeleted for an INSERT of a
// free key, KindConcurrent otherwise), resolved by the policy like any
// other: under converge, the losing site's change is not applied on any
// host, whatever the values.
//
// The other site's changes are read from its THL on this host (Config.
// Deleted: every host holds every site's stream, in one of its
// replicators), after the seqno the change's transaction names for that
// site in Event.after. Only the changes the policy might not apply are
// asked about (not those of log, nor of converge's winning site). Most
// blocks need not ask: every applier marks, in tungsten_<service>.changes,
// the last seqno that changed rows of each table, in the transaction that
// applies it; a host that has applied no change of the block's tables
// after what the source had applied of that site skips the question. A
// site's primary, whose clients write without an applier, always asks.

// KindDeleted is an INSERT whose key another site deleted after what its
// source had applied of that site.
const KindDeleted = "row deleted"

// KindConcurrent is an UPDATE or DELETE of a row that holds its
// before-image, which another site changed after what the change's source
// had applied of that site (equal values by chance): the changes crossed.
const KindConcurrent = "row crossed"

// DeletedQuery asks whether the transactions of a service after seqno
// After, up to UpTo, changed (inserted, updated or deleted) the row of
// Schema.Table whose key is Key (RowKey). UpTo is what the asking database
// applied of that service: a row's state here then depends on the
// transactions applied only, not on how far the other THL has grown, so
// hosts that applied the same agree (cluster check compares them so).
// 0: all that THL holds (on that service's primary, whose clients write
// here).
type DeletedQuery struct {
	After, UpTo   uint64
	Schema, Table string
	Key           string
	// Insert: the row is an INSERT's, whose key is free here only if the
	// other site deleted it; only deletes of its table call for asking
	// (mustAsk). Not sent.
	Insert bool
	// Unique: Key is the values of these columns (UniqueKey), a unique
	// key of the table other than its primary key, and the question is
	// whether a change left one of its rows holding them (an INSERT, an
	// UPDATE: ChangedUniqueKeys).
	Unique []string
	// AfterOf: the question is instead what the first transaction after
	// After (up to UpTo) that deleted the row Key names (a RowKey) had
	// applied of service AfterOf (its Event.after): PositionsFunc.
	AfterOf string
}

// DeletedFunc answers queries about service svc, one bool per query.
type DeletedFunc func(ctx context.Context, svc string, queries []DeletedQuery) ([]bool, error)

// PositionsFunc answers queries with AfterOf about service svc: for each,
// one more than the position asked (0: no such transaction; 1: it had
// applied none of AfterOf).
type PositionsFunc func(ctx context.Context, svc string, queries []DeletedQuery) ([]uint64, error)

// RowKey renders a row image's key (the columns the source marked as its
// primary key) so that the same key renders the same in every process;
// ok is false when the source marked none.
func RowKey(rc *thlpb.RowChange, img []*thlpb.Value) (string, bool) {
	var b []byte
	n := 0
	for i, c := range rc.GetColumns() {
		if !c.GetKey() {
			continue
		}
		if i >= len(img) {
			return "", false
		}
		var ok bool
		if b, ok = appendKeyValue(b, img[i]); !ok {
			return "", false
		}
		n++
	}
	if n == 0 {
		return "", false
	}
	return hex.EncodeToString(b), true
}

// appendKeyValue appends v to a key (RowKey, UniqueKey) as every process
// renders it: its deterministic encoding after a two-byte length.
func appendKeyValue(b []byte, v *thlpb.Value) ([]byte, bool) {
	enc, err := proto.MarshalOptions{Deterministic: true}.Marshal(v)
	if err != nil {
		return b, false
	}
	b = append(b, byte(len(enc)>>8), byte(len(enc)))
	return append(b, enc...), true
}

// ChangedRowKeys returns the keys (RowKey) of the rows rc changes
// (rowKeys), in order.
func ChangedRowKeys(rc *thlpb.RowChange) []string {
	var out []string
	for _, row := range rc.GetRows() {
		keys, n := rowKeys(rc, row)
		out = append(out, keys[:n]...)
	}
	return out
}

// DeletedRowKeys returns, for the rows rc deletes (a DELETE's), their
// keys as deleted (DeletedKey), in order.
func DeletedRowKeys(rc *thlpb.RowChange) []string {
	if rc.GetAction() != thlpb.RowChange_DELETE {
		return nil
	}
	var out []string
	for _, row := range rc.GetRows() {
		if k, ok := RowKey(rc, row.GetBefore()); ok {
			out = append(out, DeletedKey(k))
		}
	}
	return out
}

// DeletedKey is key (RowKey) as the concurrent-change check's index holds
// it for a row deleted, beside the key itself (changed): a question about
// it asks whether the row was deleted, not only changed. No RowKey or
// UniqueKey begins with '-'.
func DeletedKey(key string) string { return "-" + key }

// ReinsertedKey is key (RowKey) as the index holds it for a row deleted
// and, after that, inserted again (an INSERT's, or an UPDATE's new key),
// at the seqno of the DELETE: a question about it asks whether the row
// was deleted after the question's seqno and is back since. No RowKey,
// UniqueKey or DeletedKey begins with '+'.
func ReinsertedKey(key string) string { return "+" + key }

// MadeRowKeys returns the keys (RowKey) of the rows rc makes: an INSERT's
// rows, an UPDATE's rows after it.
func MadeRowKeys(rc *thlpb.RowChange) []string {
	if rc.GetAction() == thlpb.RowChange_DELETE {
		return nil
	}
	var out []string
	for _, row := range rc.GetRows() {
		if k, ok := RowKey(rc, row.GetAfter()); ok {
			out = append(out, k)
		}
	}
	return out
}

// rowKeys returns the keys (RowKey) a row of rc changes: an INSERT's new
// row, a DELETE's old one, an UPDATE's row before and, where it changes
// its key, after; n of them.
func rowKeys(rc *thlpb.RowChange, row *thlpb.Row) (keys [2]string, n int) {
	if rc.GetAction() != thlpb.RowChange_INSERT {
		if k, ok := RowKey(rc, row.GetBefore()); ok {
			keys[n], n = k, n+1
		}
	}
	if rc.GetAction() != thlpb.RowChange_DELETE {
		if k, ok := RowKey(rc, row.GetAfter()); ok && (n == 0 || k != keys[0]) {
			keys[n], n = k, n+1
		}
	}
	return keys, n
}

// TableRowKey names a row (RowKey) of a table in the service's index of
// changed rows.
func TableRowKey(schema, table, key string) string { return schema + "\x00" + table + "\x00" + key }

// noteRows records, in blk, the rows of ev to ask about at the block's
// commit.
func (a *Applier) noteRows(ctx context.Context, blk *block, ev *thlpb.Event) {
	origin := originSite(ev, a.cfg.Service)
	for _, c := range ev.GetChanges() {
		if rc := c.GetRows(); rc != nil {
			// Whichever site wins (fkcrossed.go).
			blk.questions = a.appendParentQueries(ctx, blk.questions, ev, origin, rc)
		}
	}
	if !a.asks(ev, origin) {
		return
	}
	for _, c := range ev.GetChanges() {
		if rc := c.GetRows(); rc != nil {
			sets := a.uniqueSets(ctx, rc)
			for _, row := range rc.GetRows() {
				blk.questions = appendRowQueries(blk.questions, ev, origin, rc, row)
				blk.questions = appendUniqueQueries(blk.questions, ev, origin, rc, row, sets, rc.GetAction() == thlpb.RowChange_INSERT)
			}
		}
	}
}

// asks says whether ev's rows are asked about: this applier checks
// changes, ev names what its source had applied of other sites, and the
// policy might not apply a change from origin over a concurrent one.
func (a *Applier) asks(ev *thlpb.Event, origin string) bool {
	return a.checksChanges() && len(ev.GetAfter()) > 0 && !a.appliesAnyway(origin)
}

// appendRowQueries adds to qs, by site, the questions about a changed row
// from origin: for each other site ev's source had applied some of
// (Event.after), whether that site changed the row after that (its keys,
// rowKeys).
func appendRowQueries(qs map[string][]DeletedQuery, ev *thlpb.Event, origin string, rc *thlpb.RowChange, row *thlpb.Row) map[string][]DeletedQuery {
	keys, n := rowKeys(rc, row)
	insert := rc.GetAction() == thlpb.RowChange_INSERT
	for _, k := range keys[:n] {
		qs = appendAsked(qs, ev, origin, DeletedQuery{Schema: rc.GetSchema(), Table: rc.GetTable(), Key: k, Insert: insert})
	}
	return qs
}

// appendAsked adds q to qs for each site other than origin that ev's
// source had applied some of (Event.after), asked after that seqno.
func appendAsked(qs map[string][]DeletedQuery, ev *thlpb.Event, origin string, q DeletedQuery) map[string][]DeletedQuery {
	for _, dep := range ev.GetAfter() {
		svc := dep.GetService()
		if svc == origin {
			continue
		}
		if qs == nil {
			qs = map[string][]DeletedQuery{}
		}
		q.After = dep.GetSeqno()
		qs[svc] = append(qs[svc], q)
	}
	return qs
}

// concurrentChanges asks, once per other site and block, whether that
// site changed any row the block changes concurrently. It runs on conn
// with the block's statements executed and not committed: every change
// committed here before the block took its rows' locks is in that site's
// THL on this host (its master's answer waits for its extractor), and
// none can come after. Nothing is asked of a site none of whose changes
// of these tables this database applied after what the sources had
// (mustAsk); a site whose changes cannot be read here is left unchecked,
// with a warning. Workers of the parallel pool call it at once.
func (a *Applier) concurrentChanges(ctx context.Context, conn *sql.Conn, queries map[string][]DeletedQuery) (bool, error) {
	for svc, qs := range queries {
		ask, upTo, err := a.mustAsk(ctx, conn, svc, qs)
		if err != nil {
			return false, err
		}
		if !ask {
			continue
		}
		for i := range qs {
			qs[i].UpTo = upTo
		}
		del, err := a.askDeleted(ctx, svc, qs)
		if err != nil {
			return false, err
		}
		if slices.Contains(del, true) {
			return true, nil
		}
	}
	return false, nil
}

// changedConcurrently says whether another site changed conflict mode's
// row (under lock: its key found free for an INSERT, holding its
// before-image otherwise) after what the source had applied of it.
func (a *Applier) changedConcurrently(ctx context.Context, ev *thlpb.Event, rc *thlpb.RowChange, row *thlpb.Row) (bool, error) {
	origin := originSite(ev, a.cfg.Service)
	if !a.asks(ev, origin) {
		return false, nil
	}
	qs := appendRowQueries(nil, ev, origin, rc, row)
	if len(qs) == 0 {
		return false, nil
	}
	return a.concurrentChanges(ctx, a.conn, qs)
}

// appliesAnyway says whether the policy applies a change from origin over
// another site's concurrent change (log; converge when origin wins): the
// answer would change nothing, so nothing is asked, and that conflict is
// recorded only where the other site's change meets the row.
func (a *Applier) appliesAnyway(origin string) bool {
	over, _, err := a.rule.overwrite(origin)
	return err == nil && over
}

// mustAsk says whether svc's replicator must be asked about qs: unless
// this database is svc's primary, not if it applied nothing of svc after
// what the sources had, nor any change of the queried tables since then
// (a delete, for a table asked about for INSERTs only; svc's applier
// marks them in tungsten_<svc>.changes, from the seqno of its row of
// empty names on). Read on conn, in the block's transaction (READ
// COMMITTED: the latest commits); anything unreadable asks. upTo is the
// seqno of svc applied here, to ask up to (0: all, on svc's primary).
func (a *Applier) mustAsk(ctx context.Context, conn *sql.Conn, svc string, qs []DeletedQuery) (ask bool, upTo uint64, err error) {
	least := leastAfter(qs)
	schema := string(quoteIdent(nil, TrackingSchema(svc)))
	q := []byte("SELECT t.seqno, @@read_only, ")
	q = appendSince(q, schema)
	q = append(q, ", "...)
	q = appendMarked(q, schema, qs)
	q = append(q, " FROM "+schema+".trep_commit_seqno t WHERE t.task_id = 0"...)
	var applied, since, marked int64
	var readOnly int
	err = conn.QueryRowContext(ctx, string(q)).Scan(&applied, &readOnly, &since, &marked)
	switch {
	case ctx.Err() != nil:
		return false, 0, ctx.Err()
	case err != nil:
		return true, 0, nil // no tracking row or marks of svc here: ask
	case svc == a.cfg.Site && readOnly == 0:
		return true, 0, nil // its primary: clients write here
	case applied <= int64(least):
		return false, 0, nil // nothing of svc after what the sources had
	}
	return since > int64(least) || marked > int64(least), uint64(applied), nil
}

// leastAfter is the least of qs's causal positions: what every source
// of the block had applied of the site asked.
func leastAfter(qs []DeletedQuery) uint64 {
	least := qs[0].After
	for _, q := range qs {
		least = min(least, q.After)
	}
	return least
}

// sendAsking sends s, a block with questions for other sites (none: a
// plain send). A compound s ends with the ask guard, and ask reports
// whether it signalled: the block's changes made and locked, not
// committed, the question to be asked. A script that is not compound
// always asks.
func (a *Applier) sendAsking(ctx context.Context, conn *sql.Conn, s script, questions map[string][]DeletedQuery) (ask bool, err error) {
	ask = len(questions) > 0
	if ask && s.compound {
		s.askGuard = a.askGuard(questions)
	}
	err = a.send(ctx, conn, s)
	if ask && s.compound {
		if ask = isAskSignal(err); ask {
			err = nil
		} else if err == nil {
			a.guardsPassed.Add(1)
		}
	}
	return ask, err
}

// appendSince appends the seqno from which the applier of the service
// whose tracking schema is schema marks its changes (its row of empty
// names; none: the largest, always after).
func appendSince(q []byte, schema string) []byte {
	return append(q, "IFNULL((SELECT seqno FROM "+schema+".changes WHERE schema_name = '' AND table_name = ''), 9223372036854775807)"...)
}

// appendMarked appends the last seqno the service whose tracking schema
// is schema marked as changing one of qs's tables (as deleting from it,
// for a table qs only insert into), -1 for none.
func appendMarked(q []byte, schema string, qs []DeletedQuery) []byte {
	changed := map[[2]string]bool{} // a table's rows: true when any is not an INSERT's
	for _, q := range qs {
		k := [2]string{q.Schema, q.Table}
		changed[k] = changed[k] || !q.Insert
	}
	list := func(q []byte, which func(bool) bool) []byte {
		n := 0
		for k, v := range changed {
			if !which(v) {
				continue
			}
			if n > 0 {
				q = append(q, ',')
			}
			n++
			q = append(q, '(')
			q = quoteString(q, []byte(k[0]))
			q = append(q, ',')
			q = quoteString(q, []byte(k[1]))
			q = append(q, ')')
		}
		if n == 0 {
			q = append(q, "(NULL,NULL)"...)
		}
		return q
	}
	q = append(q, "IFNULL((SELECT MAX(IF((schema_name, table_name) IN ("...)
	q = list(q, func(v bool) bool { return v })
	q = append(q, "), seqno, deleted)) FROM "+schema+".changes WHERE (schema_name, table_name) IN ("...)
	q = list(q, func(bool) bool { return true })
	return append(q, ")), -1)"...)
}

// errnoAsk is the error the ask guard signals.
const errnoAsk = 45002

// isAskSignal reports whether err is the ask guard's.
func isAskSignal(err error) bool { return isErrNo(err, errnoAsk) }

// askGuard is the statement a compound block ends with, before its
// commit, when it holds rows to ask about: it signals errnoAsk where
// mustAsk would ask of some site, the block's changes made and locked (a
// signal in a compound statement leaves its earlier statements' changes
// in the transaction), and lets the block commit in its one round trip
// otherwise. The condition is mustAsk's, read after the block took its
// rows' locks; a tracking schema or table missing (1049, 1146) asks.
//
// It is read by a SELECT … INTO, a consistent read that waits for no
// lock: InnoDB reads a table with shared locks in every statement that is
// not a SELECT (a SET or an IF with a subquery), and those waits met the
// other appliers' and clients' locks in deadlocks. Only the missing
// schema is handled: any other error ends the statement as an error, the
// block rolled back and applied again. A handler for every SQLEXCEPTION
// went on after a deadlock had rolled the whole transaction back, and the
// block's tracking then committed without its changes.
func (a *Applier) askGuard(questions map[string][]DeletedQuery) []byte {
	q := []byte("BEGIN DECLARE CONTINUE HANDLER FOR 1146, 1049 SET @carbide_ask = 1; SELECT 0")
	for svc, qs := range questions {
		l := strconv.FormatUint(leastAfter(qs), 10)
		schema := string(quoteIdent(nil, TrackingSchema(svc)))
		q = append(q, " OR "...)
		if svc == a.cfg.Site {
			q = append(q, "@@read_only = 0 OR "...)
		}
		q = append(q, "IFNULL((SELECT t.seqno > "+l+" AND ("...)
		q = appendSince(q, schema)
		q = append(q, " > "+l+" OR "...)
		q = appendMarked(q, schema, qs)
		q = append(q, " > "+l+") FROM "+schema+".trep_commit_seqno t WHERE t.task_id = 0), 1)"...)
	}
	q = append(q, " INTO @carbide_ask; END; IF @carbide_ask THEN SIGNAL SQLSTATE '45000' SET MYSQL_ERRNO = "...)
	q = strconv.AppendInt(q, errnoAsk, 10)
	return append(q, ", MESSAGE_TEXT = 'carbide: ask another site'; END IF;"...)
}

// noteChanges records, in blk, the tables whose rows ev changes, to mark
// at its commit.
func (a *Applier) noteChanges(blk *block, ev *thlpb.Event) {
	if a.checksChanges() {
		blk.changed = addChanges(blk.changed, ev)
	}
}

// checksChanges says whether this applier takes part in the concurrent-
// change check: asks about rows and marks changes (a multi-site
// topology's service, detecting conflicts).
func (a *Applier) checksChanges() bool { return a.cfg.Deleted != nil && a.detect }

// addChanges adds to set the tables whose rows ev changes, each true
// once ev deletes rows of it (a DELETE, an UPDATE that changes a row's
// key).
func addChanges(set map[[2]string]bool, ev *thlpb.Event) map[[2]string]bool {
	for _, c := range ev.GetChanges() {
		rc := c.GetRows()
		if rc == nil || len(rc.GetRows()) == 0 {
			continue
		}
		k := [2]string{rc.GetSchema(), rc.GetTable()}
		if set[k] {
			continue
		}
		if set == nil {
			set = map[[2]string]bool{}
		}
		set[k] = rc.GetAction() == thlpb.RowChange_DELETE || rc.GetAction() == thlpb.RowChange_UPDATE && movesKey(rc)
	}
	return set
}

// appendCommitTracking appends what a transaction ending at ev writes in
// the tracking schema as it commits: the marks of the tables it changed
// rows of (when any; the whole block's for each of its transactions is
// more than they changed: safe) and the tracking update.
func appendCommitTracking(b []byte, service string, changed map[[2]string]bool, ev *thlpb.Event, now time.Time) []byte {
	return appendTrackingUpdate(appendChangeMarks(b, service, changed, ev.GetSeqno()), service, ev, now)
}

// appendChangeMarks appends the statement marking tables as changed at
// seqno, and as deleted from where they are true.
func appendChangeMarks(b []byte, service string, tables map[[2]string]bool, seqno uint64) []byte {
	if len(tables) == 0 {
		return b
	}
	b = append(b, "INSERT INTO "...)
	b = quoteIdent(b, TrackingSchema(service))
	b = append(b, ".changes (schema_name, table_name, seqno, deleted) VALUES "...)
	first := true
	for k, deleted := range tables {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, '(')
		b = quoteString(b, []byte(k[0]))
		b = append(b, ',')
		b = quoteString(b, []byte(k[1]))
		b = append(b, ',')
		b = strconv.AppendUint(b, seqno, 10)
		b = append(b, ',')
		if deleted {
			b = strconv.AppendUint(b, seqno, 10)
		} else {
			b = append(b, "NULL"...)
		}
		b = append(b, ')')
	}
	return append(b, " ON DUPLICATE KEY UPDATE seqno = VALUES(seqno), deleted = IFNULL(VALUES(deleted), deleted);"...)
}

// askDeleted asks Config.Deleted; an answer it cannot have is none (the
// rows applied unchecked), said once a minute. Only a context ending is
// an error.
func (a *Applier) askDeleted(ctx context.Context, svc string, qs []DeletedQuery) ([]bool, error) {
	if a.cfg.Causal != nil {
		a.cfg.Causal.DeleteQuestions.Add(1)
	}
	del, err := a.cfg.Deleted(ctx, svc, qs)
	if err == nil && len(del) == len(qs) {
		return del, nil
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if a.cfg.Causal != nil {
		a.cfg.Causal.DeleteUnchecked.Add(uint64(len(qs)))
	}
	if last := a.deletedWarned.Load(); time.Since(time.Unix(0, last)) >= deletedWarnEvery && a.deletedWarned.CompareAndSwap(last, time.Now().UnixNano()) {
		a.cfg.Logger.Warn("cannot tell whether another site deleted the rows a block inserts; applied unchecked (said once a minute)", "site", svc, "rows", len(qs), "error", err)
	}
	return nil, nil
}

// deletedWarnEvery: a replicator that cannot answer (stopped, or an older
// version) is logged once a minute, not at every block.
const deletedWarnEvery = time.Minute

// errConcurrentChange sends a block to conflict mode: it changes a row
// another site changed concurrently.
var errConcurrentChange = errors.New("a change of a row another site changed concurrently")
