package apply

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/carbidedb/carbide/internal/budget"

	"github.com/go-sql-driver/mysql"

	"github.com/carbidedb/carbide/internal/consistency"
	"github.com/carbidedb/carbide/replicator/origin"
	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

// sessionSQLMode is the applier's sql_mode: values come from rows the
// source accepted, so nothing is re-validated (no strict mode), zero is a
// value and not "next auto-increment", and backslash escapes work.
const sessionSQLMode = "NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION"

// Config configures an Applier.
type Config struct {
	// Addr, User and Password reach the local database.
	Addr, User, Password string
	// Service names the replication service; its tracking schema is
	// tungsten_<Service>.
	Service string
	// BlockSize and BlockTime bound one block commit: at most BlockSize
	// transactions, open at most BlockTime. A block also commits as soon
	// as no further event is waiting.
	BlockSize int
	BlockTime time.Duration
	// MaxLinger bounds how long an open block waits for more transactions
	// when none is queued and the database is slow (see linger).
	MaxLinger time.Duration
	// QueueSize bounds the events read ahead of the database, and
	// QueueBytes their bytes as stored in the THL (one event always
	// passes; decoded, they take five to ten times as much). Defaults
	// 1024 and 8 MiB.
	QueueSize  int
	QueueBytes int
	// Channels is how many blocks may apply at once (parallel apply with
	// commits in seqno order); 1 applies serially.
	Channels int
	// BinlogRows applies every row change from its source's binlog
	// events (BINLOG statements), not only those of transactions that
	// touch a table with triggers.
	BinlogRows bool
	// Site is this host's site: a transaction that depends on the site's
	// own service (Event.after) needs no wait on its primary (after.go).
	Site string
	// Causal, when set, counts the causal-order checks and holds.
	Causal *CausalCounters
	// Conflicts configures conflict detection and resolution (conflict.go).
	Conflicts Conflicts
	// Deleted, when set, reads another site's changes from its THL on
	// this host: a change of a row it changed concurrently is a conflict
	// (deleted.go).
	Deleted DeletedFunc
	// Positions, when set, reads what another site's DELETEs had applied
	// of a third (fkcrossed.go).
	Positions PositionsFunc
	// Checks, when set, receives the checksums of a consistency check's
	// markers this applier meets (checkmark.go).
	Checks *consistency.Registry
	Logger *slog.Logger
	Now    func() time.Time
}

// DefaultConfig returns the defaults: blocks of 10 transactions or 100 ms.
func DefaultConfig() Config {
	return Config{BlockSize: 10, BlockTime: 100 * time.Millisecond, MaxLinger: 50 * time.Millisecond, QueueSize: 1024, QueueBytes: 8 << 20, Channels: 1}
}

