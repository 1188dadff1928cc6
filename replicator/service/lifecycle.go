package service

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/carbidedb/carbide/internal/position"
	"github.com/carbidedb/carbide/replicator/apply"
	"github.com/carbidedb/carbide/replicator/stream"
	"github.com/carbidedb/carbide/replicator/thl"
	"github.com/carbidedb/carbide/rpc/gen/replicatorpb"
)

// setState moves the service to state (s.mu held).
func (s *Service) setState(state string) {
	if s.state != state {
		s.state, s.stateSince = state, time.Now()
		s.log.Info("state", "state", state)
	}
}

// State returns the current state.
func (s *Service) State() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state
}

// Online starts the pipeline. It returns once it is started; the state
// is GOING-ONLINE:SYNCHRONIZING until it runs.
func (s *Service) Online(opts OnlineOptions) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch s.state {
	case StateOnline, StateGoingOnline:
		if len(opts.SkipSeqnos) > 0 || opts.FromEvent != "" {
			return fmt.Errorf("%w: service %s is %s; put it offline before online -skip-seqno or -from-event", ErrState, s.cfg.Name, s.state)
		}
		return nil
	case StateGoingOffline:
		return fmt.Errorf("%w: service %s is going offline; wait for OFFLINE:NORMAL", ErrState, s.cfg.Name)
	}
	if opts.FromEvent != "" {
		if s.role != RoleMaster {
			return fmt.Errorf("%w: -from-event is for a master; %s is a slave", ErrRole, s.cfg.Name)
		}
		if _, err := position.Parse(opts.FromEvent); err != nil {
			return fmt.Errorf("%w: %v", ErrInput, err)
		}
	}
	if s.store == nil {
		why := "it could not be opened"
		if s.pending != nil {
			why = s.pending.message
		}
		return fmt.Errorf("%w: the THL of %s is damaged: %s; reset it (trepctl reset -thl)", ErrState, s.cfg.Name, why)
	}
	s.pending = nil
	s.skip, s.fromEvent = opts.SkipSeqnos, opts.FromEvent
	s.setState(StateGoingOnline)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	s.cancel, s.done = cancel, done
	role := s.role
	go func() {
		defer close(done)
		var err error
		if role == RoleMaster {
			err = s.retryUnreachable(ctx, s.runMaster)
		} else {
			for {
				if err = s.retryUnreachable(ctx, s.runSlave); !errors.Is(err, errNewHistory) && !errors.Is(err, errReapply) {
					break
				}
			}
		}
		s.finish(ctx, err)
	}()
	return nil
}

// finish records how the pipeline ended.
func (s *Service) finish(ctx context.Context, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.applier != nil {
		s.lastApply, s.hasApply = s.applier.Position()
	}
	// What the run committed is what the database holds, unless its last
	// commit failed after the database had it: read it when next asked.
	s.applyStale = true
	if s.applier != nil {
		s.conflicts = s.applier.Conflicts()
	}
	s.extractor, s.applier, s.client = nil, nil, nil
	if ctx.Err() != nil || err == nil {
		s.setState(StateOffline)
		return
	}
	p := &pendingError{message: err.Error(), seqno: -1, kind: pendingKind(err)}
	var ae *apply.Error
	var le *stream.LimitError
	if errors.As(err, &le) {
		p.seqno = int64(le.Seqno)
	}
	if errors.As(err, &ae) {
		p.seqno, p.eventID, p.sql = int64(ae.Seqno), ae.EventID, ae.SQL
		p.message = fmt.Sprintf("Event application failed: seqno=%d fragno=%d message=%v", ae.Seqno, ae.Fragno, ae.Err)
	}
	s.pending = p
	s.counts.errors.Add(1)
	s.log.Error("pipeline failed", "error", err)
	s.setState(StateError)
}

// fail ends the pipeline with err from inside it.
func (s *Service) goOnline() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tailRead = false
	if s.state == StateGoingOnline {
		s.setState(StateOnline)
	}
}

// Offline stops the pipeline and waits for it.
func (s *Service) Offline(ctx context.Context) error {
	s.mu.Lock()
	cancel, done := s.cancel, s.done
	switch s.state {
	case StateOffline:
		s.mu.Unlock()
		return nil
	case StateError:
		if s.store != nil {
			s.setState(StateOffline)
		}
		s.mu.Unlock()
		return nil
	}
	s.setState(StateGoingOffline)
	s.mu.Unlock()
	if cancel != nil {
		cancel()
		select {
		case <-done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s.mu.Lock()
	s.setState(StateOffline)
	s.mu.Unlock()
	return nil
}

// pendingKind is the kind of error that stopped a run, for programs
// (the manager's recover decides on it).
func pendingKind(err error) replicatorpb.PendingErrorKind {
	var ae *apply.Error
	switch {
	case errors.Is(err, stream.ErrDiverged):
		return replicatorpb.PendingErrorKind_PENDING_ERROR_KIND_DIVERGED
	case errors.Is(err, stream.ErrTooLarge):
		return replicatorpb.PendingErrorKind_PENDING_ERROR_KIND_TOO_LARGE
	case errors.Is(err, thl.ErrCorrupt):
		return replicatorpb.PendingErrorKind_PENDING_ERROR_KIND_THL
	case errors.As(err, &ae):
		return replicatorpb.PendingErrorKind_PENDING_ERROR_KIND_APPLY
	}
	return replicatorpb.PendingErrorKind_PENDING_ERROR_KIND_UNSPECIFIED
}
