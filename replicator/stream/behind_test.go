package stream

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/carbidedb/carbide/internal/testutil"
	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

// A replica source that is behind the client but holds another history
// (the origin's THL was rewritten: a new history from seqno 0, shorter
// than the client's) is not merely behind: the client stops as diverged
// instead of waiting for it for ever.
func TestBehindSourceWithAnotherHistory(t *testing.T) {
	relay, replica := openStore(t), openStore(t)
	for i := uint64(0); i < 5; i++ {
		replica.Append(ev(i, 0))
	}
	for i := uint64(0); i < 3; i++ {
		other := &thlpb.Event{Seqno: i, Epoch: 0, LastFrag: true, EventId: fmt.Sprintf("mysql-bin.000007:%016d", 500+i), SourceId: "east2"}
		relay.Append(other)
	}
	addr, _ := serveStoppable(t, relay) // serves as a slave
	c, _ := NewClient(ClientConfig{Service: "east", Sources: []string{addr}, MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond, Logger: testutil.Logger(t)})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := c.Run(ctx, fetchStore{replica})
	if !errors.Is(err, ErrDiverged) || !strings.Contains(err.Error(), "at seqno 2") {
		t.Fatalf("Run = %v, want it diverged at seqno 2", err)
	}
	if m, _ := replica.MaxSeqno(); m != 4 {
		t.Fatalf("the replica's THL changed: max %d", m)
	}
}
