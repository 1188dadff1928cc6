package service

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"time"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-sql-driver/mysql"

	"github.com/carbidedb/carbide/replicator/apply"
	"github.com/carbidedb/carbide/replicator/stream"
	"github.com/carbidedb/carbide/replicator/thl"
	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

// retryUnreachable runs a pipeline again while it fails only because the
// local database cannot be reached (restarted, stopping): a slave resumes
// from its tracking row, a master after its last stored event, once the
// database answers. A block the database gave up on for a lock conflict
// (a deadlock with another stream's applier or a client, a lock wait
// timeout) is applied again from the tracking row too, up to
// maxLockRetries times in a row without progress. Any other error ends it.
func (s *Service) retryUnreachable(ctx context.Context, run func(context.Context) error) error {
	wait := 200 * time.Millisecond
	locks, lockedAt := 0, uint64(0)
	for {
		err := run(ctx)
		lock := lockConflict(err)
		if err == nil || ctx.Err() != nil || !dbUnreachable(err) && !lock {
			return err
		}
		s.mu.Lock()
		if s.applier != nil {
			s.lastApply, s.hasApply = s.applier.Position()
		}
		at := s.lastApply.Seqno
		s.applier, s.client, s.extractor = nil, nil, nil
		s.setState(StateGoingOnline)
		s.mu.Unlock()
		if lock {
			if at != lockedAt {
				locks, lockedAt = 0, at
			}
			if locks++; locks > maxLockRetries {
				return fmt.Errorf("%w (the same block met a lock conflict %d times in a row: a client may hold its rows locked)", err, locks)
			}
			s.log.Warn("a lock conflict rolled a block back; applying again from the tracking row", "attempt", locks, "error", err)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(time.Duration(locks) * 50 * time.Millisecond):
			}
			continue
		}
		s.log.Warn("local database unreachable; retrying", "in", wait, "error", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		wait = min(2*wait, 2*time.Second)
	}
}

// maxLockRetries bounds how often the same block is applied again after a
// lock conflict.
const maxLockRetries = 10

// lockConflict tells whether err is a block the database rolled back for
// a lock conflict (deadlock, lock wait timeout): applied again, it goes
// through once the other transaction is done.
func lockConflict(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && (me.Number == 1213 || me.Number == 1205)
}

// dbUnreachable tells whether err means the database did not answer or
// dropped the connection, rather than refused a statement.
func dbUnreachable(err error) bool {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		switch me.Number {
		case 1053, 1927, 1040: // server shutdown, connection killed, too many connections
			return true
		}
		return false
	}
	var ne net.Error
	// gomysql.ErrBadConn: the binlog connection dropped (the server stopped).
	// sql.ErrConnDone: a statement on a connection database/sql closed
	// after the server dropped it (the applier's session, mid-block).
	return errors.Is(err, driver.ErrBadConn) || errors.Is(err, mysql.ErrInvalidConn) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, sql.ErrConnDone) ||
		errors.Is(err, gomysql.ErrBadConn) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.As(err, &ne)
}

