package service

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/carbidedb/carbide/replicator/extract"
)

// Heartbeat writes a heartbeat row on the master; it travels like any
// transaction, and its arrival time on each host is the end-to-end latency.
func (s *Service) Heartbeat(ctx context.Context, name string) error {
	s.mu.Lock()
	role, state := s.role, s.state
	s.mu.Unlock()
	if role != RoleMaster {
		return fmt.Errorf("%w: heartbeat runs on the master of %s; this host is a slave", ErrRole, s.cfg.Name)
	}
	if state != StateOnline {
		return fmt.Errorf("%w: service %s is %s; heartbeat needs it ONLINE", ErrState, s.cfg.Name, state)
	}
	db, err := s.openDB()
	if err != nil {
		return err
	}
	defer db.Close()
	q := "INSERT INTO `tungsten_" + s.cfg.Name + "`.heartbeat (id, seqno, eventid, source_tstamp, salt, name) VALUES (1, 0, '', NOW(6), ?, ?) " +
		"ON DUPLICATE KEY UPDATE source_tstamp = NOW(6), salt = VALUES(salt), name = VALUES(name)"
	_, err = db.ExecContext(ctx, q, rand.Int64N(1<<40), name)
	return err
}

// Flush waits until everything in the master's binlog now is stored in
// the THL, and returns the last stored seqno.
func (s *Service) Flush(ctx context.Context) (int64, error) {
	// A master reconnecting to its database (GOING-ONLINE after the
	// database restarted) is waited for, within ctx.
	var x *extract.Extractor
	for {
		s.mu.Lock()
		role, state := s.role, s.state
		x = s.extractor
		s.mu.Unlock()
		if role == RoleMaster && state == StateOnline && x != nil {
			break
		}
		if role != RoleMaster || state != StateGoingOnline {
			return -1, fmt.Errorf("%w: flush needs an ONLINE master; %s is %s", ErrState, s.cfg.Name, state)
		}
		select {
		case <-ctx.Done():
			return -1, fmt.Errorf("%w: flush needs an ONLINE master; %s is still %s", ErrState, s.cfg.Name, state)
		case <-time.After(20 * time.Millisecond):
		}
	}
	target, err := x.CurrentPosition(ctx)
	if err != nil {
		return -1, err
	}
	for {
		// Past the target: the last transaction read, or where reading
		// stands between transactions (a new binlog file after a restart
		// holds none).
		if st := x.Stats(); st.Position.Compare(target) >= 0 || st.Read.Compare(target) >= 0 {
			if last, ok := s.store.Last(); ok {
				return int64(last.GetSeqno()), nil
			}
			return -1, nil
		}
		select {
		case <-ctx.Done():
			return -1, fmt.Errorf("flush: the extractor has not reached %s yet: %w", target, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Wait waits until seqno `applied` is applied (or stored, on a master),
// or until the service is in `state`.
func (s *Service) Wait(ctx context.Context, applied int64, state string) error {
	for {
		st := s.Status()
		if (applied >= 0 && st.GetAppliedLastSeqno() >= applied) || (state != "" && st.GetState() == state) {
			return nil
		}
		if state == "" && st.GetState() == StateError {
			return fmt.Errorf("service %s is OFFLINE:ERROR: %s", s.cfg.Name, st.GetPendingError())
		}
		select {
		case <-ctx.Done():
			what := fmt.Sprintf("seqno %d (applied: %d)", applied, st.GetAppliedLastSeqno())
			if state != "" {
				what = fmt.Sprintf("state %s (now %s)", state, st.GetState())
			}
			return fmt.Errorf("timed out waiting for %s", what)
		case <-time.After(20 * time.Millisecond):
		}
	}
}
