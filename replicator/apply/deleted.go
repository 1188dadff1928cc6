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

// An INSERT finds its key free where another site deleted the row after
// what the INSERT's source had applied of that site: no row to compare,
// yet the two changes crossed as much as an UPDATE and a DELETE do. East
// deletes row 1 while west deletes it and inserts it again: west's hosts
// meet east's DELETE over west's new row (a conflict east wins: no row),
// east's hosts meet west's INSERT of a free key, which without this
// check would bring the row back there only. So an INSERT of a key the
// other site deleted concurrently is a conflict (KindDeleted), resolved
// by the policy like any other: under converge, east's hosts keep the row
// deleted, and west's apply an INSERT of east's.
//
// The other site's deletes are read from its THL on this host (Config.
// Deleted: every host holds every site's stream, in one of its
// replicators), after the seqno the INSERT's transaction names for that
// site in Event.after. Most blocks need not ask: every applier marks, in
// tungsten_<service>.deletes, the last seqno that deleted rows of each
// table, in the transaction that applies it; a host that has applied no
// delete of the block's tables after what the source had applied of that
// site skips the question. A site's primary, whose clients delete
// without an applier, always asks.

// KindDeleted is an INSERT whose key another site deleted after what its
// source had applied of that site.
const KindDeleted = "row deleted"

// DeletedQuery asks whether the transactions of a service after seqno
// After deleted the row of Schema.Table whose key is Key (RowKey).
type DeletedQuery struct {
	After         uint64
	Schema, Table string
	Key           string
}

// DeletedFunc answers queries about service svc, one bool per query.
type DeletedFunc func(ctx context.Context, svc string, queries []DeletedQuery) ([]bool, error)

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
		v, err := proto.MarshalOptions{Deterministic: true}.Marshal(img[i])
		if err != nil {
			return "", false
		}
		b = append(b, byte(len(v)>>8), byte(len(v)))
		b = append(b, v...)
		n++
	}
	if n == 0 {
		return "", false
	}
	return hex.EncodeToString(b), true
}

// DeletedKeys returns the keys (RowKey) of the rows of schema.table that
// ev deletes (DeletedRowKeys).
func DeletedKeys(ev *thlpb.Event, schema, table string) []string {
	var out []string
	for _, c := range ev.GetChanges() {
		if rc := c.GetRows(); rc != nil && rc.GetSchema() == schema && rc.GetTable() == table {
			out = append(out, DeletedRowKeys(rc)...)
		}
	}
	return out
}

// DeletedRowKeys returns the keys (RowKey) of the rows rc deletes: a
// DELETE's rows, and an UPDATE's rows whose key it changes.
func DeletedRowKeys(rc *thlpb.RowChange) []string {
	var out []string
	for _, row := range rc.GetRows() {
		switch rc.GetAction() {
		case thlpb.RowChange_DELETE:
			if k, ok := RowKey(rc, row.GetBefore()); ok {
				out = append(out, k)
			}
		case thlpb.RowChange_UPDATE:
			before, ok1 := RowKey(rc, row.GetBefore())
			after, ok2 := RowKey(rc, row.GetAfter())
			if ok1 && ok2 && before != after {
				out = append(out, before)
			}
		}
	}
	return out
}

// TableRowKey names a row (RowKey) of a table in the service's index of
// deleted rows.
func TableRowKey(schema, table, key string) string { return schema + "\x00" + table + "\x00" + key }

// noteInserts records, in blk, the INSERT rows of ev to ask about at the
// block's commit.
func (a *Applier) noteInserts(blk *block, ev *thlpb.Event) {
	if !a.checksDeletes() || len(ev.GetAfter()) == 0 {
		return
	}
	for _, c := range ev.GetChanges() {
		if rc := c.GetRows(); rc != nil && rc.GetAction() == thlpb.RowChange_INSERT {
			for _, row := range rc.GetRows() {
				blk.inserts = a.insertQueries(blk.inserts, ev, rc, row)
			}
		}
	}
}

