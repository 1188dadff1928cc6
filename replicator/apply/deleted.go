package apply

import (
	"context"
	"encoding/hex"
	"errors"
	"slices"
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
// site in Event.after.

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
// ev deletes: a DELETE's rows, and an UPDATE's rows whose key it changes.
func DeletedKeys(ev *thlpb.Event, schema, table string) []string {
	var out []string
	for _, c := range ev.GetChanges() {
		rc := c.GetRows()
		if rc == nil || rc.GetSchema() != schema || rc.GetTable() != table {
			continue
		}
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
	}
	return out
}

// TableRowKey names a row (RowKey) of a table, in Applier.deleted and
// in the service's index of deleted rows.
func TableRowKey(schema, table, key string) string { return schema + "\x00" + table + "\x00" + key }

// noteInserts records, in blk, the INSERT rows of ev to ask about at the
// block's commit: for each other site ev's source had applied some of
// (Event.after), whether that site deleted the row after that.
func (a *Applier) noteInserts(blk *block, ev *thlpb.Event) {
	if a.cfg.Deleted == nil || !a.detect || len(ev.GetAfter()) == 0 {
		return
	}
	origin := originSite(ev, a.cfg.Service)
	for _, c := range ev.GetChanges() {
		rc := c.GetRows()
		if rc == nil || rc.GetAction() != thlpb.RowChange_INSERT {
			continue
		}
		for _, row := range rc.GetRows() {
			k, ok := RowKey(rc, row.GetAfter())
			if !ok {
				continue
			}
			for _, dep := range ev.GetAfter() {
				if svc := dep.GetService(); svc != origin {
					if blk.inserts == nil {
						blk.inserts = map[string][]DeletedQuery{}
					}
					blk.inserts[svc] = append(blk.inserts[svc], DeletedQuery{After: dep.GetSeqno(), Schema: rc.GetSchema(), Table: rc.GetTable(), Key: k})
				}
			}
		}
	}
}

// concurrentDeletes asks, once per other site and block, whether that
// site deleted any row the block inserts concurrently. It runs with the
// block's statements executed and not committed: every delete committed
// here before the block took its rows' locks is in that site's THL on
// this host (its master's answer waits for its extractor), and none can
// come after. Nothing is asked of a site of which this database holds no
// more than the sources had; a site whose deletes cannot be read here is
// left unchecked, with a warning. Workers of the parallel pool call it
// at once.
func (a *Applier) concurrentDeletes(ctx context.Context, inserts map[string][]DeletedQuery) (bool, error) {
	for svc, qs := range inserts {
		least := qs[0].After
		for _, q := range qs {
			least = min(least, q.After)
		}
		if have, ok, err := a.appliedHere(ctx, svc); err == nil && ok && have != primary && have <= least+1 {
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
	if a.cfg.Deleted == nil || !a.detect || len(ev.GetAfter()) == 0 {
		return false, nil
	}
	k, ok := RowKey(rc, row.GetAfter())
	if !ok {
		return false, nil
	}
	origin := originSite(ev, a.cfg.Service)
	for _, dep := range ev.GetAfter() {
		if svc := dep.GetService(); svc != origin {
			del, err := a.askDeleted(ctx, svc, []DeletedQuery{{After: dep.GetSeqno(), Schema: rc.GetSchema(), Table: rc.GetTable(), Key: k}})
			if err != nil || slices.Contains(del, true) {
				return err == nil, err
			}
		}
	}
	return false, nil
}

// askDeleted asks Config.Deleted; an answer it cannot have is none (the
// rows applied unchecked), said once a minute. Only a context ending is
// an error.
func (a *Applier) askDeleted(ctx context.Context, svc string, qs []DeletedQuery) ([]bool, error) {
	del, err := a.cfg.Deleted(ctx, svc, qs)
	if err == nil && len(del) == len(qs) {
		return del, nil
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
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
