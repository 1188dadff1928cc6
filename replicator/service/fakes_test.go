package service

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/carbidedb/carbide/internal/position"
	"github.com/carbidedb/carbide/internal/testutil"
	"github.com/carbidedb/carbide/replicator/apply"
	"github.com/carbidedb/carbide/replicator/extract"
	"github.com/carbidedb/carbide/replicator/stream"
	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

// Fake stages for unit tests: a fake database (its tracking row), a fake
// THL source a slave's client reads, a fake binlog a master's extractor
// reads. The THL store is the real one, in a temporary directory.

// writers records who writes to the service's THL; a second one starting
// while the first still runs is what the join of a pipeline run prevents.
type writers struct {
	mu         sync.Mutex
	active     map[string]int
	violations []string
}

func (w *writers) enter(name string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for other, n := range w.active {
		if n > 0 {
			w.violations = append(w.violations, fmt.Sprintf("%s started while %s of an earlier run was still running", name, other))
		}
	}
	w.active[name]++
}

func (w *writers) leave(name string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.active[name]--
}

func (w *writers) violation(msg string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.violations = append(w.violations, msg)
}

func (w *writers) check(t *testing.T) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, v := range w.violations {
		t.Errorf("two writers: %s", v)
	}
	w.violations = nil
}

// fakeDB is the local database: its tracking row and what was applied.
type fakeDB struct {
	mu      sync.Mutex
	pos     apply.Position
	has     bool
	applied []uint64         // seqnos applied, in order (not skipped ones)
	failAt  map[uint64]error // seqno → the error applying it raises, once
	// block is how many transactions an applier commits at once (0: 1);
	// a failure rolls back the block's transactions read before it.
	block int
	// readAhead makes an applier's Position say the last transaction it
	// read rather than the last it committed (what status must not show).
	readAhead bool
	// conflicts is the count of conflict records in its tracking schema.
	conflicts uint64
	// recordLinger is how long SetPosition takes (a slow database).
	recordLinger time.Duration
	// openErr, setErr and resetErr make Open, SetPosition and Reset fail.
	openErr, setErr, resetErr error
	w                         *writers
}

func (d *fakeDB) tracking() (uint64, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.pos.Seqno, d.has
}

func (d *fakeDB) setTracking(seqno uint64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.pos, d.has = apply.Position{Seqno: seqno, LastFrag: true, EventID: eventID(seqno), SourceID: "east1"}, true
}

func positionOf(ev *thlpb.Event) apply.Position {
	return apply.Position{Seqno: ev.GetSeqno(), Fragno: ev.GetFragno(), LastFrag: true, Epoch: ev.GetEpoch(), EventID: ev.GetEventId(), SourceID: ev.GetSourceId()}
}

type fakeApplier struct {
	db *fakeDB

	mu     sync.Mutex
	pos    apply.Position
	has    bool
	skip   map[uint64]bool
	closed bool
}

