package extract

import (
	"context"
	"fmt"
	"testing"

	"github.com/carbidedb/carbide/internal/position"
	"github.com/carbidedb/carbide/internal/testutil"
	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

// TestRunTailAfterCrash: transactions the database committed after the
// last one extracted, when its process dies (kill -9), are read from its
// binlog files, each once, in order; a second read from the end finds
// nothing more.
func TestRunTailAfterCrash(t *testing.T) {
	t.Parallel()
	srv, db := startDB(t)
	x := newExtractor(t, srv, nil)
	from := currentPosition(t, x)
	testutil.Exec(t, db, "CREATE DATABASE app")
	testutil.Exec(t, db, "CREATE TABLE app.t (id INT PRIMARY KEY, v VARCHAR(20))")
	c := start(t, x, from)
	got := c.wait(t, 2)
	c.stop(t)
	last, err := position.Parse(got[len(got)-1][0].GetEventId())
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 10; i++ {
		testutil.Exec(t, db, fmt.Sprintf("INSERT INTO app.t VALUES (%d, 'after %d')", i, i))
	}
	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	var tail [][]*thlpb.Event
	end, err := x.RunTail(context.Background(), last, position.Position{}, func(frags []*thlpb.Event) error {
		tail = append(tail, frags)
		return nil
	})
	if err != nil {
		t.Fatalf("RunTail: %v", err)
	}
	if len(tail) != 10 {
		t.Fatalf("the tail holds %d transactions, want the 10 committed after the last extracted", len(tail))
	}
	for i, tx := range tail {
		rcs := rowChanges(t, tx)
		if len(rcs) != 1 || rcs[0].Rows[0].After[0].GetInt() != int64(i+1) {
			t.Fatalf("tail transaction %d: %v", i, rcs)
		}
	}
	again := 0
	if _, err := x.RunTail(context.Background(), end, position.Position{}, func([]*thlpb.Event) error { again++; return nil }); err != nil || again != 0 {
		t.Fatalf("a second read from the end: %d transactions, %v", again, err)
	}
}
