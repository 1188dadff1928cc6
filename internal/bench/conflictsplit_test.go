package bench

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/carbidedb/carbide/internal/testutil"
	"github.com/carbidedb/carbide/replicator/apply"
	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

// BenchmarkReplicationApplyConflictSplit measures what a block that meets a
// conflict costs: a backlog of CARBIDE_BENCH_CONFLICT_TX transactions
// (20,000 by default), each updating two rows of app.t (its own row, and
// the row of the transaction before it, again), where every tenth meets a
// conflict (its row holds another value on the target), applied under the
// log policy in blocks of the default size; then half as many where every
// second one does (half: dense, split into single transactions), and a
// quarter as many where every transaction meets one (all: dense, whole
// blocks in conflict mode). split: the block is split
// down to the transaction in conflict, which alone goes to conflict mode
// (the default); whole-block-baseline: the whole block goes to conflict
// mode, one transaction at a time (apply.Conflicts.WholeBlocks, as before
// splitting). Each way CARBIDE_BENCH_PAIRS times (3 by default),
// alternating which goes first, after a warm-up run; the median rows
// compare them (split-vs-whole). Every run ends by checking every row and
// the conflicts recorded, once each.
func BenchmarkReplicationApplyConflictSplit(b *testing.B) {
	requireEnabled(b)
	txns := envInt("CARBIDE_BENCH_CONFLICT_TX", 20000)
	pairs := envInt("CARBIDE_BENCH_PAIRS", 3)
	srv := startServer(b, filepath.Join(b.TempDir(), "target"), 300, testutil.Template(b))
	for _, c := range []struct {
		name        string
		every, txns int
	}{{"tenth", 10, txns}, {"half", 2, txns / 2}, {"all", 1, txns / 4}} {
		evs := conflictBacklog(c.txns)
		b.Run(c.name, func(b *testing.B) {
			runs := map[bool][]result{}
			run := func(name string, whole bool) result {
				var r result
				b.Run(name, func(b *testing.B) {
					r = applyConflictBacklog(b, srv, evs, c.every, name, whole)
					r.report(b)
				})
				return r
			}
			run("warm-up", false)
			for k := range pairs {
				order := []bool{false, true}
				if k%2 == 1 {
					order = []bool{true, false}
				}
				for _, whole := range order {
					r := run(fmt.Sprintf("%s-run%d", map[bool]string{false: "split", true: "whole-block-baseline"}[whole], k), whole)
					if b.Failed() {
						return
					}
					runs[whole] = append(runs[whole], r)
				}
			}
			split, whole := medianRate(runs[false]), medianRate(runs[true])
			b.Run("whole-block-baseline-median", func(b *testing.B) { whole.report(b) })
			b.Run("split-median", func(b *testing.B) {
				split.metrics["split-vs-whole"] = split.metrics["tx/s"] / whole.metrics["tx/s"]
				split.report(b)
			})
		})
	}
}

// conflictBacklog returns the transactions of the backlog: transaction i
// sets row i from 0 to 1 and row i-1 from 1 to 2.
func conflictBacklog(n int) []*thlpb.Event {
	cols := []*thlpb.Column{{Name: "id", Key: true}, {Name: "v"}}
	val := func(i int) *thlpb.Value { return &thlpb.Value{Value: &thlpb.Value_Int{Int: int64(i)}} }
	update := func(id, from, to int) *thlpb.Change {
		return &thlpb.Change{Change: &thlpb.Change_Rows{Rows: &thlpb.RowChange{Schema: "app", Table: "t", Action: thlpb.RowChange_UPDATE, Columns: cols,
			Rows: []*thlpb.Row{{Before: []*thlpb.Value{val(id), val(from)}, After: []*thlpb.Value{val(id), val(to)}}}}}}
	}
	now := time.Now().UnixMicro()
	evs := make([]*thlpb.Event, n)
	for i := range n {
		ev := &thlpb.Event{Seqno: uint64(i), LastFrag: true, EventId: fmt.Sprintf("mysql-bin.000001:%016d", 100+i), SourceId: "east1",
			Shard: "app", SourceCommitTimeUs: now, Changes: []*thlpb.Change{update(i, 0, 1)}}
		if i > 0 {
			ev.Changes = append(ev.Changes, update(i-1, 1, 2))
		}
		evs[i] = ev
	}
	return evs
}

// applyConflictBacklog sets app.t on srv as the backlog expects it, one
// row in every (i % every == 7 % every) holding -1, applies evs and checks
// the rows.
func applyConflictBacklog(b *testing.B, srv *server, evs []*thlpb.Event, every int, name string, whole bool) result {
	n, at := len(evs), 7%every
	for _, q := range []string{
		"DROP DATABASE IF EXISTS app", "DROP DATABASE IF EXISTS tungsten_" + applyService, "CREATE DATABASE app",
		"CREATE TABLE app.t (id INT PRIMARY KEY, v INT NOT NULL)",
		fmt.Sprintf("INSERT INTO app.t SELECT seq, IF(seq %% %d = %d, -1, 0) FROM app.seq_0_to_%d", every, at, n-1),
	} {
		if _, err := srv.db.Exec(q); err != nil {
			b.Fatalf("%s: %v", q, err)
		}
	}
	a, err := apply.New(apply.Config{Addr: srv.Addr(), User: dbUser, Password: dbPassword, Service: applyService,
		Conflicts: apply.Conflicts{Policy: apply.PolicyLog, WholeBlocks: whole}})
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	if err := a.Open(ctx); err != nil {
		b.Fatal(err)
	}
	i := 0
	next := func(ctx context.Context) (*thlpb.Event, int, error) {
		if i < len(evs) {
			i++
			return evs[i-1], proto.Size(evs[i-1]), nil
		}
		<-ctx.Done()
		return nil, 0, ctx.Err()
	}
	elapsed, srvCPU, goCPU := timedApply(ctx, b, a, next, uint64(n-1), n, srv.PID(), name)
	// Every row 2 but the last (1); a conflict recorded once for each
	// transaction whose row held -1.
	var rows, sum, conflicts, distinct int
	if err := srv.db.QueryRow("SELECT COUNT(*), SUM(v) FROM app.t").Scan(&rows, &sum); err != nil {
		b.Fatal(err)
	}
	if err := srv.db.QueryRow("SELECT COUNT(*), COUNT(DISTINCT seqno) FROM tungsten_"+applyService+".conflicts").Scan(&conflicts, &distinct); err != nil {
		b.Fatal(err)
	}
	if want := (n - at + every - 1) / every; rows != n || sum != 2*(n-1)+1 || conflicts != want || distinct != want {
		b.Fatalf("%d rows summing to %d, %d conflicts (%d seqnos): want %d rows summing to %d, %d conflicts once each", rows, sum, conflicts, distinct, n, 2*(n-1)+1, want)
	}
	b.Logf("%d transactions in %s; target CPU %s, this process's CPU %s; %d conflicts", n, elapsed.Round(time.Millisecond), srvCPU, goCPU, conflicts)
	return result{elapsed: elapsed, metrics: map[string]float64{
		"tx/s":              float64(n) / elapsed.Seconds(),
		"replica-cpu-us/tx": float64(srvCPU.Microseconds()) / float64(n),
		"go-cpu-us/tx":      float64(goCPU.Microseconds()) / float64(n),
	}}
}