func (a *fakeApplier) Open(context.Context) error {
	a.db.mu.Lock()
	defer a.db.mu.Unlock()
	if a.db.openErr != nil {
		return a.db.openErr
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.pos, a.has = a.db.pos, a.db.has
	return nil
}

func (a *fakeApplier) Position() (apply.Position, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.pos, a.has
}

func (a *fakeApplier) Skip(seqnos ...uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, s := range seqnos {
		a.skip[s] = true
	}
}

func (a *fakeApplier) SetPosition(_ context.Context, ev *thlpb.Event) error {
	a.db.mu.Lock()
	linger, fail := a.db.recordLinger, a.db.setErr
	a.db.mu.Unlock()
	if fail != nil {
		return fail
	}
	time.Sleep(linger)
	a.mu.Lock()
	closed := a.closed
	a.mu.Unlock()
	if closed {
		a.db.w.violation(fmt.Sprintf("the tracking row recorded at seqno %d by a tracker of an earlier run, closed since", ev.GetSeqno()))
		return errors.New("fake applier: closed")
	}
	a.commit(ev, false)
	return nil
}

// Conflicts is the conflicts the fake database holds.
func (a *fakeApplier) Conflicts() uint64 {
	a.db.mu.Lock()
	defer a.db.mu.Unlock()
	return a.db.conflicts
}

func (a *fakeApplier) Reset(context.Context) error {
	a.db.mu.Lock()
	defer a.db.mu.Unlock()
	if a.db.resetErr != nil {
		return a.db.resetErr
	}
	a.db.pos, a.db.has = apply.Position{}, false
	return nil
}

func (a *fakeApplier) commit(ev *thlpb.Event, applied bool) {
	a.db.mu.Lock()
	defer a.db.mu.Unlock()
	a.mu.Lock()
	defer a.mu.Unlock()
	a.db.pos, a.db.has = positionOf(ev), true
	a.pos, a.has = a.db.pos, true
	if applied {
		a.db.applied = append(a.db.applied, ev.GetSeqno())
	}
}

func (a *fakeApplier) Run(ctx context.Context, next apply.Next) error {
	type txn struct {
		ev   *thlpb.Event
		skip bool
	}
	var block []txn
	for {
		ev, _, err := next(ctx)
		if err != nil {
			return err
		}
		if !ev.GetLastFrag() {
			continue
		}
		a.mu.Lock()
		skip := a.skip[ev.GetSeqno()]
		a.mu.Unlock()
		a.db.mu.Lock()
		fail, readAhead, size := a.db.failAt[ev.GetSeqno()], a.db.readAhead, max(a.db.block, 1)
		a.db.mu.Unlock()
		if readAhead {
			a.mu.Lock()
			a.pos, a.has = positionOf(ev), true
			a.mu.Unlock()
		}
		if fail != nil && !skip {
			a.db.mu.Lock()
			delete(a.db.failAt, ev.GetSeqno()) // once: applying it again succeeds
			a.db.mu.Unlock()
			return &apply.Error{Seqno: ev.GetSeqno(), EventID: ev.GetEventId(), SQL: "INSERT INTO t VALUES (1)", Err: fail}
		}
		if block = append(block, txn{ev, skip}); len(block) < size {
			continue
		}
		for _, tx := range block {
			a.commit(tx.ev, !tx.skip)
		}
		block = block[:0]
	}
}

func (a *fakeApplier) Waiting() (string, time.Time) { return "", time.Time{} }

func (a *fakeApplier) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.closed = true
	return nil
}

// eventID is the fake source's binlog position of seqno.
func eventID(seqno uint64) string {
	return position.Position{File: "mysql-bin.000001", Offset: 1000 + 100*seqno}.String()
}

// fakeSource is the master a slave's THL client reads: its THL.
type fakeSource struct {
	w *writers

	mu      sync.Mutex
	events  []*thlpb.Event
	changed chan struct{}
	err     error // a client's Run returns it once it has stored every event
	// linger is how long a client takes to return once its ctx ends
	// (a fetch still storing the batch it received).
	linger time.Duration
}

// add makes the source hold transactions up to seqno.
func (f *fakeSource) add(upTo uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for s := uint64(len(f.events)); s <= upTo; s++ {
		f.events = append(f.events, &thlpb.Event{Seqno: s, LastFrag: true, EventId: eventID(s), SourceId: "east1"})
	}
	close(f.changed)
	f.changed = make(chan struct{})
}

type fakeClient struct {
	src *fakeSource
	cfg stream.ClientConfig

	mu sync.Mutex
	st stream.ClientStatus
}

func (c *fakeClient) Status() stream.ClientStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.st
}

func (c *fakeClient) Run(ctx context.Context, store stream.Store) error {
	c.src.w.enter("THL client")
	defer c.src.w.leave("THL client")
	c.mu.Lock()
	c.st = stream.ClientStatus{Source: c.cfg.Sources[0], Connected: true}
	c.mu.Unlock()
	c.cfg.OnConnect()
	for {
		next := uint64(0)
		if last, ok := store.Last(); ok {
			next = last.GetSeqno() + 1
		}
		c.src.mu.Lock()
		var todo []*thlpb.Event
		if next < uint64(len(c.src.events)) {
			todo = c.src.events[next:]
		}
		changed, fail, linger := c.src.changed, c.src.err, c.src.linger
		c.src.mu.Unlock()
		for _, ev := range todo {
			if err := store.Append(ev); err != nil {
				return err
			}
		}
		if fail != nil {
			return fail
		}
		select {
		case <-changed:
		case <-ctx.Done():
			time.Sleep(linger)
			return store.Sync()
		}
	}
}

