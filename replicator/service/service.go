package service

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/carbidedb/carbide/internal/consistency"
	"github.com/carbidedb/carbide/replicator/apply"
	"github.com/carbidedb/carbide/replicator/thl"
	"github.com/carbidedb/carbide/rpc/gen/replicatorpb"
)

// Sentinel errors, mapped to gRPC codes by the control server.
var (
	ErrState = errors.New("service: not allowed in this state")
	ErrRole  = errors.New("service: not allowed in this role")
	ErrInput = errors.New("service: bad request")
)

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
	changes changeIndex          // the rows the THL's transactions changed (deleted.go)
	// conflicts is the count of the tracking schema's conflict records,
	// as the last applier saw it (status: conflicts).
	conflicts uint64
}

type pendingError struct {
	kind    replicatorpb.PendingErrorKind
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
		s.pending = &pendingError{kind: replicatorpb.PendingErrorKind_PENDING_ERROR_KIND_THL, seqno: -1, message: err.Error()}
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

// OnlineOptions are trepctl online's options.
type OnlineOptions struct {
	SkipSeqnos []uint64
	FromEvent  string
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

func (s *Service) newApplier() (Applier, error) {
	return s.cfg.Stages.NewApplier(apply.Config{Addr: s.cfg.DBAddr, User: s.cfg.DBUser, Password: s.cfg.DBPassword, Service: s.cfg.Name,
		BlockSize: s.cfg.BlockSize, BlockTime: s.cfg.BlockTime, Channels: s.cfg.Channels, Site: s.cfg.Site, Causal: &s.causal, Checks: &s.checks, Deleted: s.cfg.Deleted, Positions: s.cfg.Positions, Logger: s.log,
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
