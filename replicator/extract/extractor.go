package extract

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"
	gomysql "github.com/go-sql-driver/mysql"

	"github.com/carbidedb/carbide/internal/position"
	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

// Extractor reads one database's binlog. Run may be called again after it
// returns (from the last stored event); Close releases the connection pool.
type Extractor struct {
	cfg Config
	log *slog.Logger
	db  *sql.DB // Check, CurrentPosition, collations, column names

	transactions atomic.Uint64
	fragments    atomic.Uint64
	filtered     atomic.Uint64
	heartbeats   atomic.Uint64
	discarded    atomic.Uint64
	spilled      atomic.Uint64

	mu    sync.Mutex
	last  position.Position
	read  position.Position // Stats.Read
	moved chan struct{}     // closed when last or read moves (Moved)

	running   atomic.Bool
	closeOnce sync.Once

	// local is what RunTail needs while the database is down, read
	// while it was up.
	local struct {
		sync.Mutex
		si    serverInfo
		coll  collations
		index string // @@log_bin_index: the binlog files, in order
	}
}

// Stats counts what Run did since New.
type Stats struct {
	// Transactions and Fragments sent.
	Transactions, Fragments uint64
	// Filtered: transactions dropped by loop prevention ("events filtered").
	Filtered uint64
	// Heartbeats: local heartbeat transactions sent (also in Transactions).
	Heartbeats uint64
	// Discarded: transactions that never completed in the binlog (rolled
	// back, or cut off by a server crash) and were not sent.
	Discarded uint64
	// Spilled: transactions sent that outgrew Config.SpillBytes and went
	// through a spill file (also in Transactions).
	Spilled uint64
	// Position is the end of the last transaction read, sent or not.
	Position position.Position
	// Read is where reading stands between transactions (no GTID): past
	// the events that belong to none, such as the start of a new binlog
	// file after a server restart. Everything before it was sent.
	Read position.Position
}

// New checks cfg (defaults applied) and prepares an Extractor. It does not
// connect yet.
func New(cfg Config) (*Extractor, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	mc := gomysql.NewConfig()
	mc.User, mc.Passwd = cfg.User, cfg.Password
	mc.Net, mc.Addr = "tcp", cfg.Addr
	mc.Timeout = cfg.DialTimeout
	mc.ReadTimeout, mc.WriteTimeout = time.Minute, time.Minute
	mc.Logger = quietDriverLogger{}
	conn, err := gomysql.NewConnector(mc)
	if err != nil {
		return nil, errorf(ErrConfig, "connection to %s: %v", cfg.Addr, err)
	}
	db := sql.OpenDB(conn)
	db.SetMaxOpenConns(2)
	db.SetConnMaxIdleTime(time.Minute)
	return &Extractor{cfg: cfg, log: cfg.Logger, db: db}, nil
}

// quietDriverLogger keeps the MySQL driver from printing to stderr.
type quietDriverLogger struct{}

func (quietDriverLogger) Print(...any) {}

// Close releases the connection pool; it is idempotent. Stop Run first
// (cancel its context and wait for it to return).
func (x *Extractor) Close() error {
	var err error
	x.closeOnce.Do(func() { err = x.db.Close() })
	return err
}

// Stats returns the counters.
func (x *Extractor) Stats() Stats {
	x.mu.Lock()
	last, read := x.last, x.read
	x.mu.Unlock()
	return Stats{
		Read:         read,
		Transactions: x.transactions.Load(),
		Fragments:    x.fragments.Load(),
		Filtered:     x.filtered.Load(),
		Heartbeats:   x.heartbeats.Load(),
		Discarded:    x.discarded.Load(),
		Spilled:      x.spilled.Load(),
		Position:     last,
	}
}

