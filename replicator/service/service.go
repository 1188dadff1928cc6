package service

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"
	"google.golang.org/grpc"

	"github.com/carbidedb/carbide/internal/position"
	"github.com/carbidedb/carbide/replicator/apply"
	"github.com/carbidedb/carbide/replicator/consistency"
	"github.com/carbidedb/carbide/replicator/stream"
	"github.com/carbidedb/carbide/replicator/thl"
)

// Sentinel errors, mapped to gRPC codes by the control server.
var (
	ErrState = errors.New("service: not allowed in this state")
	ErrRole  = errors.New("service: not allowed in this role")
	ErrInput = errors.New("service: bad request")
)

// Config configures one service.
type Config struct {
	Name     string // the service (the origin site's name)
	Host     string // this host: source_id of extracted events
	Site     string // this host's site (the applier's causal waits)
	Role     string // initial role
	Topology string // clustered or cluster-slave, for status
	// Sources are the THL servers ("host:port") a slave reads, in order.
	Sources []string
	// Resolve turns "host:port" into the address to dial; nil: as is.
	Resolve func(string) string
	// ListenAddr is where this replicator's THL server listens, as shown
	// in masterListenUri ("east1:2112").
	ListenAddr string
	// SSL makes URIs thls:// (TLS itself is the transport's business).
	SSL bool
	// DialOptions secure the THL client's connections (TLS, token).
	DialOptions []grpc.DialOption
	// DBAddr, DBUser and DBPassword reach the local database.
	DBAddr, DBUser, DBPassword string
	THLDir                     string
	BlockSize                  int
	BlockTime                  time.Duration
	Channels                   int
	// ConflictPolicy and ConflictSiteOrder resolve the conflicts the
	// applier meets (apply.Conflicts); the policy is stop when empty.
	ConflictPolicy    apply.Policy
	ConflictSiteOrder []string
	// Deleted reads another site's deletes on this host, for the
	// applier's concurrent-delete check (apply.Config.Deleted).
	Deleted   apply.DeletedFunc
	Retention time.Duration
	RMIPort   int
	// SourceOrder, when set, ranks a slave's sources now (see
	// stream.ClientConfig.Order).
	SourceOrder func(ctx context.Context, sources []string) []string
	// SpillDir, when set, is where the extractor spills large
	// transactions: a directory of this service alone, emptied of the
	// files a killed run left whenever extraction starts (the extractor's
	// default is the system's temporary directory, shared).
	SpillDir string
	// RoleFile, when set, keeps the role and sources setrole gave: they
	// survive a restart and override Role and Sources.
	RoleFile string
	// Stages makes the pipeline's stages; the zero value makes the real
	// ones.
	Stages Stages
	Logger *slog.Logger
}

// Validate fills defaults and checks c.
func (c *Config) Validate() error {
	switch {
	case c.Name == "":
		return fmt.Errorf("%w: a service needs a name", ErrInput)
	case c.Role != RoleMaster && c.Role != RoleSlave:
		return fmt.Errorf("%w: role must be master or slave, not %q", ErrInput, c.Role)
	case c.THLDir == "" || c.DBAddr == "":
		return fmt.Errorf("%w: service %s needs a THL directory and a database address", ErrInput, c.Name)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Retention <= 0 {
		c.Retention = 7 * 24 * time.Hour
	}
	c.Stages = c.Stages.withDefaults()
	return nil
}

// Service is one replication service.
type Service struct {
	cfg   Config
	store *thl.Store
	log   *slog.Logger
	start time.Time

	mu         sync.Mutex
	state      string
	stateSince time.Time
	role       string
	sources    []string
	pending    *pendingError
	cancel     context.CancelFunc
	done       chan struct{}
	extractor  Extractor
	applier    Applier // a slave's, or a master's tracker
	client     THLClient
	// lastApply is the tracking row: as the applier committed it, or as
	// read from the database; applyStale asks Status to read it again
	// once no run is going (see committed in status.go).
	lastApply   apply.Position
	hasApply    bool
	applyStale  bool
	applyReadAt time.Time
	applyRead   bool // a read is under way
	skip        []uint64
	fromEvent   string
	// tailRead: this master's database died and the binlog files' tail
	// is in the THL; what it stored is final until the database is back.
	tailRead bool
	dropped  *Dropped // the THL tail this master dropped (unapplied.go)

	counts  counters // for metrics (counters.go)
	causal  apply.CausalCounters
	checks  consistency.Registry // consistency checks' results here (check.go)
	deletes deleteIndex          // the rows the THL's transactions deleted (deleted.go)
	// conflicts is the count of the tracking schema's conflict records,
	// as the last applier saw it (status: conflicts).
	conflicts uint64
}

type pendingError struct {
	message string
	seqno   int64
	eventID string
	sql     string
}

// New opens the service's THL store; the service starts OFFLINE:NORMAL.
func New(cfg Config) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	now := time.Now()
	s := &Service{cfg: cfg, log: cfg.Logger.With("service", cfg.Name), start: now,
		state: StateOffline, stateSince: now, role: cfg.Role, sources: append([]string(nil), cfg.Sources...), applyStale: true}
	if err := s.loadRole(); err != nil {
		return nil, err
	}
	store, err := s.openStore()
	switch {
	case errors.Is(err, thl.ErrCorrupt):
		// The service exists, OFFLINE:ERROR, so the operator can see why
		// and reset its THL (trepctl reset -thl) with the replicator up.
		s.state = StateError
		s.pending = &pendingError{seqno: -1, message: err.Error()}
		s.log.Error("THL damaged", "error", err)
	case err != nil:
		return nil, err
	}
	s.store = store
	return s, nil
}

