package service

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/carbidedb/carbide/internal/position"
	"github.com/carbidedb/carbide/replicator/extract"
	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

// syncer syncs the store every interval while ctx lives.
func (s *Service) syncer(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			if err := s.store.Sync(); err != nil {
				s.log.Error("THL sync failed", "error", err)
			}
		case <-ctx.Done():
			_ = s.store.Sync()
			return
		}
	}
}

// runMaster extracts the local binlog into the THL.
func (s *Service) runMaster(ctx context.Context) error {
	spillDir, err := s.spillDir()
	if err != nil {
		return err
	}
	x, err := s.cfg.Stages.NewExtractor(extract.Config{Addr: s.cfg.DBAddr, User: s.cfg.DBUser, Password: s.cfg.DBPassword, SpillDir: spillDir,
		Service: s.cfg.Name, SourceID: s.cfg.Host, Logger: s.log})
	if err != nil {
		return err
	}
	defer x.Close()
	notes, err := x.Check(ctx)
	if err != nil {
		return err
	}
	for _, n := range notes {
		s.log.Warn("extractor check", "note", n)
	}
	tracker, err := s.openApplier(ctx)
	if err != nil {
		return err
	}
	defer tracker.Close()
	dropped, err := s.dropUnapplied(ctx, tracker)
	if err != nil {
		return err
	}
	if err := s.dropIncomplete(); err != nil {
		return err
	}
	var from, prepared position.Position
	var next, epoch uint64
	last, ok := s.store.Last()
	switch {
	case ok && last.GetSourceId() == s.cfg.Host:
		// This host extracted the last stored event: continue after it.
		if from, err = position.Parse(last.GetEventId()); err != nil {
			return fmt.Errorf("last stored event %d: %w", last.GetSeqno(), err)
		}
		// XA transactions prepared then are read again from the binlog.
		if p := last.GetPreparedFrom(); p != "" {
			if prepared, err = position.Parse(p); err != nil {
				return fmt.Errorf("last stored event %d: prepared_from: %w", last.GetSeqno(), err)
			}
		}
		next, epoch = last.GetSeqno()+1, last.GetEpoch()
	default:
		// A new lineage: from the current end of the binlog, with a new
		// epoch starting at the next seqno.
		switch {
		case ok:
			next = last.GetSeqno() + 1
		case dropped != nil:
			next = dropped.From // the THL held only what was dropped
		}
		epoch = next
		if from, err = x.CurrentPosition(ctx); err != nil {
			return err
		}
	}
	s.mu.Lock()
	if s.fromEvent != "" {
		// Exactly there: XA transactions prepared before it are not read
		// (their XA COMMIT stops extraction, naming them).
		from, _ = position.Parse(s.fromEvent)
		prepared = position.Position{}
		s.fromEvent = ""
	}
	s.extractor, s.applier = x, tracker
	s.mu.Unlock()
	s.log.Info("extracting", "from", from.String(), "seqno", next, "epoch", epoch)
	// Every goroutine of this run ends before it returns (defers run in
	// reverse): the last record is made before the tracker closes, the
	// last sync before the next run appends.
	syncCtx, stopSync := context.WithCancel(ctx)
	synced := make(chan struct{})
	go func() { defer close(synced); s.syncer(syncCtx, 20*time.Millisecond) }()
	defer func() { stopSync(); <-synced }()
	done, recorded := make(chan struct{}), make(chan struct{})
	defer func() { close(done); <-recorded }()
	go func() { defer close(recorded); s.recordExtracted(done, tracker) }()
	s.goOnline()
	// The extractor sends a large transaction in several calls: its
	// fragments share seqno next, which moves on after its last.
	send := func(frags []*thlpb.Event) error {
		for _, f := range frags {
			f.Seqno, f.Epoch = next, epoch
		}
		before := s.store.AppendedBytes()
		if err := s.store.Append(frags...); err != nil {
			return err
		}
		var done uint64
		if len(frags) > 0 && frags[len(frags)-1].GetLastFrag() {
			done = 1
			next++
		}
		s.counts.add(done, s.store.AppendedBytes()-before)
		return nil
	}
	err = x.RunFrom(ctx, from, prepared, send)
	if ctx.Err() == nil && dbUnreachable(err) && s.databaseDown() {
		s.readTail(ctx, x, from, prepared, send)
	}
	return err
}