// Validate checks c and fills zero fields with defaults.
func (c *Config) Validate() error {
	d := DefaultConfig()
	switch {
	case c.Addr == "":
		return fmt.Errorf("%w: no database address", ErrConfig)
	case c.Service == "":
		return fmt.Errorf("%w: no service name", ErrConfig)
	case c.BlockSize < 0 || c.BlockTime < 0 || c.QueueSize < 0 || c.QueueBytes < 0 || c.Channels < 0 || c.Channels > 64:
		return fmt.Errorf("%w: block size, block time and queue size must not be negative, channels from 1 to 64", ErrConfig)
	}
	if err := c.Conflicts.validate(); err != nil {
		return err
	}
	if c.Channels == 0 {
		c.Channels = d.Channels
	}
	if c.BlockSize == 0 {
		c.BlockSize = d.BlockSize
	}
	if c.BlockTime == 0 {
		c.BlockTime = d.BlockTime
	}
	if c.MaxLinger == 0 {
		c.MaxLinger = d.MaxLinger
	}
	if c.QueueSize == 0 {
		c.QueueSize = d.QueueSize
	}
	if c.QueueBytes == 0 {
		c.QueueBytes = d.QueueBytes
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

// Applier applies THL events to the local database.
type Applier struct {
	cfg       Config
	db        *sql.DB
	connector driver.Connector // for endOrphans' own connection
	conn      *sql.Conn
	meta      *metaCache

	mu       sync.Mutex
	pos      Position
	hasPos   bool
	skip     map[uint64]bool
	applied  atomic.Uint64 // transactions applied since Open
	recovery bool          // the next transaction is the first after a restart

	// pool and deps exist while Run runs with Channels > 1.
	pool *pool
	deps *deps
	// queued is the last complete transaction handed to a block during
	// this Run (committed or not); nil at the start of Run.
	queued *thlpb.Event
	// commitTime is a moving average of how long block commits take (ns).
	commitTime atomic.Int64
	// maxQuery is the database's max_allowed_packet: no query sent is
	// longer (see fit).
	maxQuery int
	// session is the main connection's id in the database (orphans.go).
	session int64
	// compound: blocks of row changes go as one compound statement each
	// (send.go); the database is MariaDB and has not refused one
	// (compoundOff).
	compound, compoundOff atomic.Bool
	// tail is the buffer of a serial commit's tracking update.
	tail []byte
	// after is what Run knows of the other streams (after.go); waiting
	// says what it holds a transaction for.
	after   afterState
	waiting atomic.Value
	// detect: conflict detection is on (match.go); guard is the statement
	// checking a row count in this server's multi-statement scripts.
	detect bool
	guard  string
	rule   rule
	// resolving is the transaction being applied in conflict mode, while
	// its fragments arrive (conflictmode.go).
	resolving *resolving
	// deletedWarned is when a failed concurrent-change question was last
	// logged (UnixNano; deleted.go).
	deletedWarned atomic.Int64
	// conflicts counts the conflicts recorded in the tracking schema;
	// resolvedBlocks the blocks applied again in conflict mode, and
	// resolvedTxns their transactions.
	conflicts, resolvedBlocks, resolvedTxns atomic.Uint64
	// splitDepth is how deep splitBlock is (its parts commit, and may
	// split again); denseLeft how many more blocks that meet a conflict
	// split straight into single transactions, or go whole to conflict
	// mode (denseWhole), after a split found half or more of a block in
	// conflict (split.go).
	splitDepth, denseLeft int
	denseWhole            bool
	unionReads            atomic.Uint64 // locking reads sent as a UNION ALL (tests)
	prechecks             atomic.Uint64 // scripts verifying their rows in their own statement (tests)
	lockingReads          atomic.Uint64 // scripts verified by locking reads before them (tests)
	guardsPassed          atomic.Uint64 // blocks whose ask guard found no question needed (tests)
	noPrecheck            bool          // verify by locking reads only (tests)
	// afterResolve, set by tests, runs after each transaction conflict
	// mode commits; an error stops the run there.
	afterResolve func(seqno uint64) error
}

// lingerFloor: commits faster than this mean an idle database, where a
// block commits as soon as nothing else is queued.
const lingerFloor = 2 * time.Millisecond

// lingerFactor times the average commit is how long a block lingers on a
// slow database (measured on the cross-site benchmark: 2× left p99 at
// ~200 ms, 4× brought it to 86-206 ms, 8× 71-169 ms, no linger 290-365 ms).
const lingerFactor = 4

// linger is how long an open block waits for more transactions when none
// is queued: nothing while commits are fast (a replica keeps up: every
// transaction is applied at once), lingerFactor times the average commit
// time when the database is slow, up to MaxLinger. A slow database is a busy machine;
// fewer, larger blocks then cost it fewer commits, round trips and wake-ups
// per transaction, which is what brings the latency down (docs/
// architecture.md, "Block commit").
func (a *Applier) linger() time.Duration {
	t := time.Duration(a.commitTime.Load())
	if t < lingerFloor {
		return 0
	}
	return min(lingerFactor*t, a.cfg.MaxLinger)
}

// timed records how long one block commit took.
func (a *Applier) timed(d time.Duration) {
	old := a.commitTime.Load()
	a.commitTime.Store(old + (int64(d)-old)/4)
}

// flush commits blk: serially, or through the parallel pool.
func (a *Applier) flush(ctx context.Context, blk *block) error {
	if a.pool == nil || blk.sent || blk.serial {
		if a.pool != nil {
			if err := a.pool.drain(ctx); err != nil {
				return err
			}
			a.deps.reset()
		}
		return a.commit(ctx, blk)
	}
	return a.pool.dispatch(ctx, blk, a.deps)
}

// quiesce waits until nothing is in flight (before a statement, or a
// large transaction sent in parts on the main connection).
func (a *Applier) quiesce(ctx context.Context) error {
	if a.pool == nil {
		return nil
	}
	return a.pool.drain(ctx)
}

// New returns an Applier; Open connects it.
func New(cfg Config) (*Applier, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	mc := mysql.NewConfig()
	mc.User, mc.Passwd, mc.Net, mc.Addr = cfg.User, cfg.Password, "tcp", cfg.Addr
	mc.MultiStatements = true
	// An UPDATE counts the rows it matched, not those it changed: the
	// conflict guard (match.go) needs one row matched, whether or not
	// its values were new.
	mc.ClientFoundRows = true
	mc.Timeout = 5 * time.Second
	mc.MaxAllowedPacket = 0 // read the server's
	conn, err := mysql.NewConnector(mc)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	db := sql.OpenDB(conn)
	db.SetMaxOpenConns(cfg.Channels + 2)
	return &Applier{cfg: cfg, db: db, connector: conn, meta: newMetaCache(), skip: map[uint64]bool{},
		rule: rule{policy: cfg.Conflicts.Policy, order: cfg.Conflicts.SiteOrder}}, nil
}

// Open connects, sets the session up and makes the tracking schema.
func (a *Applier) Open(ctx context.Context) error {
	if a.conn != nil {
		a.conn.Close()
		a.conn = nil
	}
	conn, err := a.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("connect to the database at %s: %w", a.cfg.Addr, err)
	}
	if a.session, err = sessionID(ctx, conn); err != nil {
		conn.Close()
		return err
	}
	if err := setupSession(ctx, conn); err != nil {
		conn.Close()
		return err
	}
	setup := append([]string{"SET SESSION sql_log_bin=0"}, trackingDDL(a.cfg.Service)...)
	setup = append(setup, "SET SESSION sql_log_bin=1")
	for _, q := range setup {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			conn.Close()
			return fmt.Errorf("prepare the applier session (%s): %w", shortSQL(q), err)
		}
	}
	var version string
	if err := conn.QueryRowContext(ctx, "SELECT @@max_allowed_packet, @@version").Scan(&a.maxQuery, &version); err != nil {
		conn.Close()
		return fmt.Errorf("read max_allowed_packet: %w", err)
	}
	// MariaDB has had BEGIN NOT ATOMIC since 10.1; MySQL has none.
	mariadb := strings.Contains(version, "MariaDB")
	a.compound.Store(mariadb && !a.compoundOff.Load())
	a.detect, a.guard = !a.cfg.Conflicts.Off, guardSelect
	if mariadb {
		a.guard = guardStatement
	}
	recorded, err := countConflicts(ctx, conn, a.cfg.Service)
	if err != nil {
		conn.Close()
		return err
	}
	a.conflicts.Store(recorded)
	pos, ok, err := readPosition(ctx, conn, a.cfg.Service)
	if err != nil {
		conn.Close()
		return err
	}
	a.conn = conn
	a.meta.clear()
	a.mu.Lock()
	a.pos, a.hasPos, a.recovery = pos, ok, true
	a.mu.Unlock()
	return nil
}

