package stream

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/carbidedb/carbide/internal/testutil"
	"github.com/carbidedb/carbide/replicator/thl"
	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

type storeLog struct{ s *thl.Store }

func (l storeLog) Last() (*thlpb.Event, bool)               { return l.s.Last() }
func (l storeLog) Get(seqno uint64) ([]*thlpb.Event, error) { return l.s.Get(seqno) }
func (l storeLog) NewReader(from uint64) (Reader, error)    { return l.s.NewReader(from) }

type fetchStore struct{ *thl.Store }

func (f fetchStore) DropIncomplete() error {
	if last, ok := f.Last(); ok {
		return f.Truncate(last.GetSeqno())
	}
	return nil
}

func openStore(t *testing.T) *thl.Store {
	t.Helper()
	s, err := thl.Open(thl.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func ev(seqno, epoch uint64) *thlpb.Event {
	return &thlpb.Event{Seqno: seqno, Epoch: epoch, LastFrag: true, EventId: fmt.Sprintf("mysql-bin.000001:%016d", 1000+seqno), SourceId: "east1"}
}

// serve starts a THL server for store on a loopback port.
func serve(t *testing.T, store *thl.Store) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(50*time.Millisecond, testutil.Logger(t))
	srv.Serve("east", storeLog{store}, func() string { return "master" })
	g := grpc.NewServer(ServerOptions()...)
	thlpb.RegisterTHLServer(g, srv)
	go g.Serve(l)
	t.Cleanup(g.Stop)
	return l.Addr().String()
}

func TestClientFetchesAndFollows(t *testing.T) {
	master, replica := openStore(t), openStore(t)
	for i := uint64(0); i < 100; i++ {
		if err := master.Append(ev(i, 0)); err != nil {
			t.Fatal(err)
		}
	}
	addr := serve(t, master)
	// The first source is dead: the client moves on to the next.
	c, err := NewClient(ClientConfig{Service: "east", ClientHost: "east2", Sources: []string{"127.0.0.1:1", addr}, MinBackoff: 10 * time.Millisecond, Logger: testutil.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, fetchStore{replica}) }()
	testutil.Eventually(t, 5*time.Second, func() error {
		if m, ok := replica.MaxSeqno(); !ok || m != 99 {
			return fmt.Errorf("replica max %d %v", m, ok)
		}
		return nil
	})
	for i := uint64(100); i < 110; i++ {
		master.Append(ev(i, 0))
	}
	testutil.Eventually(t, 5*time.Second, func() error {
		if m, _ := replica.MaxSeqno(); m != 109 {
			return fmt.Errorf("replica max %d", m)
		}
		if st := c.Status(); !st.Connected || st.Source != addr || st.MasterSeqno < 99 {
			return fmt.Errorf("status %+v", st)
		}
		return nil
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestDivergedClientIsRefused(t *testing.T) {
	master, replica := openStore(t), openStore(t)
	for i := uint64(0); i < 10; i++ {
		master.Append(ev(i, 0))
		replica.Append(ev(i, 0))
	}
	// The replica holds seqno 10 from an old master; the new master's 10
	// began a new epoch.
	replica.Append(&thlpb.Event{Seqno: 10, LastFrag: true, EventId: "mysql-bin.000009:0000000000000004", SourceId: "east1"})
	master.Append(&thlpb.Event{Seqno: 10, Epoch: 10, LastFrag: true, EventId: "mysql-bin.000002:0000000000000777", SourceId: "east2"})
	addr := serve(t, master)
	c, _ := NewClient(ClientConfig{Service: "east", Sources: []string{addr}})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := c.Run(ctx, fetchStore{replica})
	if !errors.Is(err, ErrDiverged) || !strings.Contains(err.Error(), "diverged at seqno 10") {
		t.Fatalf("err = %v", err)
	}
	if m, _ := replica.MaxSeqno(); m != 10 {
		t.Fatalf("replica changed: max %d", m)
	}
	// A client ahead of the server has diverged too.
	replica.Append(ev(11, 0))
	master2 := openStore(t)
	for i := uint64(0); i < 5; i++ {
		master2.Append(ev(i, 0))
	}
	c2, _ := NewClient(ClientConfig{Service: "east", Sources: []string{serve(t, master2)}})
	if err := c2.Run(ctx, fetchStore{replica}); !errors.Is(err, ErrDiverged) {
		t.Fatalf("client ahead: %v", err)
	}
}

// serveStoppable is serve with a way to stop the server mid-stream.
func serveStoppable(t *testing.T, store *thl.Store) (addr string, stop func()) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(50*time.Millisecond, testutil.Logger(t))
	srv.Serve("east", storeLog{store}, func() string { return "slave" })
	g := grpc.NewServer(ServerOptions()...)
	thlpb.RegisterTHLServer(g, srv)
	go g.Serve(l)
	t.Cleanup(g.Stop)
	return l.Addr().String(), g.Stop
}

// frag is fragment fragno of transaction seqno (epoch 0), last when last.
func frag(seqno uint64, fragno uint32, last bool, epoch uint64) *thlpb.Event {
	e := ev(seqno, epoch)
	e.Fragno, e.LastFrag = fragno, last
	e.Changes = []*thlpb.Change{{Change: &thlpb.Change_Rows{Rows: &thlpb.RowChange{Schema: "app", Table: "t",
		Rows: []*thlpb.Row{{After: []*thlpb.Value{{Value: &thlpb.Value_Int{Int: int64(fragno)}}}}}}}}}
	return e
}

// readUpTo reads from r until it has returned (seqno, fragno), failing on
// any error.
func readUpTo(t *testing.T, r *thl.Reader, seqno uint64, fragno uint32) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		e, err := r.Next(ctx)
		if err != nil {
			t.Fatalf("replica reader, waiting for seqno %d fragno %d: %v", seqno, fragno, err)
		}
		if e.GetSeqno() == seqno && e.GetFragno() == fragno {
			return
		}
	}
}

// A replica whose source stops in the middle of a large transaction, and
// which moves to another source holding the same history, goes on with
// the fragments it lacks: the fragments its applier has read stay.
// (It used to drop them on reconnect, and its applier failed with "log
// truncated under the reader ... had read up to seqno 2 fragno 28".)
func TestSourceSwitchInsideFragmentedTransaction(t *testing.T) {
	relay, master, replica := openStore(t), openStore(t), openStore(t)
	for _, s := range []*thl.Store{relay, master} {
		s.Append(ev(0, 0), ev(1, 0))
	}
	// The relay holds the first 29 fragments of seqno 2; the master all
	// 100 and seqno 3.
	for f := uint32(0); f < 100; f++ {
		if f < 29 {
			relay.Append(frag(2, f, false, 0))
		}
		master.Append(frag(2, f, f == 99, 0))
	}
	master.Append(ev(3, 0))
	relayAddr, stopRelay := serveStoppable(t, relay)
	c, err := NewClient(ClientConfig{Service: "east", ClientHost: "west1", Sources: []string{relayAddr, serve(t, master)},
		MinBackoff: 10 * time.Millisecond, Logger: testutil.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	applier, err := replica.NewReader(0)
	if err != nil {
		t.Fatal(err)
	}
	defer applier.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, fetchStore{replica}) }()
	readUpTo(t, applier, 2, 28)
	stopRelay()
	readUpTo(t, applier, 3, 0)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	frags, err := replica.Get(2)
	if err != nil || len(frags) != 100 {
		t.Fatalf("replica's seqno 2: %d fragments, %v", len(frags), err)
	}
}

// A source holding another transaction where the replica holds part of
// one (a new primary's history) replaces that part: the replica ends with
// the source's transaction, and only a reader that had read the dropped
// part fails.
func TestPartialTransactionReplacedByOtherHistory(t *testing.T) {
	master, replica := openStore(t), openStore(t)
	for _, s := range []*thl.Store{master, replica} {
		s.Append(ev(0, 0), ev(1, 0))
	}
	for f := uint32(0); f < 5; f++ {
		replica.Append(frag(2, f, false, 0))
	}
	master.Append(frag(2, 0, false, 2), frag(2, 1, true, 2))
	applier, err := replica.NewReader(2)
	if err != nil {
		t.Fatal(err)
	}
	defer applier.Close()
	readUpTo(t, applier, 2, 4)
	c, _ := NewClient(ClientConfig{Service: "east", Sources: []string{serve(t, master)}, Logger: testutil.Logger(t)})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, fetchStore{replica}) }()
	testutil.Eventually(t, 5*time.Second, func() error {
		if last, ok := replica.Last(); !ok || last.GetSeqno() != 2 || last.GetEpoch() != 2 || last.GetFragno() != 1 {
			return fmt.Errorf("replica's last: %v", last)
		}
		return nil
	})
	cancel()
	<-done
	if _, err := applier.Next(context.Background()); !errors.Is(err, thl.ErrTruncated) {
		t.Fatalf("a reader of the dropped part: %v", err)
	}
}