// dropIncomplete removes from the end of the THL the fragments of a
// transaction whose last never came: the extraction that stored them
// stopped between two parts of it (a large transaction is stored in
// several), or the fetch of a slave this host was stopped inside one.
// Extraction continues after the last complete transaction, so it reads
// that one again from the binlog.
func (s *Service) dropIncomplete() error {
	p, err := s.store.DropIncomplete()
	if err != nil {
		return fmt.Errorf("drop the unfinished transaction at the end of the THL: %w", err)
	}
	if p != nil {
		s.log.Warn("the THL ended inside a transaction (its extraction or fetch stopped between two parts of it): dropped its fragments before extracting",
			"seqno", p.GetSeqno(), "fragments", p.GetFragno()+1, "event_id", p.GetEventId(), "source_id", p.GetSourceId())
	}
	return nil
}

// databaseDown reports whether the local database refuses connections:
// its process is gone, so its binlog files no longer grow.
func (s *Service) databaseDown() bool {
	c, err := net.DialTimeout("tcp", s.cfg.DBAddr, time.Second)
	if err == nil {
		c.Close()
		return false
	}
	return errors.Is(err, syscall.ECONNREFUSED)
}

// readTail stores what the binlog files of the dead database hold beyond
// the last stored transaction (or from, when this run stored nothing):
// transactions its clients saw committed that the stream had not passed
// on yet. A failover's candidate then fetches them (Flush says the THL is
// final).
func (s *Service) readTail(ctx context.Context, x Extractor, from, prepared position.Position, send func([]*thlpb.Event) error) {
	// A transaction stored in part (RunFrom stopped between two of its
	// parts) would make the store refuse the tail's first fragment: the
	// tail reads it again, whole.
	if err := s.dropIncomplete(); err != nil {
		s.log.Error("the database is down and the THL could not be prepared for its binlog files; transactions it committed after the last stored one may be on this host alone", "error", err)
		return
	}
	if last, ok := s.store.Last(); ok && last.GetSourceId() == s.cfg.Host {
		if p, err := position.Parse(last.GetEventId()); err == nil {
			from = p
			prepared = position.Position{}
			if pf := last.GetPreparedFrom(); pf != "" {
				prepared, _ = position.Parse(pf)
			}
		}
	}
	if _, err := x.RunTail(ctx, from, prepared, send); err != nil {
		s.log.Error("the database is down and its binlog files could not be read; transactions it committed after the last stored one may be on this host alone", "error", err)
		return
	}
	if err := s.store.Sync(); err != nil {
		s.log.Error("THL sync after the binlog tail", "error", err)
		return
	}
	s.mu.Lock()
	s.tailRead = true
	s.mu.Unlock()
}

// recordExtracted keeps the master's tracking row at the last stored
// transaction this host extracted (every second and when extraction
// stops): should this host become a slave, it applies from there on. A
// transaction another master extracted and this host stored without
// applying (the tail a forced failover gave up) is not in this database,
// so the tracking row never claims it: until this master extracts its
// own, the row stays at what it applied as a slave.
func (s *Service) recordExtracted(done <-chan struct{}, tracker Applier) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var recorded uint64
	has := false
	record := func() {
		last, ok := s.store.Last()
		if !ok || last.GetSourceId() != s.cfg.Host || (has && last.GetSeqno() == recorded) {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := tracker.SetPosition(ctx, last); err != nil {
			s.log.Warn("record extracted position", "error", err)
			return
		}
		recorded, has = last.GetSeqno(), true
	}
	for {
		select {
		case <-t.C:
			record()
		case <-done:
			record()
			return
		}
	}
}

// ownEvents lists the seqnos from `from` on that this host extracted
// itself (it was their master): they are in its database already, so a
// slave records them as applied instead of applying them again.
func (s *Service) ownEvents(ctx context.Context, from uint64) []uint64 {
	r, err := s.store.NewReader(from)
	if err != nil {
		return nil
	}
	defer r.Close()
	var out []uint64
	for {
		rctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		ev, err := r.Next(rctx)
		cancel()
		if err != nil || ev.GetSourceId() != s.cfg.Host {
			return out
		}
		if ev.GetLastFrag() {
			out = append(out, ev.GetSeqno())
		}
	}
}

// spillDir makes the service's spill directory and removes the spill
// files a run killed before its end left there; "" without SpillDir.
func (s *Service) spillDir() (string, error) {
	dir := s.cfg.SpillDir
	if dir == "" {
		return "", nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("make the spill directory for large transactions: %w", err)
	}
	left, _ := filepath.Glob(filepath.Join(dir, "*.spill"))
	for _, f := range left {
		if err := os.Remove(f); err == nil {
			s.log.Info("removed a spill file an earlier run left", "file", f)
		}
	}
	return dir, nil
}