// setupSession sets an applier connection's session up.
func setupSession(ctx context.Context, conn *sql.Conn) error {
	for _, q := range []string{
		"SET NAMES binary",
		"SET SESSION time_zone='+00:00'",
		"SET SESSION sql_mode='" + sessionSQLMode + "'",
		// Row changes check foreign keys, so that cascades happen here as
		// on the source (the binlog does not carry cascaded rows); a
		// change whose source session had them off turns them off, and
		// statements run with them off (a DDL's order need not satisfy them).
		"SET SESSION foreign_key_checks=1",
		// Row images name their rows by key: no gap locks needed, and
		// parallel blocks on distinct rows do not block each other.
		"SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
		// The extractor of this database drops statements logged with this
		// thread id: MariaDB rewrites some DDL and loses our comment.
		fmt.Sprintf("SET SESSION pseudo_thread_id=%d", origin.ThreadID),
		"SET SESSION autocommit=1",
		// A statement waiting on a lock fails after a minute instead of
		// a day (MariaDB's default): an apply that cannot go on stops the
		// replicator, saying why, instead of leaving it ONLINE unmoving.
		"SET SESSION lock_wait_timeout=60, innodb_lock_wait_timeout=60",
	} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("prepare the applier session (%s): %w", shortSQL(q), err)
		}
	}
	return nil
}

// Position returns the last applied transaction; ok is false when none.
func (a *Applier) Position() (Position, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.pos, a.hasPos
}

// Applied counts the transactions applied since Open.
func (a *Applier) Applied() uint64 { return a.applied.Load() }

// Conflicts counts the conflicts recorded in the tracking schema: those
// there at Open and those recorded since.
func (a *Applier) Conflicts() uint64 { return a.conflicts.Load() }

// Skip marks seqnos to record as applied without applying them
// (trepctl online -skip-seqno N).
func (a *Applier) Skip(seqnos ...uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, s := range seqnos {
		a.skip[s] = true
	}
}

// SetPosition records ev as the last transaction in this database without
// applying anything and outside the binlog: a master records what it has
// extracted, so that as a slave later it starts after it.
func (a *Applier) SetPosition(ctx context.Context, ev *thlpb.Event) error {
	if a.conn == nil {
		return errors.New("apply: SetPosition before Open")
	}
	now := a.cfg.Now()
	q := "SET SESSION sql_log_bin=0;" + string(appendTrackingUpdate(nil, a.cfg.Service, ev, now)) + "SET SESSION sql_log_bin=1"
	if _, err := a.conn.ExecContext(ctx, q); err != nil {
		return fmt.Errorf("record extracted position %d: %w", ev.GetSeqno(), err)
	}
	a.committed(ev, 0, now)
	return nil
}