// blob is seqno's transaction holding one row of n bytes.
func blob(seqno uint64, n int) *thlpb.Event {
	e := ev(seqno, 0)
	e.Changes = []*thlpb.Change{{Change: &thlpb.Change_Rows{Rows: &thlpb.RowChange{Schema: "app", Table: "t",
		Rows: []*thlpb.Row{{After: []*thlpb.Value{{Value: &thlpb.Value_Bytes{Bytes: make([]byte, n)}}}}}}}}}
	return e
}

// An event larger than gRPC's default 4 MiB message reaches the replica.
func TestLargeEventFlows(t *testing.T) {
	master, replica := openStore(t), openStore(t)
	master.Append(ev(0, 0), blob(1, 9<<20), ev(2, 0))
	c, _ := NewClient(ClientConfig{Service: "east", Sources: []string{serve(t, master)}, Logger: testutil.Logger(t)})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, fetchStore{replica}) }()
	testutil.Eventually(t, 10*time.Second, func() error {
		if m, ok := replica.MaxSeqno(); !ok || m != 2 {
			return fmt.Errorf("replica max %d %v; client %+v", m, ok, c.Status())
		}
		return nil
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	frags, err := replica.Get(1)
	if err != nil || len(frags[0].GetChanges()[0].GetRows().GetRows()[0].GetAfter()[0].GetBytes()) != 9<<20 {
		t.Fatalf("seqno 1 on the replica: %v", err)
	}
}

// An event over the message limit stops the client with an error naming
// its seqno and the limit, everything before it stored: it does not retry
// the same event forever (which looked like a live, idle replica).
func TestEventOverLimitStopsClient(t *testing.T) {
	master, replica := openStore(t), openStore(t)
	master.Append(ev(0, 0), ev(1, 0), ev(2, 0), blob(3, 2<<20), ev(4, 0))
	addr := serve(t, master)
	c, _ := NewClient(ClientConfig{Service: "east", Sources: []string{addr, addr}, MaxMessageSize: 1 << 20,
		MinBackoff: 10 * time.Millisecond, Logger: testutil.Logger(t)})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := c.Run(ctx, fetchStore{replica})
	var le *LimitError
	if !errors.As(err, &le) || !errors.Is(err, ErrTooLarge) || le.Seqno != 3 || le.Fragno != 0 ||
		!strings.Contains(err.Error(), "seqno 3 fragno 0") || !strings.Contains(err.Error(), "takes up to 1048576 bytes") {
		t.Fatalf("Run = %v", err)
	}
	if m, _ := replica.MaxSeqno(); m != 2 {
		t.Fatalf("replica max %d, want 2", m)
	}
	if st := c.Status(); st.Connected || !strings.Contains(st.LastError, "seqno 3") {
		t.Fatalf("status %+v", st)
	}
}

// A replica whose THL refuses an event stops: another source would send
// the same event.
func TestStoreFailureStopsClient(t *testing.T) {
	master, replica := openStore(t), openStore(t)
	master.Append(ev(0, 0), ev(1, 0))
	replica.Append(ev(0, 0))
	c, _ := NewClient(ClientConfig{Service: "east", Sources: []string{serve(t, master)}, MinBackoff: 10 * time.Millisecond, Logger: testutil.Logger(t)})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// The replica's store claims to end at seqno 0 but refuses seqno 1.
	err := c.Run(ctx, refusing{fetchStore{replica}})
	if !errors.Is(err, ErrStore) || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("Run = %v", err)
	}
}

