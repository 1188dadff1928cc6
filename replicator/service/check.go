package service

import (
	"context"
	"database/sql/driver"
	"fmt"
	"time"

	"github.com/carbidedb/carbide/internal/consistency"
	"github.com/carbidedb/carbide/rpc/gen/replicatorpb"
)

// Chunk sizing: a chunk starts at firstChunkRows rows and is resized after
// each to take about the check's chunk time, within these bounds.
const (
	firstChunkRows    = 1000
	minChunkRows      = 10
	maxChunkRows      = 1_000_000
	defaultChunkTime  = 250 * time.Millisecond
	markerKeepFor     = time.Hour // older markers are deleted when a check starts
	maxTouchedSeqnos  = 200_000   // the most transactions Touched reads
	checkComputeLimit = time.Minute
)

// Check is a consistency check's master side: it cuts the tables into
// chunks, writes each chunk's marker (it travels through the THL, and
// every host that applies it checksums the chunk: internal/consistency)
// and checksums the chunk here too, calling send for each.
func (s *Service) Check(ctx context.Context, req *replicatorpb.CheckRequest, send func(*replicatorpb.CheckProgress) error) error {
	s.mu.Lock()
	role, state := s.role, s.state
	s.mu.Unlock()
	if role != RoleMaster {
		return fmt.Errorf("%w: a check runs on the master of %s; this host is a slave", ErrRole, s.cfg.Name)
	}
	if state != StateOnline {
		return fmt.Errorf("%w: service %s is %s; a check needs it ONLINE", ErrState, s.cfg.Name, state)
	}
	target := time.Duration(req.GetChunkSeconds() * float64(time.Second))
	if req.GetChunkSeconds() < 0 || target > time.Minute {
		return fmt.Errorf("%w: chunk time %gs: use a time from 0 (the default, %v) to 60 s", ErrInput, req.GetChunkSeconds(), defaultChunkTime)
	}
	if target == 0 {
		target = defaultChunkTime
	}
	db, err := s.openDB()
	if err != nil {
		return err
	}
	defer db.Close()
	conn, err := db.Conn(ctx) // cuts chunks, writes markers
	if err != nil {
		return err
	}
	defer conn.Close()
	comp, err := db.Conn(ctx) // checksums (check.Compute changes its session)
	if err != nil {
		return err
	}
	defer comp.Close()
	defer comp.Raw(func(any) error { return driver.ErrBadConn })

	id := uint64(time.Now().UnixMicro())
	schema := consistency.QuoteIdent("tungsten_" + s.cfg.Name)
	if _, err := conn.ExecContext(ctx, "DELETE FROM "+schema+"."+consistency.MarkerTable+" WHERE ts < NOW(6) - INTERVAL ? SECOND", int(markerKeepFor.Seconds())); err != nil {
		return fmt.Errorf("delete old markers: %w", err)
	}
	mark := func(ch *consistency.Chunk) error {
		query := ch.Query
		if ch.Rows && ch.RowsQuery != "" {
			query = ch.RowsQuery
		}
		_, err := conn.ExecContext(ctx, "INSERT INTO "+schema+"."+consistency.MarkerTable+" (check_id, chunk, db, tbl, boundaries, query, master, ts) VALUES (?, ?, ?, ?, ?, ?, ?, NOW(6))",
			id, ch.No, ch.Schema, ch.Table, ch.Range(), query, s.cfg.Host)
		if err != nil {
			return fmt.Errorf("write the marker of %s.%s chunk %d: %w", ch.Schema, ch.Table, ch.No, err)
		}
		r := consistency.Result{CheckID: id, Chunk: ch.No, Host: s.cfg.Host}
		cctx, cancel := context.WithTimeout(ctx, checkComputeLimit)
		r.Snapshot, err = consistency.Compute(cctx, comp, query)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			r.Err = err.Error()
		}
		s.checks.Add(r)
		return send(&replicatorpb.CheckProgress{CheckId: id, Chunk: consistency.ChunkToProto(ch), Result: consistency.ResultToProto(&r)})
	}

	if len(req.GetChunks()) > 0 {
		if err := send(&replicatorpb.CheckProgress{CheckId: id}); err != nil {
			return err
		}
		for _, pc := range req.GetChunks() {
			ch := consistency.ChunkFromProto(pc)
			if err := mark(&ch); err != nil {
				return err
			}
		}
		return nil
	}
	tables, err := consistency.Tables(ctx, conn, req.GetSchema(), req.GetTable())
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInput, err)
	}
	if err := send(&replicatorpb.CheckProgress{CheckId: id, Tables: uint32(len(tables))}); err != nil {
		return err
	}
	no := uint32(0)
	for i := range tables {
		c := consistency.NewChunker(&tables[i], no)
		rows := firstChunkRows
		for {
			ch, ok, err := c.Next(ctx, conn, rows)
			if err != nil {
				return err
			}
			if !ok {
				break
			}
			no = ch.No + 1
			begin := time.Now()
			if err := mark(&ch); err != nil {
				return err
			}
			// The next chunk takes about the target time.
			took := max(time.Since(begin), time.Millisecond)
			rows = min(max(int(float64(rows)*float64(target)/float64(took)), minChunkRows), maxChunkRows, rows*4)
		}
		if err := send(&replicatorpb.CheckProgress{CheckId: id, Tables: uint32(len(tables)), TablesDone: uint32(i + 1)}); err != nil {
			return err
		}
	}
	return nil
}

// CheckResults returns this host's results for check id. Where this host
// is a service's master, that service's seqno in a result's vector is not
// its tracking row's but the last transaction extracted at the result's
// binlog position: the caller asks that master (Locate).
func (s *Service) CheckResults(id uint64) []consistency.Result {
	rs := s.checks.Results(id)
	for i := range rs {
		rs[i].Host = s.cfg.Host
	}
	return rs
}

// maxTouchedKeys bounds the keys Touched returns; past it, all.
const maxTouchedKeys = 100_000

// Touched says whether a transaction of this service after from, up to
// and including to, may have changed ch (read from this host's THL): all
// when it may have changed any row, else the keys of the rows it changed
// (consistency.TouchedKeys).
func (s *Service) Touched(ctx context.Context, from, to int64, ch *consistency.Chunk) (all bool, keys []string, err error) {
	if to-from > maxTouchedSeqnos {
		return true, nil, fmt.Errorf("%d transactions of %s between the two hosts: too many to read", to-from, s.cfg.Name)
	}
	for seqno := max(from+1, 0); seqno <= to; seqno++ {
		if err := ctx.Err(); err != nil {
			return true, nil, err
		}
		frags, err := s.store.Get(uint64(seqno))
		if err != nil {
			return true, nil, fmt.Errorf("read seqno %d of %s: %w", seqno, s.cfg.Name, err)
		}
		if len(frags) == 0 {
			return true, nil, fmt.Errorf("seqno %d of %s is not in this host's THL", seqno, s.cfg.Name)
		}
		for _, ev := range frags {
			a, k := consistency.TouchedKeys(ev, ch)
			if a || len(keys)+len(k) > maxTouchedKeys {
				return true, nil, nil
			}
			keys = append(keys, k...)
		}
	}
	return false, keys, nil
}