// fakeBinlog is the local database's binlog a master's extractor reads:
// one transaction every 100 bytes.
type fakeBinlog struct {
	w    *writers
	host string

	mu      sync.Mutex
	end     uint64 // offset after the last transaction
	changed chan struct{}
	err     error // RunFrom returns it once it has sent every transaction
	// parts is how many calls to send carry each transaction, a fragment
	// each (0: one).
	parts int
	// breakAt, when set, is the end of a transaction whose sending stops
	// with breakErr after its first part, once.
	breakAt  uint64
	breakErr error
	// paused stops extraction where it stands until resumed.
	paused bool
	// changes are the row changes of the transaction ending at an offset.
	changes map[uint64][]*thlpb.Change
	// down: the database stopped (die). Check fails and RunFrom returns
	// errConnReset once it has sent what the stream passed on (up to
	// streamed); RunTail reads the files to end, or fails with tailErr,
	// and records where it was asked to start.
	down                   bool
	streamed               uint64
	tailErr                error
	tailFrom, tailPrepared position.Position
	tailRead               bool
}

// errConnReset is what a stream reading a stopped database returns.
var errConnReset = &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}

// change runs f on b (locked) and wakes the extractor.
func (b *fakeBinlog) change(f func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	f()
	close(b.changed)
	b.changed = make(chan struct{})
}

// die stops the database: its clients committed unsent more transactions
// that are in its binlog files but that the stream never passed on.
func (b *fakeBinlog) die(unsent int) {
	b.change(func() { b.down, b.streamed, b.end = true, b.end, b.end+uint64(100*unsent) })
}

// revive starts the database again.
func (b *fakeBinlog) revive() { b.change(func() { b.down = false }) }

// pause stops or resumes the extractor.
func (b *fakeBinlog) pause(p bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.paused = p
	close(b.changed)
	b.changed = make(chan struct{})
}

// commit writes n transactions to the binlog.
func (b *fakeBinlog) commit(n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.end += uint64(100 * n)
	close(b.changed)
	b.changed = make(chan struct{})
}

type fakeExtractor struct {
	b *fakeBinlog

	mu   sync.Mutex
	last position.Position
}

func (x *fakeExtractor) Check(context.Context) ([]string, error) {
	x.b.mu.Lock()
	defer x.b.mu.Unlock()
	if x.b.down {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	}
	return nil, nil
}

func (x *fakeExtractor) CurrentPosition(context.Context) (position.Position, error) {
	x.b.mu.Lock()
	defer x.b.mu.Unlock()
	return position.Position{File: "local-bin.000001", Offset: x.b.end}, nil
}

func (x *fakeExtractor) BinlogEnd(ctx context.Context) (position.Position, error) {
	return x.CurrentPosition(ctx)
}

// Moved: the fake is polled.
func (x *fakeExtractor) Moved() <-chan struct{} {
	ch := make(chan struct{})
	time.AfterFunc(time.Millisecond, func() { close(ch) })
	return ch
}

func (x *fakeExtractor) Stats() extract.Stats {
	x.mu.Lock()
	defer x.mu.Unlock()
	return extract.Stats{Position: x.last, Read: x.last}
}

func (x *fakeExtractor) Close() error { return nil }

func (x *fakeExtractor) RunTail(_ context.Context, from, prepared position.Position, send func([]*thlpb.Event) error) (position.Position, error) {
	x.b.mu.Lock()
	x.b.tailFrom, x.b.tailPrepared, x.b.tailRead = from, prepared, true
	end, fail := x.b.end, x.b.tailErr
	x.b.mu.Unlock()
	if fail != nil {
		return position.Position{}, fail
	}
	at := from.Offset
	for ; at+100 <= end; at += 100 {
		p := position.Position{File: "local-bin.000001", Offset: at + 100}
		if err := send([]*thlpb.Event{{LastFrag: true, EventId: p.String(), SourceId: x.b.host}}); err != nil {
			return position.Position{}, err
		}
	}
	return position.Position{File: "local-bin.000001", Offset: at}, nil
}

