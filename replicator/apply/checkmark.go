package apply

import (
	"context"
	"database/sql/driver"
	"time"

	"github.com/carbidedb/carbide/internal/consistency"
	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

// checkMarkers runs a consistency check's markers (replicator/check)
// that ev carries: everything up to and including ev is committed first,
// then each marker's chunk is checksummed in one consistent snapshot,
// with the tracking rows of the same snapshot, and recorded. The stream
// waits meanwhile (a chunk takes about the check's chunk time); nothing
// is locked. A checksum that fails is recorded as failed: the check
// reports it, the service goes on.
func (a *Applier) checkMarkers(ctx context.Context, blk *block, ev *thlpb.Event) error {
	if a.cfg.Checks == nil || !ev.GetLastFrag() {
		return nil
	}
	markers := consistency.Markers(ev, TrackingSchema(a.cfg.Service))
	if len(markers) == 0 {
		return nil
	}
	if blk.txns > 0 && blk.open == nil {
		if err := a.flush(ctx, blk); err != nil {
			return err
		}
	}
	if err := a.quiesce(ctx); err != nil {
		return err
	}
	for _, m := range markers {
		r := consistency.Result{CheckID: m.CheckID, Chunk: m.Chunk, Seqno: ev.GetSeqno()}
		snap, err := a.snapshot(ctx, m.Query)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			r.Err = err.Error()
			a.cfg.Logger.Warn("consistency check: the checksum of a chunk failed here", "check", m.CheckID, "chunk", m.Chunk, "seqno", ev.GetSeqno(), "error", err)
		}
		r.Snapshot = snap
		a.cfg.Checks.Add(r)
	}
	return nil
}

// snapshot computes a checksum on a connection of its own, closed after
// (consistency.Compute changes its session).
func (a *Applier) snapshot(ctx context.Context, query string) (consistency.Snapshot, error) {
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	conn, err := a.db.Conn(ctx)
	if err != nil {
		return consistency.Snapshot{}, err
	}
	defer conn.Close()
	defer conn.Raw(func(any) error { return driver.ErrBadConn }) // not back to the pool
	return consistency.Compute(ctx, conn, query)
}

// checkTimeout bounds one chunk's checksum on a host: a chunk is cut to
// take a fraction of a second on the master.
var checkTimeout = time.Minute
