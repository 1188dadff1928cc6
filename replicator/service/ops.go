package service

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/carbidedb/carbide/internal/position"
	"github.com/carbidedb/carbide/rpc/gen/thlpb"
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
	x, err := s.onlineMaster(ctx, "flush")
	if errors.Is(err, errTailFinal) {
		// The database died; its binlog files' tail is stored: final.
		if last, ok := s.store.Last(); ok {
			return int64(last.GetSeqno()), nil
		}
		return -1, nil
	}
	if err != nil {
		return -1, err
	}
	target, err := x.BinlogEnd(ctx)
	if err != nil {
		return -1, err
	}
	if err := waitExtracted(ctx, x, target); err != nil {
		return -1, fmt.Errorf("flush: %w", err)
	}
	if last, ok := s.store.Last(); ok {
		return int64(last.GetSeqno()), nil
	}
	return -1, nil
}

// waitExtracted waits until x has stored everything up to target: the
// last transaction read is past it, or reading stands past it between
// transactions (a new binlog file after a restart holds none). It wakes
// as extraction moves (a question of the concurrent-change check waits
// on it, holding an applier's locks).
func waitExtracted(ctx context.Context, x Extractor, target position.Position) error {
	reached := func() bool {
		st := x.Stats()
		return st.Position.Compare(target) >= 0 || st.Read.Compare(target) >= 0
	}
	for {
		if reached() {
			return nil
		}
		moved := x.Moved()
		if reached() {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the extractor has not reached %s yet: %w", target, ctx.Err())
		case <-moved:
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// errTailFinal: the master's database died and the tail of its binlog
// files is stored; nothing more comes until the database is back.
var errTailFinal = fmt.Errorf("%w: the database does not answer; this master stored the tail of its binlog files, and nothing more comes until it is back", ErrState)

// onlineMaster returns the extractor of this ONLINE master, waiting
// (within ctx) for a master reconnecting to its database (GOING-ONLINE
// after the database restarted); what needs it names the caller.
func (s *Service) onlineMaster(ctx context.Context, what string) (Extractor, error) {
	for {
		s.mu.Lock()
		role, state, x, tail := s.role, s.state, s.extractor, s.tailRead
		s.mu.Unlock()
		if role == RoleMaster && state == StateOnline && x != nil {
			return x, nil
		}
		if role == RoleMaster && tail {
			return nil, errTailFinal
		}
		if role != RoleMaster || state != StateGoingOnline {
			return nil, fmt.Errorf("%w: %s needs an ONLINE master; %s is %s on this host (%s)", ErrState, what, s.cfg.Name, state, role)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: %s needs an ONLINE master; %s is still %s", ErrState, what, s.cfg.Name, state)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Wait waits until seqno `applied` is in the database (appliedLastSeqno),
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

// Locate returns the last transaction this master extracted whose binlog
// position is at or before target (a backup's position), once extraction
// has passed target; ok is false when this lineage holds none. Events of
// the current lineage (from seqno epoch on, all extracted here) are in
// binlog order, so a binary search finds it.
func (s *Service) Locate(ctx context.Context, target position.Position) (ev *thlpb.Event, ok bool, err error) {
	x, err := s.onlineMaster(ctx, "locating a binlog position")
	if err != nil {
		return nil, false, err
	}
	if err := waitExtracted(ctx, x, target); err != nil {
		return nil, false, fmt.Errorf("%s: %w", s.cfg.Name, err)
	}
	last, has := s.store.Last()
	if !has {
		return nil, false, nil
	}
	at := func(seqno uint64) (*thlpb.Event, position.Position, error) {
		frags, err := s.store.Get(seqno)
		if err != nil {
			return nil, position.Position{}, err
		}
		if len(frags) == 0 {
			return nil, position.Position{}, fmt.Errorf("seqno %d: no event", seqno)
		}
		p, err := position.Parse(frags[len(frags)-1].GetEventId())
		return frags[len(frags)-1], p, err
	}
	lo, hi := last.GetEpoch(), last.GetSeqno() // the lineage is [epoch, last]
	if min, ok := s.store.MinSeqno(); ok && lo < min {
		lo = min
	}
	if last.GetSourceId() != s.cfg.Host {
		return nil, false, fmt.Errorf("%w: the last transaction in the THL of %s (seqno %d) was extracted by %s, not by this host", ErrState, s.cfg.Name, hi, last.GetSourceId())
	}
	// Find the last seqno in [lo, hi] at or before target.
	found := int64(-1)
	for lo <= hi {
		mid := lo + (hi-lo)/2
		_, p, err := at(mid)
		if err != nil {
			return nil, false, err
		}
		if p.Compare(target) <= 0 {
			found = int64(mid)
			lo = mid + 1
		} else {
			if mid == 0 {
				break
			}
			hi = mid - 1
		}
	}
	if found < 0 {
		return nil, false, nil
	}
	ev, _, err = at(uint64(found))
	return ev, err == nil, err
}

// SetPosition makes the OFFLINE service start after ev: its THL is
// emptied and its tracking row records ev as applied (tprovision, after a
// copy whose position is known).
func (s *Service) SetPosition(ctx context.Context, ev *thlpb.Event) error {
	s.mu.Lock()
	state := s.state
	s.mu.Unlock()
	if state != StateOffline && state != StateError {
		return fmt.Errorf("%w: service %s is %s; setting its position needs it offline (trepctl offline)", ErrState, s.cfg.Name, state)
	}
	a, err := s.openApplier(ctx)
	if err != nil {
		return err
	}
	defer a.Close()
	if err := a.SetPosition(ctx, ev); err != nil {
		return err
	}
	if err := s.resetStore(); err != nil {
		return err
	}
	s.dropResetMark()
	pos, ok := a.Position()
	s.mu.Lock()
	s.lastApply, s.hasApply, s.applyStale = pos, ok, false
	s.pending = nil
	if s.state == StateError {
		s.setState(StateOffline)
	}
	s.mu.Unlock()
	return nil
}

// DB returns how the service reaches its database.
func (s *Service) DB() (addr, user, password string) {
	return s.cfg.DBAddr, s.cfg.DBUser, s.cfg.DBPassword
}

// Datadir asks the service's database where its files are.
func (s *Service) Datadir(ctx context.Context) (string, error) {
	db, err := s.openDB()
	if err != nil {
		return "", err
	}
	defer db.Close()
	var dir string
	if err := db.QueryRowContext(ctx, "SELECT @@datadir").Scan(&dir); err != nil {
		return "", fmt.Errorf("read the database's datadir at %s: %w", s.cfg.DBAddr, err)
	}
	return dir, nil
}