type refusing struct{ fetchStore }

func (refusing) Append(...*thlpb.Event) error { return errors.New("append refused") }

// A replica source whose log ends before the client's last transaction
// (it restarted, or it is behind the source the client read before) has
// not diverged from the client: the client waits for it, or reads from
// another source, and goes on once it has caught up.
func TestReplicaSourceBehindClient(t *testing.T) {
	relay, replica := openStore(t), openStore(t)
	for i := uint64(0); i < 5; i++ {
		replica.Append(ev(i, 0))
		if i < 3 {
			relay.Append(ev(i, 0))
		}
	}
	addr, _ := serveStoppable(t, relay) // serves as a slave
	c, _ := NewClient(ClientConfig{Service: "east", Sources: []string{addr}, MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond, Logger: testutil.Logger(t)})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, fetchStore{replica}) }()
	testutil.Eventually(t, 5*time.Second, func() error {
		if st := c.Status(); !strings.Contains(st.LastError, "ends at seqno 2 and the client holds seqno 4") {
			return fmt.Errorf("status %+v", st)
		}
		return nil
	})
	for i := uint64(3); i < 8; i++ {
		relay.Append(ev(i, 0))
	}
	testutil.Eventually(t, 5*time.Second, func() error {
		if m, _ := replica.MaxSeqno(); m != 7 {
			return fmt.Errorf("replica max %d", m)
		}
		return nil
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
}