// Reset drops the tracking schema (trepctl reset -db); Open makes it again.
func (a *Applier) Reset(ctx context.Context) error {
	conn, err := a.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := dropTracking(ctx, conn, a.cfg.Service); err != nil {
		return fmt.Errorf("drop %s: %w", TrackingSchema(a.cfg.Service), err)
	}
	a.mu.Lock()
	a.pos, a.hasPos = Position{}, false
	a.mu.Unlock()
	return nil
}

// Close releases the connections.
func (a *Applier) Close() error {
	if a.conn != nil {
		a.conn.Close()
		a.conn = nil
	}
	return a.db.Close()
}

// Next is where Run reads events from: the THL, in seqno order. size is
// the event's size as stored (what Config.QueueBytes counts).
type Next func(ctx context.Context) (ev *thlpb.Event, size int, err error)

// queued is an event read ahead and its size.
type queued struct {
	ev   *thlpb.Event
	size int
}

// Run applies events from next until ctx ends or an error: the first
// transaction it expects is the one after Position(). It returns ctx's
// error on a clean stop, an *Error when a transaction fails.
func (a *Applier) Run(ctx context.Context, next Next) error {
	if a.conn == nil {
		return errors.New("apply: Run before Open")
	}
	// The last run's end may have killed this session: endOrphans kills
	// what the database still shows executing when a run ends, and it
	// shows a statement that has already answered as executing for a
	// moment. Connect again then (the position is read again too).
	if err := a.conn.PingContext(ctx); err != nil {
		if err := a.Open(ctx); err != nil {
			return err
		}
	}
	// What this run sent and the database still executes once it returns
	// (a statement waiting on a lock when the run stopped) must never
	// commit after it: see endOrphans. Deferred first, it runs last.
	sessions := []int64{a.session}
	defer func() { a.endOrphans(sessions) }()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	a.deps, a.queued, a.after = nil, nil, afterState{}
	if a.resolving != nil {
		// The last run stopped inside a transaction in conflict mode:
		// this one starts again from the tracking row.
		a.rollback()
		a.resolving = nil
	}
	if a.cfg.Channels > 1 {
		p, err := a.openPool(ctx)
		if err != nil {
			return err
		}
		a.pool, a.deps = p, newDeps()
		sessions = append(sessions, p.sessions...)
		defer func() {
			// The blocks in flight end (commit, or roll back once
			// cancelled); none is applied again: the next run starts
			// from the tracking row.
			cancel()
			p.wait()
			p.close()
			a.pool, a.deps = nil, nil
		}()
	}
	events := make(chan queued, a.cfg.QueueSize)
	// The count alone bounds nothing: a fragment holds up to a thousand
	// rows or one row of up to a gigabyte, and a thousand such fragments
	// took a replica's replicator past 4 GB.
	ahead := budget.New(a.cfg.QueueBytes)
	readErr := make(chan error, 1)
	go func() {
		defer close(events)
		for {
			ev, size, err := next(ctx)
			if err == nil {
				err = ahead.Acquire(ctx, size)
			}
			if err != nil {
				readErr <- err
				return
			}
			select {
			case events <- queued{ev, size}:
			case <-ctx.Done():
				readErr <- ctx.Err()
				return
			}
		}
	}()
	blk := &block{}
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	for {
		var lingerC <-chan time.Time
		if blk.txns > 0 && blk.open == nil {
			age := time.Since(blk.start)
			idle := len(events) == 0
			wait := a.linger()
			if blk.txns >= a.cfg.BlockSize || len(blk.sql) >= maxPending || age >= a.cfg.BlockTime || idle && age >= wait {
				if err := a.flush(ctx, blk); err != nil {
					return err
				}
				continue
			}
			if idle {
				linger.Reset(wait - age)
				lingerC = linger.C
			}
		}
		var q queued
		var ok bool
		var failed <-chan struct{}
		if a.pool != nil {
			failed = a.pool.failed
		}
		select {
		case q, ok = <-events:
		case <-lingerC:
			continue
		case <-failed:
			// A parallel block failed: apply it again serially (a lock
			// conflict goes through; a real error stops here).
			if err := a.pool.drain(ctx); err != nil {
				return err
			}
			continue
		case <-ctx.Done():
			return ctx.Err()
		}
		if !ok {
			if blk.txns > 0 && blk.open == nil {
				if err := a.flush(ctx, blk); err != nil {
					return err
				}
			}
			if a.pool != nil {
				if err := a.pool.drain(ctx); err != nil {
					return err
				}
			}
			return <-readErr
		}
		err := a.awaitAfter(ctx, blk, q.ev)
		if err == nil {
			err = a.add(ctx, blk, q.ev, q.size)
		}
		if err == nil {
			err = a.checkMarkers(ctx, blk, q.ev)
		}
		ahead.Release(q.size)
		if err != nil {
			return err
		}
	}
}
