package bench

import (
	"fmt"
	"testing"

	"github.com/carbidedb/carbide/replicator/apply"
)

// BenchmarkReplicationApplyConflictDetection measures what conflict
// detection costs the applier: the backlog of BenchmarkReplicationApply
// (CARBIDE_BENCH_TX sysbench oltp_write_only transactions) applied with
// detection on (the default: keyed UPDATEs and DELETEs match the
// before-image and a guard checks the row count) and off, in blocks of the
// default size, CARBIDE_BENCH_PAIRS times each (3 by default), alternating
// which goes first, after a warm-up run not counted (the first apply after
// the setup ran a third slower, whichever way went first); each row is the
// median run. detection-on's on-vs-off is its tx/s over detection-off's
// (goal: at least 0.9).
func BenchmarkReplicationApplyConflictDetection(b *testing.B) {
	requireEnabled(b)
	env := setupBacklog(b, sysbenchWorkload(applyTx, false))
	pairs := envInt("CARBIDE_BENCH_PAIRS", 3)
	block := apply.DefaultConfig().BlockSize
	runs := map[bool][]result{}
	n := 1
	b.Run("warm-up", func(b *testing.B) {
		env.carbide(b, n, block, 1, "warm-up", false, apply.Conflicts{}).report(b)
	})
	for k := range pairs {
		order := []bool{true, false}
		if k%2 == 1 {
			order = []bool{false, true}
		}
		for _, on := range order {
			n++
			name := fmt.Sprintf("detection-%v-run%d", map[bool]string{true: "on", false: "off"}[on], k)
			var r result
			b.Run(name, func(b *testing.B) {
				r = env.carbide(b, n, block, 1, name, false, apply.Conflicts{Off: !on})
				r.report(b)
			})
			if b.Failed() {
				return
			}
			runs[on] = append(runs[on], r)
		}
	}
	on, off := medianRate(runs[true]), medianRate(runs[false])
	b.Run("detection-off-median", func(b *testing.B) { off.report(b) })
	b.Run("detection-on-median", func(b *testing.B) {
		on.metrics["on-vs-off"] = on.metrics["tx/s"] / off.metrics["tx/s"]
		on.report(b)
	})
}
