package extract

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

// Causal order across streams. A database of a multi-site cluster is
// written by its own clients and by appliers of other streams (a
// cross-site service, or on a cross-site transaction's host, the site's
// cluster service). A transaction its clients commit after reading a row
// another stream wrote depends on that write; a host that applies the
// two streams independently must not apply it first (its UPDATE by key
// would land, then the older write over it: the hosts diverge without a
// word). Every applier's transaction writes its service's tracking row
// (tungsten_<service>.trep_commit_seqno) as it commits, so the binlog
// says, in commit order, how far each other stream had been applied when
// any later transaction committed. The extractor keeps that vector and
// stamps it on every transaction it sends (Event.after); appliers wait
// for it (apply/after.go).

// trackingTable is the table whose row holds a service's applied position.
const trackingTable = "trep_commit_seqno"

// Columns of the tracking row (apply/tracking.go's trackingDDL).
const (
	trackingSeqnoCol = 1
	trackingEpochCol = 5
)

// appliedVector is the last position each other service had committed
// into this database, as of the binlog event being read. It is replaced,
// never changed in place: events share it until the next change.
type appliedVector []*thlpb.After

// noteTracking records what a rows event on a tracking table says of the
// service it belongs to: the transaction holding it is an applier's, and
// once it commits, the database holds that service up to the seqno in
// its tracking row's last image. The service's own tracking row (a
// master's recorded position) says nothing of other streams.
func (t *txn) noteTracking(e *replication.RowsEvent, prefix, own string) {
	svc, ok := bytes.CutPrefix(e.Table.Schema, []byte(prefix))
	if !ok || string(svc) == own || string(e.Table.Table) != trackingTable || len(e.Rows) == 0 {
		return
	}
	if e.Type() == replication.EnumRowsEventTypeDelete {
		return
	}
	row := e.Rows[len(e.Rows)-1] // the last after image: an UPDATE's rows alternate before, after
	if len(row) <= trackingSeqnoCol {
		return
	}
	seqno, ok := row[trackingSeqnoCol].(int64)
	if !ok || seqno < 0 {
		return
	}
	var epoch int64
	if len(row) > trackingEpochCol {
		epoch, _ = row[trackingEpochCol].(int64)
	}
	if t.applied == nil {
		t.applied = map[string]*thlpb.After{}
	}
	t.applied[string(svc)] = &thlpb.After{Service: string(svc), Seqno: uint64(seqno), Epoch: uint64(max(epoch, 0))}
}

// with returns v updated by what a committed applier's transaction
// applied; v itself when nothing changed. A position lower than v's
// replaces it: the binlog read again after a restart, or a service reset.
func (v appliedVector) with(applied map[string]*thlpb.After) appliedVector {
	if len(applied) == 0 {
		return v
	}
	out := slices.Clone(v)
	changed := false
	for svc, a := range applied {
		i := slices.IndexFunc(out, func(o *thlpb.After) bool { return o.GetService() == svc })
		switch {
		case i < 0:
			out = append(out, a)
			changed = true
		case out[i].GetSeqno() != a.GetSeqno() || out[i].GetEpoch() != a.GetEpoch():
			out[i] = a
			changed = true
		}
	}
	if !changed {
		return v
	}
	slices.SortFunc(out, func(a, b *thlpb.After) int { return strings.Compare(a.GetService(), b.GetService()) })
	return out
}

// readApplied reads the tracking rows of every other service from the
// database: where a run starts, before any applier's transaction is read
// again, the vector is taken as what the database holds now. That is as
// much or more than it held at the start position: an applier elsewhere
// then waits for as much or more, never for less.
func (x *Extractor) readApplied(ctx context.Context) (appliedVector, error) {
	rows, err := x.db.QueryContext(ctx, "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE ?",
		strings.ReplaceAll(x.cfg.LoopSchemaPrefix, "_", `\_`)+"%")
	if err != nil {
		return nil, fmt.Errorf("list the tracking schemas: %w", err)
	}
	var schemas []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			rows.Close()
			return nil, err
		}
		if svc := strings.TrimPrefix(s, x.cfg.LoopSchemaPrefix); svc != x.cfg.Service && svc != "" {
			schemas = append(schemas, s)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	var v appliedVector
	for _, s := range schemas {
		var seqno, epoch int64
		q := "SELECT seqno, epoch_number FROM `" + strings.ReplaceAll(s, "`", "``") + "`." + trackingTable + " WHERE task_id = 0"
		if err := x.db.QueryRowContext(ctx, q).Scan(&seqno, &epoch); err != nil || seqno < 0 {
			continue // not a tracking schema of ours, or nothing applied
		}
		v = append(v, &thlpb.After{Service: strings.TrimPrefix(s, x.cfg.LoopSchemaPrefix), Seqno: uint64(seqno), Epoch: uint64(max(epoch, 0))})
	}
	slices.SortFunc(v, func(a, b *thlpb.After) int { return strings.Compare(a.GetService(), b.GetService()) })
	return v, nil
}
