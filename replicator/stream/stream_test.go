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
	g := grpc.NewServer()
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
	// A client ahead of the server waits until the server's log reaches
	// its last seqno; that seqno there is another transaction: diverged.
	replica.Append(ev(11, 0))
	master2 := openStore(t)
	for i := uint64(0); i < 5; i++ {
		master2.Append(ev(i, 0))
	}
	c2, _ := NewClient(ClientConfig{Service: "east", Sources: []string{serve(t, master2)}})
	done := make(chan error, 1)
	go func() { done <- c2.Run(ctx, fetchStore{replica}) }()
	select {
	case err := <-done:
		t.Fatalf("a client ahead of its source was refused before the source reached its seqno: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	for i := uint64(5); i < 12; i++ {
		e := ev(i, 0)
		if i == 11 {
			e.EventId = "mysql-bin.000002:0000000000000004"
		}
		master2.Append(e)
	}
	if err := <-done; !errors.Is(err, ErrDiverged) || !strings.Contains(err.Error(), "diverged at seqno 11") {
		t.Fatalf("client ahead of a source whose seqno 11 differs: %v", err)
	}
}

// TestClientAheadOfLaggingSource: a reader moved to a source that is
// behind it (a replica of the same primary) waits for it, then goes on
// after its own last transaction, fetching nothing twice.
func TestClientAheadOfLaggingSource(t *testing.T) {
	source, reader := openStore(t), openStore(t)
	for i := uint64(0); i < 20; i++ {
		reader.Append(ev(i, 0))
	}
	for i := uint64(0); i < 8; i++ {
		source.Append(ev(i, 0))
	}
	c, _ := NewClient(ClientConfig{Service: "east", Sources: []string{serve(t, source)}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, fetchStore{reader}) }()
	time.Sleep(200 * time.Millisecond)
	for i := uint64(8); i < 25; i++ {
		source.Append(ev(i, 0))
	}
	testutil.Eventually(t, 5*time.Second, func() error {
		if m, _ := reader.MaxSeqno(); m != 24 {
			return fmt.Errorf("reader holds up to %d, want 24", m)
		}
		return nil
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	for i := uint64(0); i < 25; i++ {
		frags, err := reader.Get(i)
		if err != nil || len(frags) != 1 || frags[0].GetEventId() != ev(i, 0).GetEventId() {
			t.Fatalf("seqno %d: %v %v", i, frags, err)
		}
	}
}
