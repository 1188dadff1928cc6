package apply

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/carbidedb/carbide/internal/testutil"
	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

// While the database holds the applier back (a table lock), it reads
// ahead at most QueueBytes of events, not QueueSize events of any size.
func TestApplierReadsAheadBoundedBytes(t *testing.T) {
	testutil.RequireDB(t)
	srv := testutil.StartMariaDB(t)
	db := testutil.DB(t, srv)
	testutil.Exec(t, db, "CREATE DATABASE app")
	testutil.Exec(t, db, "CREATE TABLE app.t (id INT PRIMARY KEY)")
	a, err := New(Config{Addr: srv.Addr(), User: "tungsten", Password: "secret", Service: "east", Logger: testutil.Logger(t),
		QueueBytes: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	lock, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if _, err := lock.ExecContext(context.Background(), "LOCK TABLES app.t WRITE"); err != nil {
		t.Fatal(err)
	}
	var read atomic.Int64
	const size = 1 << 20 // what each event claims to weigh in the THL
	next := func(ctx context.Context) (*thlpb.Event, int, error) {
		n := read.Add(1) - 1
		if n >= 100 {
			<-ctx.Done()
			return nil, 0, ctx.Err()
		}
		return rowsEvent(uint64(n), thlpb.RowChange_INSERT, "t", cols("id"), &thlpb.Row{After: []*thlpb.Value{vInt(n)}}), size, nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx, next) }()
	time.Sleep(500 * time.Millisecond)
	// 8 MB of queue, the events of the block being applied (10) and one
	// waiting for room.
	if n := read.Load(); n > 8+10+2 {
		t.Errorf("read %d events of 1 MB ahead of a blocked database with QueueBytes 8 MB", n)
	}
	if _, err := lock.ExecContext(context.Background(), "UNLOCK TABLES"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for p, _ := a.Position(); p.Seqno < 99 && time.Now().Before(deadline); p, _ = a.Position() {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	if got := testutil.QueryString(t, db, "SELECT COUNT(*) FROM app.t"); got != "100" {
		t.Fatalf("%s rows applied of 100", got)
	}
}