// runSlave fetches THL from the sources and applies it.
func (s *Service) runSlave(ctx context.Context) error {
	a, err := s.openApplier(ctx)
	if err != nil {
		return err
	}
	defer a.Close()
	s.mu.Lock()
	if len(s.skip) > 0 {
		a.Skip(s.skip...)
		s.skip = nil
	}
	sources := append([]string(nil), s.sources...)
	s.mu.Unlock()
	pos, applied := a.Position()
	from := uint64(0)
	mark, marked := s.loadResetMark()
	switch {
	case applied:
		from = pos.Seqno + 1
		if marked {
			s.dropResetMark()
			marked = false
		}
	case marked:
		if _, any := s.store.MinSeqno(); any {
			marked = false // THL kept (reset -db only): continue from it
			break
		}
		from = mark.Seqno + 1
		s.log.Info("reset slave: asking the source to continue after where it was", "seqno", mark.Seqno, "epoch", mark.Epoch)
	}
	if !applied && !marked {
		if min, ok := s.store.MinSeqno(); ok {
			from = min
		}
	}
	if own := s.ownEvents(ctx, from); len(own) > 0 {
		s.log.Info("recording transactions this host extracted as master as applied", "from", own[0], "to", own[len(own)-1])
		a.Skip(own...)
	}
	c, err := s.cfg.Stages.NewTHLClient(stream.ClientConfig{Service: s.cfg.Name, ClientHost: s.cfg.Host, Sources: sources, Resolve: s.cfg.Resolve,
		Order: s.cfg.SourceOrder, OnConnect: s.goOnline, DialOptions: s.cfg.DialOptions, Logger: s.log})
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.applier, s.client = a, c
	s.lastApply, s.hasApply = pos, applied
	s.mu.Unlock()

	fs := &fetchStore{store: s.store, applied: pos, hasApplied: applied}
	if marked {
		fs.applied, fs.hasApplied = apply.Position{Seqno: mark.Seqno, Epoch: mark.Epoch, EventID: mark.EventID}, true
	}
	r, err := s.store.NewReader(from)
	if err != nil {
		return err
	}
	defer r.Close()
	// Both halves end before runSlave returns (defers run in reverse:
	// cancel, wait, then the reader and the applier close): a fetch still
	// appending while the next run starts its own would make two writers
	// of one THL, an apply still running two appliers of one database.
	ctx, cancel := context.WithCancel(ctx)
	var halves sync.WaitGroup
	defer halves.Wait()
	defer cancel()
	clientErr, applyErr := make(chan error, 1), make(chan error, 1)
	halves.Add(2)
	go func() { defer halves.Done(); clientErr <- c.Run(ctx, fs) }()
	go func() { defer halves.Done(); applyErr <- a.Run(ctx, s.counted(r)) }()
	select {
	case err := <-clientErr:
		if marked && errors.Is(err, stream.ErrDiverged) {
			if _, any := a.Position(); !any {
				s.log.Info("the source's history is new since the reset: starting from its first transaction", "source_said", err)
				s.dropResetMark()
				return errNewHistory
			}
		}
		if err != nil {
			return err
		}
		return <-applyErr
	case err := <-applyErr:
		if errors.Is(err, thl.ErrTruncated) {
			// The client replaced an unfinished transaction the applier
			// was reading (its source holds another one there). The
			// applier commits only whole transactions, so closing it
			// rolls back what it had of that one; the next run reads
			// again from the database's position.
			s.log.Warn("an unfinished transaction being applied was replaced by the source's; applying again from the database's position", "error", err)
			return errReapply
		}
		return err
	}
}

// errReapply ends a slave pipeline whose applier must read the THL again
// from its committed position.
var errReapply = errors.New("the THL under the applier changed: applying again from the committed position")

// fetchStore adapts the store for the THL client: when the store holds
// nothing, the client's handshake starts after the applied position.
type fetchStore struct {
	store      *thl.Store
	applied    apply.Position
	hasApplied bool
}

func (f *fetchStore) Last() (*thlpb.Event, bool) {
	if ev, ok := f.store.Last(); ok {
		return ev, true
	}
	if f.hasApplied {
		return &thlpb.Event{Seqno: f.applied.Seqno, Epoch: f.applied.Epoch, EventId: f.applied.EventID, LastFrag: true}, true
	}
	return nil, false
}

func (f *fetchStore) Partial() (*thlpb.Event, bool)    { return f.store.Partial() }
func (f *fetchStore) Append(evs ...*thlpb.Event) error { return f.store.Append(evs...) }
func (f *fetchStore) Sync() error                      { return f.store.Sync() }

// DropIncomplete removes fragments of a transaction that never completed.
func (f *fetchStore) DropIncomplete() error {
	_, err := f.store.DropIncomplete()
	return err
}
