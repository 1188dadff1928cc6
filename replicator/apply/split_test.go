package apply

import (
	"fmt"
	"testing"

	"github.com/carbidedb/carbide/internal/testutil"
	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

// A block that meets a conflict is split down to the transaction that
// holds it: only that one is applied in conflict mode, the others commit
// in blocks, and every row ends as the policy says, each conflict recorded
// once (a row changed again later in the block is verified again after a
// split). Where half of them meet one, a split finds that and the next
// blocks split straight into single transactions (only those in conflict
// go to conflict mode); where every one does, whole blocks go.
func TestConflictSplitsBlock(t *testing.T) {
	testutil.RequireDB(t)
	srv := testutil.StartMariaDB(t)
	db := testutil.DB(t, srv)
	c := cols("id", "v")
	for _, tc := range []struct {
		name     string
		channels int
		every    int // every n-th row holds another site's value
		// conflict mode's transactions and blocks: each conflicting one
		// alone when conflicts are sparse or half dense; when every
		// transaction meets one, whole blocks after a split found that.
		txns, minBlocks, maxBlocks uint64
	}{
		{"serial", 1, 10, 10, 10, 10},
		{"parallel", 4, 10, 10, 10, 10},
		{"half", 1, 2, 50, 50, 50},
		{"dense", 1, 1, 100, 12, 50},
	} {
		t.Run(tc.name, func(t *testing.T) {
			freshApp(t, db, "CREATE TABLE app.t (id INT PRIMARY KEY, v INT)")
			const rows = 100
			for i := range rows {
				v := 0
				if i%tc.every == 7%tc.every {
					v = -1
				}
				testutil.Exec(t, db, fmt.Sprintf("INSERT INTO app.t VALUES (%d, %d)", i, v))
			}
			a := newConflictApplier(t, srv.Addr(), tc.channels, PolicyConverge, "east", "west")
			var evs []*thlpb.Event
			for i := range rows {
				// Each transaction sets its row to 1, and the row of the
				// transaction before it (set to 1 there) to 2: a row a
				// block changes twice, in two transactions.
				ev := from("east", rowsEvent(uint64(i), thlpb.RowChange_UPDATE, "t", c,
					&thlpb.Row{Before: row(vInt(int64(i)), vInt(0)), After: row(vInt(int64(i)), vInt(1))}))
				if i > 0 {
					ev.Changes = append(ev.Changes, rowsEvent(uint64(i), thlpb.RowChange_UPDATE, "t", c,
						&thlpb.Row{Before: row(vInt(int64(i-1)), vInt(1)), After: row(vInt(int64(i-1)), vInt(2))}).Changes...)
				}
				evs = append(evs, ev)
			}
			if err := runUntil(t, a, rows-1, evs...); err != nil {
				t.Fatal(err)
			}
			// east wins: its 1 over -1, then its 2; the last row stays 1.
			if got := testutil.QueryString(t, db, "SELECT CONCAT(COUNT(*), '/', SUM(v)) FROM app.t"); got != fmt.Sprintf("%d/%d", rows, 2*(rows-1)+1) {
				t.Errorf("rows/sum = %s, want %d/%d", got, rows, 2*(rows-1)+1)
			}
			q := fmt.Sprintf("SELECT CONCAT(COUNT(*), '/', COUNT(DISTINCT seqno), '/', SUM(seqno %% %d <> %d)) FROM tungsten_east.conflicts", tc.every, 7%tc.every)
			if got, want := testutil.QueryString(t, db, q), fmt.Sprintf("%d/%d/0", tc.txns, tc.txns); got != want {
				t.Errorf("conflicts count/distinct/others = %s, want %s", got, want)
			}
			if got := testutil.QueryString(t, db, "SELECT seqno FROM tungsten_east.trep_commit_seqno"); got != fmt.Sprint(rows-1) {
				t.Errorf("tracking row at %s", got)
			}
			t.Logf("conflict mode: %d transactions in %d blocks", a.resolvedTxns.Load(), a.resolvedBlocks.Load())
			if n, b := a.resolvedTxns.Load(), a.resolvedBlocks.Load(); n != tc.txns || b < tc.minBlocks || b > tc.maxBlocks {
				t.Errorf("%d transactions (%d blocks) applied in conflict mode, want %d (%d to %d blocks)", n, b, tc.txns, tc.minBlocks, tc.maxBlocks)
			}
		})
	}
}