func (s *Service) openStore() (*thl.Store, error) {
	// A replicator killed a moment ago may still hold the store's lock
	// while its threads exit: wait a little for it.
	deadline := time.Now().Add(10 * time.Second)
	store, err := thl.Open(thl.Config{Dir: s.cfg.THLDir, Logger: s.log})
	for errors.Is(err, thl.ErrLocked) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		store, err = thl.Open(thl.Config{Dir: s.cfg.THLDir, Logger: s.log})
	}
	if err != nil {
		return nil, err
	}
	for _, r := range store.Repairs() {
		s.log.Warn("THL repaired on open", "repair", fmt.Sprint(r))
	}
	return store, nil
}

// Maintain purges THL segments older than the retention (thl-log-retention)
// every interval until ctx ends. A slave keeps what it has not applied yet.
func (s *Service) Maintain(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		s.purgeOld()
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
	}
}

func (s *Service) purgeOld() {
	store := s.Store()
	if store == nil {
		return
	}
	keep := uint64(1<<63 - 1)
	s.mu.Lock()
	if s.role == RoleSlave {
		keep = 0
		if s.applier != nil {
			s.lastApply, s.hasApply = s.applier.Position()
		}
		if s.hasApply {
			keep = s.lastApply.Seqno + 1
		}
	}
	s.mu.Unlock()
	n, err := store.PurgeOlderThan(s.cfg.Retention, keep)
	switch {
	case err != nil:
		s.log.Warn("THL purge by retention failed", "error", err)
	case n > 0:
		s.log.Info("THL purged by retention", "files", n, "retention", s.cfg.Retention)
	}
}

// Name returns the service's name.
func (s *Service) Name() string { return s.cfg.Name }

// Store returns the service's THL store (served by the THL server); nil
// while its THL is damaged and not yet reset.
func (s *Service) Store() *thl.Store {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.store
}

// Role returns the current role.
func (s *Service) Role() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.role
}

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

// OnlineOptions are trepctl online's options.
type OnlineOptions struct {
	SkipSeqnos []uint64
	FromEvent  string
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
		return fmt.Errorf("%w: the THL of %s is damaged: %s", ErrState, s.cfg.Name, s.pending.message)
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
	p := &pendingError{message: err.Error(), seqno: -1}
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

// Close takes the service offline and closes its store.
func (s *Service) Close() error {
	_ = s.Offline(context.Background())
	if st := s.Store(); st != nil {
		return st.Close()
	}
	return nil
}

// SetRole changes the role (and a slave's source) while OFFLINE.
func (s *Service) SetRole(role, uri string) error {
	if role != RoleMaster && role != RoleSlave {
		return fmt.Errorf("%w: role must be master or slave, not %q", ErrInput, role)
	}
	var sources []string
	if uri != "" {
		addr, err := ParseURI(uri)
		if err != nil {
			return err
		}
		sources = []string{addr}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != StateOffline {
		return fmt.Errorf("%w: service %s is %s; setrole needs it OFFLINE:NORMAL (trepctl offline)", ErrState, s.cfg.Name, s.state)
	}
	if err := s.saveRole(role, sources); err != nil {
		return err
	}
	s.role, s.dropped = role, nil
	if sources != nil {
		s.sources = sources
	}
	return nil
}

// ParseURI turns thl://host:port/ (or thls://) into host:port.
func ParseURI(uri string) (string, error) {
	rest, ok := strings.CutPrefix(uri, "thl://")
	if !ok {
		rest, ok = strings.CutPrefix(uri, "thls://")
	}
	if !ok {
		return "", fmt.Errorf("%w: %q is not a THL URI like thl://east1:2112/", ErrInput, uri)
	}
	rest = strings.TrimSuffix(rest, "/")
	if _, _, err := net.SplitHostPort(rest); err != nil {
		return "", fmt.Errorf("%w: %q is not a THL URI like thl://east1:2112/", ErrInput, uri)
	}
	return rest, nil
}

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
	s.pending = nil
	if s.state == StateError {
		s.setState(StateOffline)
	}
	s.mu.Unlock()
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

func (s *Service) newApplier() (Applier, error) {
	return s.cfg.Stages.NewApplier(apply.Config{Addr: s.cfg.DBAddr, User: s.cfg.DBUser, Password: s.cfg.DBPassword, Service: s.cfg.Name,
		BlockSize: s.cfg.BlockSize, BlockTime: s.cfg.BlockTime, Channels: s.cfg.Channels, Site: s.cfg.Site, Causal: &s.causal, Checks: &s.checks, Deleted: s.cfg.Deleted, Logger: s.log,
		Conflicts: apply.Conflicts{Policy: s.cfg.ConflictPolicy, SiteOrder: s.cfg.ConflictSiteOrder, OnConflict: s.counts.conflict}})
}

// openApplier returns an applier connected to the database, its tracking
// schema made and its position read.
func (s *Service) openApplier(ctx context.Context) (Applier, error) {
	a, err := s.newApplier()
	if err != nil {
		return nil, err
	}
	if err := a.Open(ctx); err != nil {
		a.Close()
		return nil, err
	}
	return a, nil
}

func (s *Service) openDB() (*sql.DB, error) {
	mc := mysql.NewConfig()
	mc.User, mc.Passwd, mc.Net, mc.Addr = s.cfg.DBUser, s.cfg.DBPassword, "tcp", s.cfg.DBAddr
	mc.Timeout = 5 * time.Second
	conn, err := mysql.NewConnector(mc)
	if err != nil {
		return nil, err
	}
	return sql.OpenDB(conn), nil
}
