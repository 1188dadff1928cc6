package apply

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

// Parallel apply (Config.Channels > 1): blocks execute at once on several
// connections and commit in seqno order. A block starts on a worker only
// when it touches no row that a block still in flight touches (keys from
// the row images: primary and unique keys); otherwise it waits until those
// commit. Each worker sends "BEGIN; <the block's statements>" at once,
// then waits for the block before it to commit, then sends the tracking
// update with COMMIT. So commits, and the tracking row, advance exactly as
// in serial apply: the restart point stays a single seqno.

// errAborted: a block rolled back because one before it failed.
var errAborted = errors.New("apply: aborted after an earlier block failed")

// flight is a block handed to a worker.
type flight struct {
	blk  *block
	deps *deps
	done chan struct{}
	err  error // set before done closes
}

// pool is the set of worker connections and the blocks in flight.
type pool struct {
	a        *Applier
	conns    []*sql.Conn
	free     chan *sql.Conn
	inflight []*flight
	last     *flight
	// failed is signalled when a block fails, so Run drains at once
	// instead of at the next dispatch.
	failed chan struct{}
	// sessions are the connections' ids in the database.
	sessions []int64
}

func (a *Applier) openPool(ctx context.Context) (*pool, error) {
	p := &pool{a: a, free: make(chan *sql.Conn, a.cfg.Channels), failed: make(chan struct{}, 1)}
	for i := 0; i < a.cfg.Channels; i++ {
		conn, err := a.db.Conn(ctx)
		if err != nil {
			p.close()
			return nil, fmt.Errorf("connect apply channel %d: %w", i, err)
		}
		id, err := sessionID(ctx, conn)
		if err == nil {
			err = setupSession(ctx, conn)
		}
		if err != nil {
			conn.Close()
			p.close()
			return nil, err
		}
		p.sessions = append(p.sessions, id)
		p.conns = append(p.conns, conn)
		p.free <- conn
	}
	return p, nil
}

func (p *pool) close() {
	for _, c := range p.conns {
		c.Close()
	}
}

// drain waits for every block in flight and returns the first failure.
func (p *pool) drain(ctx context.Context) error {
	var failed []*flight
	for _, f := range p.inflight {
		<-f.done
		if f.err != nil {
			failed = append(failed, f)
		}
	}
	p.inflight = p.inflight[:0]
	p.last = nil
	if len(failed) == 0 {
		return nil
	}
	// Apply the failed block and those aborted after it serially on the
	// main connection: a transient failure (a lock conflict) goes through,
	// a real one becomes an *Error naming the transaction and statement.
	for _, f := range failed {
		if err := p.a.commit(ctx, f.blk); err != nil {
			return err
		}
	}
	return nil
}

// wait waits for every block in flight, keeping none of their failures
// (a stopping run's).
func (p *pool) wait() {
	for _, f := range p.inflight {
		<-f.done
	}
	p.inflight = p.inflight[:0]
	p.last = nil
}

// dispatch hands blk to a worker and resets blk for the next block.
func (p *pool) dispatch(ctx context.Context, blk *block, d *deps) error {
	// Forget committed blocks; keep failed ones for drain, which applies
	// them again serially.
	kept := p.inflight[:0]
	failed := false
	for _, f := range p.inflight {
		select {
		case <-f.done:
			if f.err == nil {
				continue
			}
			failed = true
		default:
		}
		kept = append(kept, f)
	}
	p.inflight = kept
	conflict := failed
	for _, f := range p.inflight {
		conflict = conflict || f.deps.conflicts(d)
	}
	if conflict {
		if err := p.drain(ctx); err != nil {
			return err
		}
	}
	var conn *sql.Conn
	select {
	case conn = <-p.free:
	case <-ctx.Done():
		return ctx.Err()
	}
	f := &flight{blk: blk.clone(), deps: d.clone(), done: make(chan struct{})}
	pred := p.last
	p.last = f
	p.inflight = append(p.inflight, f)
	go p.run(ctx, conn, f, pred)
	blk.reset()
	d.reset()
	return nil
}

// run executes one block on conn.
func (p *pool) run(ctx context.Context, conn *sql.Conn, f *flight, pred *flight) {
	defer func() {
		close(f.done)
		p.free <- conn
	}()
	blk := f.blk
	last := blk.txs[len(blk.txs)-1].last
	begin := time.Now()
	s := script{begin: true, sql: blk.sql, to: len(blk.sql), marks: blk.marks, compound: p.a.compound.Load(), check: p.a.detect, guard: p.a.guard}
	ask, err := p.a.sendAsking(ctx, conn, s, blk.questions)
	if err == nil && ask {
		// Asked holding the rows' locks; a yes fails the block, and drain
		// applies it again serially, in conflict mode (deleted.go).
		var hit bool
		if hit, err = p.a.concurrentChanges(ctx, conn, blk.questions); err == nil && hit {
			err = errConcurrentChange
		}
	}
	took := time.Since(begin)
	if pred != nil {
		<-pred.done
		if pred.err != nil && err == nil {
			err = errAborted
		}
	}
	now := p.a.cfg.Now()
	if err == nil {
		q := appendCommitTracking(nil, p.a.cfg.Service, blk.changed, last, now)
		begin = time.Now()
		_, err = conn.ExecContext(ctx, string(append(q, "COMMIT"...)))
		p.a.timed(took + time.Since(begin))
	}
	if err != nil {
		_, _ = conn.ExecContext(context.Background(), "ROLLBACK")
		f.err = err
		select {
		case p.failed <- struct{}{}:
		default:
		}
		return
	}
	p.a.committed(last, blk.txns, now)
}

func (b *block) clone() *block {
	c := &block{start: b.start, txns: b.txns, sent: b.sent, questions: maps.Clone(b.questions), changed: maps.Clone(b.changed)}
	c.sql = append([]byte(nil), b.sql...)
	c.marks = b.marks.clone()
	c.txs = make([]txn, len(b.txs))
	for i, t := range b.txs {
		c.txs[i] = t
		c.txs[i].stmts = append([]int(nil), t.stmts...)
		c.txs[i].events = append([]*thlpb.Event(nil), t.events...)
	}
	return c
}

func (d *deps) clone() *deps {
	c := &deps{keys: make(map[string]struct{}, len(d.keys)), barrier: d.barrier}
	for k := range d.keys {
		c.keys[k] = struct{}{}
	}
	return c
}