// Run streams the transactions that follow from — the event_id of the
// last stored event; the zero Position means the current end of the
// binlog — calling send with their fragments, in binlog order, on Run's
// goroutine. Fragments carry everything but seqno and epoch. Run returns
// nil when ctx is done, the error of send, or an error saying why the
// stream stopped (ErrStream: run again from the last stored event). It
// refuses a server that Check refuses.
//
// Each call to send carries consecutive fragments of one transaction; the
// transaction ends at the fragment marked LastFrag, the last of a call. A
// transaction is sent once it has committed: one that fits in
// Config.SpillBytes in one call, a larger one (spilled to a file while it
// was read) in several. A store that keeps only whole transactions (or
// drops a torn tail on restart) can always restart from its last
// event_id. One Run at a time: the server keeps one binlog dump per
// replica server id.
func (x *Extractor) Run(ctx context.Context, from position.Position, send func([]*thlpb.Event) error) error {
	return x.RunFrom(ctx, from, position.Position{}, send)
}

// RunFrom is Run after a stored event that names where XA transactions
// still prepared then began (its prepared_from, parsed; zero for none):
// it reads the binlog from there to rebuild them, and sends nothing up to
// from, which was sent already. It calls send as Run does: consecutive
// fragments of one transaction per call, a large transaction in several
// calls, the last ending with the LastFrag fragment.
func (x *Extractor) RunFrom(ctx context.Context, from, prepared position.Position, send func([]*thlpb.Event) error) error {
	if !x.running.CompareAndSwap(false, true) {
		return errorf(ErrConfig, "the extractor for %s is already running; stop it before running it again", x.cfg.Addr)
	}
	defer x.running.Store(false)
	if _, err := x.Check(ctx); err != nil {
		return err
	}
	si, err := x.server(ctx)
	if err != nil {
		return err
	}
	if from.IsZero() {
		if from, err = x.CurrentPosition(ctx); err != nil {
			return err
		}
	}
	start := from
	if !prepared.IsZero() && prepared.Compare(from) < 0 {
		start = prepared
	}
	if start.Offset > math.MaxUint32 {
		return errorf(ErrPositionGone, "start position %s is beyond 4 GiB, which the binlog protocol cannot address", start)
	}
	host, portStr, _ := net.SplitHostPort(x.cfg.Addr) // checked by Validate
	port, _ := strconv.Atoi(portStr)

	r := &run{
		x:      x,
		flavor: si.flavor,
		coll:   x.loadCollations(ctx),
		tables: newTables(x.db, si.flavor, x.cfg.Service, x.cfg.LoopSchemaPrefix),
		file:   start.File,
		send:   send,
	}
	defer r.close()
	if r.applied, err = x.readApplied(ctx); err != nil {
		return errorf(ErrConnect, "%v", err)
	}
	x.rememberLocal(ctx, si, r.coll)
	if start != from {
		r.after = from
	}
	r.tx.lim = x.cfg.txnLimits()

	dialer := &net.Dialer{Timeout: x.cfg.DialTimeout}
	queue := newEventQueue(x.cfg.EventBuffer, x.cfg.EventBufferBytes)
	syncer := replication.NewBinlogSyncer(replication.BinlogSyncerConfig{
		ServerID:  x.cfg.ServerID,
		Flavor:    si.flavor,
		Host:      host,
		Port:      uint16(port),
		User:      x.cfg.User,
		Password:  x.cfg.Password,
		Localhost: x.cfg.SourceID,
		// TIMESTAMP values as UTC text; DECIMAL as go-mysql's exact string
		// (UseDecimal would round-trip through shopspring/decimal and lose
		// trailing zeros); temporal values as text (ParseTime off).
		TimestampStringLocation: time.UTC,
		UseDecimal:              false,
		ParseTime:               false,
		VerifyChecksum:          true,
		HeartbeatPeriod:         x.cfg.HeartbeatPeriod,
		// No ReadTimeout: see watchdog.
		// go-mysql would reconnect from the last event, possibly inside a
		// transaction whose table maps it no longer has: the caller restarts
		// from its last stored transaction instead.
		DisableRetrySync: true,
		DiscardGTIDSet:   true,
		// Events go through queue, bounded in bytes too; go-mysql's own
		// queue stays empty.
		SynchronousEventHandler: queue,
		EventCacheCount:         1,
		// MariaDB 11.4+ leaves log_pos 0 in some events unless asked for
		// annotate events; go-mysql then computes it.
		FillZeroLogPos: si.flavor == FlavorMariaDB && (si.major > 11 || si.major == 11 && si.minor >= 4),
		Logger:         slog.New(quietHandler{x.log.Handler()}).With("component", "go-mysql"),
		Dialer:         dialer.DialContext,
	})
	defer syncer.Close()
	defer queue.stop() // before syncer.Close: its reader may wait for room

	x.log.Info("extracting", "from", from.String(), "read_from", start.String(), "server", x.cfg.Addr, "flavor", si.flavor, "server_id", x.cfg.ServerID)
	streamer, err := syncer.StartSync(mysql.Position{Name: start.File, Pos: uint32(start.Offset)})
	if err != nil {
		return errorf(ErrConnect, "start reading the binlog of %s at %s: %v", x.cfg.Addr, start, err)
	}
	queue.watch(streamer)
	var wd watchdog
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(x.cfg.HeartbeatPeriod)
		defer t.Stop()
		wd.watch(done, t.C, syncer.Close)
	}()
	defer func() { close(done); wg.Wait() }() // before syncer.Close (defers run last first)

	for {
		wd.waiting.Store(true)
		qe, err := queue.next(ctx)
		ev := qe.ev
		wd.waiting.Store(false)
		wd.events.Add(1)
		if err != nil {
			switch {
			case ctx.Err() != nil:
				return nil
			case wd.stalled.Load():
				return errorf(ErrStream, "no binlog event or heartbeat from %s for %s after %s:%d; the connection or the server hangs",
					x.cfg.Addr, stallPeriods*x.cfg.HeartbeatPeriod, r.file, r.lastPos)
			}
			return r.streamError(start, err)
		}
		r.tables.noteCompressed(ev, qe.compressed)
		err = r.handle(ctx, ev, ev.Header.LogPos)
		queue.done(ev)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if !r.tx.open && r.file != "" && !r.replayed(position.Position{File: r.file, Offset: uint64(r.lastPos)}) {
			x.setRead(r.file, r.lastPos)
		}
	}
}