// insertQueries adds to qs, by site, the questions about an INSERT row:
// for each other site ev's source had applied some of (Event.after),
// whether that site deleted the row after that. None when nothing is
// asked (no check here, no key, or an INSERT the policy applies anyway).
func (a *Applier) insertQueries(qs map[string][]DeletedQuery, ev *thlpb.Event, rc *thlpb.RowChange, row *thlpb.Row) map[string][]DeletedQuery {
	if !a.checksDeletes() || len(ev.GetAfter()) == 0 {
		return qs
	}
	origin := originSite(ev, a.cfg.Service)
	if a.insertsAnyway(origin) {
		return qs
	}
	k, ok := RowKey(rc, row.GetAfter())
	if !ok {
		return qs
	}
	for _, dep := range ev.GetAfter() {
		if svc := dep.GetService(); svc != origin {
			if qs == nil {
				qs = map[string][]DeletedQuery{}
			}
			qs[svc] = append(qs[svc], DeletedQuery{After: dep.GetSeqno(), Schema: rc.GetSchema(), Table: rc.GetTable(), Key: k})
		}
	}
	return qs
}

// concurrentDeletes asks, once per other site and block, whether that
// site deleted any row the block inserts concurrently. It runs on conn
// with the block's statements executed and not committed: every delete
// committed here before the block took its rows' locks is in that site's
// THL on this host (its master's answer waits for its extractor), and
// none can come after. Nothing is asked of a site none of whose deletes of
// these tables this database applied after what the sources had (mustAsk);
// a site whose deletes cannot be read here is left unchecked, with a
// warning. Workers of the parallel pool call it at once.
func (a *Applier) concurrentDeletes(ctx context.Context, conn *sql.Conn, inserts map[string][]DeletedQuery) (bool, error) {
	for svc, qs := range inserts {
		ask, err := a.mustAsk(ctx, conn, svc, qs)
		if err != nil {
			return false, err
		}
		if !ask {
			continue
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

// insertDeleted says whether conflict mode's INSERT row, its key found
// free under lock, takes a key another site deleted after what the
// source had applied of it.
func (a *Applier) insertDeleted(ctx context.Context, ev *thlpb.Event, rc *thlpb.RowChange, row *thlpb.Row) (bool, error) {
	qs := a.insertQueries(nil, ev, rc, row)
	if len(qs) == 0 {
		return false, nil
	}
	return a.concurrentDeletes(ctx, a.conn, qs)
}

// insertsAnyway says whether the policy applies an INSERT from origin
// over a concurrent delete (log; converge when origin wins): the answer
// would change nothing, so nothing is asked, and that conflict is recorded
// only where the other site's DELETE meets the row.
func (a *Applier) insertsAnyway(origin string) bool {
	over, _, err := a.rule.overwrite(origin)
	return err == nil && over
}

// mustAsk says whether svc's replicator must be asked about qs: unless
// this database is svc's primary, not if it applied nothing of svc after
// what the sources had, nor any delete of the queried tables since then
// (svc's applier marks them in tungsten_<svc>.deletes, from the seqno of
// its row of empty names on). Read on conn, in the block's transaction (READ
// COMMITTED: the latest commits); anything unreadable asks.
func (a *Applier) mustAsk(ctx context.Context, conn *sql.Conn, svc string, qs []DeletedQuery) (bool, error) {
	least := qs[0].After
	for _, q := range qs {
		least = min(least, q.After)
	}
	schema := string(quoteIdent(nil, TrackingSchema(svc)))
	q := []byte("SELECT t.seqno, @@read_only, IFNULL((SELECT seqno FROM " + schema + ".deletes WHERE schema_name = '' AND table_name = ''), " +
		"9223372036854775807), IFNULL((SELECT MAX(seqno) FROM " + schema + ".deletes WHERE (schema_name, table_name) IN (")
	seen := map[[2]string]bool{}
	for _, qq := range qs {
		k := [2]string{qq.Schema, qq.Table}
		if seen[k] {
			continue
		}
		if len(seen) > 0 {
			q = append(q, ',')
		}
		seen[k] = true
		q = append(q, '(')
		q = quoteString(q, []byte(qq.Schema))
		q = append(q, ',')
		q = quoteString(q, []byte(qq.Table))
		q = append(q, ')')
	}
	q = append(q, ")), -1) FROM "+schema+".trep_commit_seqno t WHERE t.task_id = 0"...)
	var applied, since, marked int64
	var readOnly int
	err := conn.QueryRowContext(ctx, string(q)).Scan(&applied, &readOnly, &since, &marked)
	switch {
	case ctx.Err() != nil:
		return false, ctx.Err()
	case err != nil:
		return true, nil // no tracking row or marks of svc here: ask
	case svc == a.cfg.Site && readOnly == 0:
		return true, nil // its primary: clients delete here
	case applied <= int64(least):
		return false, nil // nothing of svc after what the sources had
	}
	return since > int64(least) || marked > int64(least), nil
}

// noteDeletes records, in blk, the tables whose rows ev deletes (a
// DELETE, an UPDATE that changes a row's key), to mark at its commit.
func (a *Applier) noteDeletes(blk *block, ev *thlpb.Event) {
	if a.checksDeletes() {
		blk.deletes = addDeletes(blk.deletes, ev)
	}
}

// checksDeletes says whether this applier takes part in the concurrent-
// delete check: asks about INSERTs and marks deletes (a multi-site
// topology's service, detecting conflicts).
func (a *Applier) checksDeletes() bool { return a.cfg.Deleted != nil && a.detect }

// addDeletes adds to set the tables whose rows ev deletes.
func addDeletes(set map[[2]string]struct{}, ev *thlpb.Event) map[[2]string]struct{} {
	for _, c := range ev.GetChanges() {
		rc := c.GetRows()
		if rc == nil || rc.GetAction() == thlpb.RowChange_INSERT {
			continue
		}
		k := [2]string{rc.GetSchema(), rc.GetTable()}
		if _, ok := set[k]; ok {
			continue
		}
		if rc.GetAction() == thlpb.RowChange_UPDATE && !movesKey(rc) {
			continue
		}
		if set == nil {
			set = map[[2]string]struct{}{}
		}
		set[k] = struct{}{}
	}
	return set
}

// movesKey says whether an UPDATE changes the key of one of its rows.
func movesKey(rc *thlpb.RowChange) bool {
	for _, row := range rc.GetRows() {
		before, after := row.GetBefore(), row.GetAfter()
		for i, c := range rc.GetColumns() {
			if c.GetKey() && (i >= len(before) || i >= len(after) || !proto.Equal(before[i], after[i])) {
				return true
			}
		}
	}
	return false
}

// appendCommitTracking appends what a transaction ending at ev writes in
// the tracking schema as it commits: the marks of the tables it deleted
// rows of (when any; the whole block's for each of its transactions is
// more than they deleted: safe) and the tracking update.
func appendCommitTracking(b []byte, service string, deletes map[[2]string]struct{}, ev *thlpb.Event, now time.Time) []byte {
	return appendTrackingUpdate(appendDeleteMarks(b, service, deletes, ev.GetSeqno()), service, ev, now)
}

// appendDeleteMarks appends the statement marking tables as deleted from
// at seqno.
func appendDeleteMarks(b []byte, service string, tables map[[2]string]struct{}, seqno uint64) []byte {
	if len(tables) == 0 {
		return b
	}
	b = append(b, "INSERT INTO "...)
	b = quoteIdent(b, TrackingSchema(service))
	b = append(b, ".deletes (schema_name, table_name, seqno) VALUES "...)
	first := true
	for k := range tables {
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
		b = append(b, ')')
	}
	return append(b, " ON DUPLICATE KEY UPDATE seqno = VALUES(seqno);"...)
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

// errConcurrentDelete sends a block to conflict mode: it inserts a key
// another site deleted concurrently.
var errConcurrentDelete = errors.New("an INSERT of a key another site deleted concurrently")