func (x *fakeExtractor) RunFrom(ctx context.Context, from, _ position.Position, send func([]*thlpb.Event) error) error {
	x.b.w.enter("extractor")
	defer x.b.w.leave("extractor")
	at := from.Offset
	for {
		x.b.mu.Lock()
		end, changed, fail, parts, down := x.b.end, x.b.changed, x.b.err, max(x.b.parts, 1), x.b.down
		if x.b.paused {
			end = at
		}
		if down {
			end = min(end, x.b.streamed)
		}
		x.b.mu.Unlock()
		for ; at+100 <= end; at += 100 {
			p := position.Position{File: "local-bin.000001", Offset: at + 100}
			for i := range parts {
				ev := &thlpb.Event{Fragno: uint32(i), LastFrag: i == parts-1, EventId: p.String(), SourceId: x.b.host}
				if i == parts-1 {
					x.b.mu.Lock()
					ev.Changes = x.b.changes[p.Offset]
					x.b.mu.Unlock()
				}
				if err := send([]*thlpb.Event{ev}); err != nil {
					return err
				}
				x.b.mu.Lock()
				stop := x.b.breakAt == p.Offset && !ev.LastFrag
				if stop {
					x.b.breakAt = 0
				}
				x.b.mu.Unlock()
				if stop {
					return x.b.breakErr
				}
			}
			x.mu.Lock()
			x.last = p
			x.mu.Unlock()
		}
		if down {
			return errConnReset
		}
		if fail != nil {
			return fail
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil
		}
	}
}

// harness is one service's surroundings: a temporary directory, its
// database, its source and its binlog.
type harness struct {
	t      *testing.T
	dir    string
	w      *writers
	db     *fakeDB
	src    *fakeSource
	binlog *fakeBinlog
}

func newHarness(t *testing.T) *harness {
	w := &writers{active: map[string]int{}}
	h := &harness{t: t, dir: t.TempDir(), w: w, db: &fakeDB{failAt: map[uint64]error{}, w: w},
		src:    &fakeSource{w: w, changed: make(chan struct{})},
		binlog: &fakeBinlog{w: w, host: "east2", changed: make(chan struct{})}}
	t.Cleanup(func() { w.check(t) })
	return h
}

func (h *harness) config(role string) Config {
	return Config{Name: "east", Host: "east2", Role: role, Sources: []string{"east1:2112"},
		DBAddr: "127.0.0.1:1", THLDir: filepath.Join(h.dir, "thl"), RoleFile: filepath.Join(h.dir, "var", "role-east.json"),
		Stages: Stages{
			NewExtractor: func(extract.Config) (Extractor, error) { return &fakeExtractor{b: h.binlog}, nil },
			NewTHLClient: func(c stream.ClientConfig) (THLClient, error) { return &fakeClient{src: h.src, cfg: c}, nil },
			NewApplier: func(apply.Config) (Applier, error) {
				return &fakeApplier{db: h.db, skip: map[uint64]bool{}}, nil
			},
		},
		Logger: testutil.Logger(h.t)}
}

// start makes a service of role on the harness; it closes with the test.
func (h *harness) start(role string) *Service {
	h.t.Helper()
	s, err := New(h.config(role))
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { s.Close() })
	return s
}

func waitState(t *testing.T, s *Service, state string) {
	t.Helper()
	testutil.Eventually(t, 5*time.Second, func() error {
		if got := s.State(); got != state {
			return fmt.Errorf("state %s, want %s", got, state)
		}
		return nil
	})
}

func waitApplied(t *testing.T, s *Service, seqno int64) {
	t.Helper()
	testutil.Eventually(t, 5*time.Second, func() error {
		if got := s.Status().GetAppliedLastSeqno(); got != seqno {
			return fmt.Errorf("appliedLastSeqno %d, want %d (state %s)", got, seqno, s.State())
		}
		return nil
	})
}

func offline(t *testing.T, s *Service) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Offline(ctx); err != nil {
		t.Fatal(err)
	}
}

// field returns a status field by name.
func field(s *Service, name string) string {
	for _, f := range s.Status().GetFields() {
		if f.GetName() == name {
			return f.GetValue()
		}
	}
	return ""
}
