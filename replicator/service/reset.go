package service

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/carbidedb/carbide/replicator/apply"
)

// Reset deletes the THL and/or the tracking schema; the service must be
// offline.
func (s *Service) Reset(ctx context.Context, thlToo, db, forget bool) error {
	s.mu.Lock()
	state := s.state
	s.mu.Unlock()
	if state != StateOffline && state != StateError {
		return fmt.Errorf("%w: service %s is %s; reset needs it offline (trepctl offline)", ErrState, s.cfg.Name, state)
	}
	if db {
		a, err := s.newApplier()
		if err != nil {
			return err
		}
		defer a.Close()
		s.mu.Lock()
		role := s.role
		s.mu.Unlock()
		if role == RoleSlave && !forget {
			// Remember where this slave was (see resetMark).
			if err := a.Open(ctx); err != nil {
				return err
			}
			if p, ok := a.Position(); ok {
				if err := s.saveResetMark(p); err != nil {
					return err
				}
			}
		} else {
			s.dropResetMark()
		}
		if err := a.Reset(ctx); err != nil {
			return err
		}
		s.mu.Lock()
		s.lastApply, s.hasApply, s.applyStale = apply.Position{}, false, false
		s.mu.Unlock()
	}
	if forget {
		s.dropResetMark()
	}
	if thlToo {
		if err := s.resetStore(); err != nil {
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.store == nil {
		// The THL is still damaged (a reset without -thl): the service
		// stays OFFLINE:ERROR saying so, and online stays refused.
		return nil
	}
	s.pending = nil
	if s.state == StateError {
		s.setState(StateOffline)
	}
	return nil
}

// resetStore empties the THL; a damaged one is removed and made again.
func (s *Service) resetStore() error {
	if st := s.Store(); st != nil {
		return st.Reset()
	}
	entries, err := os.ReadDir(s.cfg.THLDir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(s.cfg.THLDir, e.Name())); err != nil {
			return err
		}
	}
	store, err := s.openStore()
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.store = store
	s.mu.Unlock()
	s.log.Info("damaged THL removed; the log starts empty")
	return nil
}