// streamError explains why the stream stopped.
func (r *run) streamError(from position.Position, err error) error {
	var me *mysql.MyError
	if errors.As(err, &me) && me.Code == mysql.ER_MASTER_FATAL_ERROR_READING_BINLOG && !r.after.IsZero() {
		return &kindError{kind: ErrPositionGone, err: err, msg: fmt.Sprintf("the database at %s cannot send its binlog from %s (%s), "+
			"where an XA transaction still prepared after %s began: its changes cannot be read again; commit or roll it back "+
			"(XA RECOVER lists it), apply its changes on every replica by hand if committed, then trepctl online -from-event %s",
			r.x.cfg.Addr, from, me.Message, r.after, r.after)}
	}
	if errors.As(err, &me) && me.Code == mysql.ER_MASTER_FATAL_ERROR_READING_BINLOG {
		return &kindError{kind: ErrPositionGone, err: err, msg: fmt.Sprintf("the database at %s cannot send its binlog from %s (%s); "+
			"if the binlog was purged, this host's THL must be rebuilt from another master", r.x.cfg.Addr, from, me.Message)}
	}
	return errorf(ErrStream, "binlog stream from %s stopped after %s:%d: %w", r.x.cfg.Addr, r.file, r.lastPos, err)
}

func (x *Extractor) setLast(p position.Position) {
	x.mu.Lock()
	x.last = p
	x.wake()
	x.mu.Unlock()
}

func (x *Extractor) setRead(file string, offset uint32) {
	x.mu.Lock()
	x.read = position.Position{File: file, Offset: uint64(offset)}
	x.wake()
	x.mu.Unlock()
}

// wake tells Moved's callers; x.mu held.
func (x *Extractor) wake() {
	if x.moved != nil {
		close(x.moved)
		x.moved = nil
	}
}

// Moved returns a channel closed the next time Stats' Position or Read
// moves: a wait for extraction to reach a position wakes at once.
func (x *Extractor) Moved() <-chan struct{} {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.moved == nil {
		x.moved = make(chan struct{})
	}
	return x.moved
}
