package extract

import (
	"context"
	"database/sql"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	"github.com/carbidedb/carbide/internal/mysqld"
	"github.com/carbidedb/carbide/internal/position"
	"github.com/carbidedb/carbide/internal/testutil"
	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

// waitFor bounds a wait for extracted transactions: generous, since make test runs
// this package beside others that load both cores (TestSpillLargeTransaction
// took just over 15 s there).
const waitFor = 60 * time.Second

var position0 = position.Position{File: "mysql-bin.000001", Offset: 4}

func vNull() *thlpb.Value         { return &thlpb.Value{Value: &thlpb.Value_Null{Null: true}} }
func vInt(i int64) *thlpb.Value   { return &thlpb.Value{Value: &thlpb.Value_Int{Int: i}} }
func vUint(u uint64) *thlpb.Value { return &thlpb.Value{Value: &thlpb.Value_Uint{Uint: u}} }
func vDec(s string) *thlpb.Value  { return &thlpb.Value{Value: &thlpb.Value_Decimal{Decimal: s}} }
func vFloat(f float32) *thlpb.Value {
	return &thlpb.Value{Value: &thlpb.Value_Float{Float: f}}
}
func vDouble(f float64) *thlpb.Value { return &thlpb.Value{Value: &thlpb.Value_Double{Double: f}} }
func vText(s string) *thlpb.Value    { return &thlpb.Value{Value: &thlpb.Value_Text{Text: s}} }
func vBytes(s string) *thlpb.Value   { return &thlpb.Value{Value: &thlpb.Value_Bytes{Bytes: []byte(s)}} }

// startDB starts a MariaDB and returns it with a root pool.
func startDB(t testing.TB, opts ...testutil.Option) (*mysqld.Server, *sql.DB) {
	t.Helper()
	srv := testutil.StartMariaDB(t, opts...)
	return srv, testutil.DB(t, srv)
}

// newExtractor makes an extractor for srv as the tungsten user, Service
// east, changed by edit.
func newExtractor(t testing.TB, srv *mysqld.Server, edit func(*Config)) *Extractor {
	t.Helper()
	cfg := Config{Addr: srv.Addr(), User: "tungsten", Password: "secret", Service: "east", SourceID: "east1", Logger: testutil.Logger(t)}
	if edit != nil {
		edit(&cfg)
	}
	x, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.Close() })
	return x
}

func currentPosition(t testing.TB, x *Extractor) position.Position {
	t.Helper()
	p, err := x.CurrentPosition(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// collector runs an extractor and keeps the transactions it sends, each
// whole: the calls to send of one transaction joined up to its LastFrag.
type collector struct {
	mu    sync.Mutex
	txs   [][]*thlpb.Event
	part  []*thlpb.Event // the transaction being sent in parts
	calls []int          // calls to send per transaction

	cancel context.CancelFunc
	done   chan error
}

// start runs x from `from` until the test ends (or stop).
func start(t testing.TB, x *Extractor, from position.Position) *collector {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	c := &collector{cancel: cancel, done: make(chan error, 1)}
	go func() {
		calls := 0
		c.done <- x.Run(ctx, from, func(evs []*thlpb.Event) error {
			c.mu.Lock()
			defer c.mu.Unlock()
			for i, ev := range evs[:max(len(evs)-1, 0)] {
				if ev.LastFrag {
					t.Errorf("a call to send carries fragment %d of %d marked LastFrag: a transaction ends at the last of a call", i, len(evs))
				}
			}
			c.part = append(c.part, evs...)
			calls++
			if len(evs) > 0 && evs[len(evs)-1].LastFrag {
				c.txs, c.part = append(c.txs, c.part), nil
				c.calls = append(c.calls, calls)
				calls = 0
			}
			return nil
		})
	}()
	t.Cleanup(func() { c.stop(t) })
	return c
}

// stop cancels Run and fails the test if it had failed.
func (c *collector) stop(t testing.TB) {
	t.Helper()
	c.cancel()
	if err, ok := <-c.done; ok {
		close(c.done)
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	}
}

// wait returns the first n transactions once they have arrived; it fails
// at once if Run returns.
func (c *collector) wait(t testing.TB, n int) [][]*thlpb.Event {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	tick := time.NewTicker(testutil.PollInterval)
	defer tick.Stop()
	for {
		c.mu.Lock()
		have := len(c.txs)
		if have >= n {
			out := append([][]*thlpb.Event(nil), c.txs[:n]...)
			c.mu.Unlock()
			return out
		}
		c.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d transactions extracted within %s", have, n, waitFor)
		}
		select {
		case err := <-c.done:
			c.done <- err
			t.Fatalf("Run returned with %d of %d transactions: %v", have, n, err)
		case <-tick.C:
		}
	}
}

func (c *collector) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.txs)
}

// rowChanges returns the row changes of a one-fragment transaction.
func rowChanges(t testing.TB, tx []*thlpb.Event) []*thlpb.RowChange {
	t.Helper()
	var out []*thlpb.RowChange
	for _, ev := range tx {
		for _, ch := range ev.GetChanges() {
			if rc := ch.GetRows(); rc != nil {
				out = append(out, rc)
			}
		}
	}
	return out
}

// eqValues compares two row images value by value, naming the columns.
func eqValues(t testing.TB, what string, cols []*thlpb.Column, got, want []*thlpb.Value) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d values, want %d", what, len(got), len(want))
		return
	}
	for i := range want {
		if !proto.Equal(got[i], want[i]) {
			t.Errorf("%s column %s: got %s, want %s", what, cols[i].GetName(), prototext.Format(got[i]), prototext.Format(want[i]))
		}
	}
}

// conn returns one connection of db with the given session settings.
func conn(t testing.TB, db *sql.DB, setup ...string) *sql.Conn {
	t.Helper()
	c, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	for _, q := range setup {
		execConn(t, c, q)
	}
	return c
}

func execConn(t testing.TB, c *sql.Conn, q string, args ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.ExecContext(ctx, q, args...); err != nil {
		t.Fatalf("exec %q: %v", q, err)
	}
}
