package bench

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/carbidedb/carbide/internal/position"
	"github.com/carbidedb/carbide/internal/testutil"
	"github.com/carbidedb/carbide/replicator/apply"
	"github.com/carbidedb/carbide/replicator/extract"
	"github.com/carbidedb/carbide/replicator/thl"
	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

// Sizes of BenchmarkReplicationApply; the environment may shrink them
// while working on the benchmark itself.
var (
	applyTables    = envInt("CARBIDE_BENCH_TABLES", 4)
	applyTableSize = envInt("CARBIDE_BENCH_TABLE_SIZE", 100000)
	applyTx        = envInt("CARBIDE_BENCH_TX", 80000)
)

// applyService names the tracking schema of the applier (tungsten_bench).
const applyService = "bench"

// result is one measured phase, kept so that a sub-benchmark the framework
// calls again reports the same figures instead of redoing minutes of work.
type result struct {
	elapsed time.Duration
	metrics map[string]float64
}

// medianRate returns the run of rs with the median tx/s.
func medianRate(rs []result) result {
	s := slices.Clone(rs)
	slices.SortFunc(s, func(x, y result) int { return cmp.Compare(x.metrics["tx/s"], y.metrics["tx/s"]) })
	return s[len(s)/2]
}

func (r result) report(b *testing.B) {
	b.ReportMetric(float64(r.elapsed.Nanoseconds()), "ns/op")
	for unit, v := range r.metrics {
		b.ReportMetric(v, unit)
	}
}

// BenchmarkReplicationApply applies one backlog of sysbench oltp_write_only
// transactions (8 client threads on the primary, no replica attached) to
// copies of one snapshot of the primary, one copy per way, one at a time:
//
//   - native-1thread-baseline: MariaDB replication, slave_parallel_threads=0;
//   - native-4threads-optimistic-baseline: slave_parallel_threads=4,
//     slave_parallel_mode=optimistic;
//   - carbide-applier-block10: replicator/apply with its defaults (blocks of
//     10 transactions or 100 ms) reading the THL the extractor wrote;
//   - carbide-applier-block100: the same with blocks of 100.
//
// Every replica writes its binlog (native ones with log_slave_updates=ON),
// as Carbide's applier always does. Each is timed from START SLAVE (or the
// applier's Run) until it has applied the last transaction; tx/s is the
// figure to quote; the CPU figures say what each way costs the replica's
// mariadbd and this process. Setup rows report the sysbench load on the
// primary and the extractor's binlog-to-THL rate (run after the load). At
// the end, every replica's tables must match the primary's. Each way runs
// once, whatever b.N (make bench passes -benchtime 1x).
func BenchmarkReplicationApply(b *testing.B) {
	requireEnabled(b)
	env := setupBacklog(b, sysbenchWorkload(applyTx, false))
	// The parent's own log is not shown when it passes: the setup rows
	// carry it.
	b.Run("primary-load-sysbench-8threads", func(b *testing.B) {
		for _, n := range env.loadNotes {
			b.Log(n)
		}
		env.load.report(b)
	})
	b.Run("carbide-extract-to-thl", func(b *testing.B) {
		b.Log(env.extractNote)
		env.extract.report(b)
	})

	results := map[string]result{}
	run := func(name string, f func(b *testing.B) result) {
		b.Run(name, func(b *testing.B) {
			r, ok := results[name]
			if !ok {
				r = f(b)
				if b.Failed() {
					return
				}
				results[name] = r
			}
			r.report(b)
		})
	}
	run("native-1thread-baseline", func(b *testing.B) result {
		return env.native(b, 1, "slave_parallel_threads=0")
	})
	run("native-4threads-optimistic-baseline", func(b *testing.B) result {
		return env.native(b, 2, "slave_parallel_threads=4", "slave_parallel_mode=optimistic")
	})
	type variant struct {
		block, channels int
		binlog          bool // every row from its source events (apply.Config.BinlogRows)
	}
	variants := []variant{{block: apply.DefaultConfig().BlockSize, channels: 1}}
	if variants[0].block != 100 {
		variants = append(variants, variant{block: 100, channels: 1})
	}
	variants = append(variants, variant{block: apply.DefaultConfig().BlockSize, channels: 4})
	variants = append(variants, variant{block: apply.DefaultConfig().BlockSize, channels: 1, binlog: true})
	for i, v := range variants {
		name := fmt.Sprintf("carbide-applier-block%d", v.block)
		if v.channels > 1 {
			name += fmt.Sprintf("-%dchannels", v.channels)
		}
		if v.binlog {
			name += "-binlog-statements"
		}
		run(name, func(b *testing.B) result {
			r := env.carbide(b, 3+i, v.block, v.channels, name, v.binlog, apply.Conflicts{})
			for base, key := range map[string]string{"native-1thread-baseline": "vs-native-1thread", "native-4threads-optimistic-baseline": "vs-native-4threads"} {
				if n, ok := results[base]; ok {
					r.metrics[key] = r.metrics["tx/s"] / n.metrics["tx/s"]
				}
			}
			return r
		})
	}
}

// backlog is the shared setup: a primary with the backlog in its binlog,
// the snapshot copies, and the THL holding the same transactions.
type backlog struct {
	dir         string
	primary     *server
	snapshot    string // a stopped copy of the primary's datadir at the snapshot
	from, to    position.Position
	store       *thl.Store
	txns        int
	lastSeqno   uint64
	load        result
	extract     result
	tables      []string // the tables every replica must end equal on
	primarySums []string // CHECKSUM TABLE of the tables after the load
	loadNotes   []string
	extractNote string
}

// workload makes a backlog: prepare fills the primary before the
// snapshot (and names the tables every replica must end equal on), run
// writes the backlog and returns how many transactions it committed.
type workload struct {
	name    string
	prepare func(b *testing.B, e *backlog, p *server) []string
	run     func(b *testing.B, e *backlog, p *server) int
}

// sysbenchWorkload is sysbench oltp_write_only, 8 threads, applyTx
// transactions on applyTables tables of applyTableSize rows; triggers
// adds an AFTER INSERT/UPDATE/DELETE trigger writing an audit table to
// every table (on the primary and so on every snapshot copy).
func sysbenchWorkload(tx int, triggers bool) workload {
	name := "sysbench"
	if triggers {
		name = "sysbench-triggers"
	}
	return workload{
		name: name,
		prepare: func(b *testing.B, e *backlog, p *server) []string {
			begin := time.Now()
			p.exec(b, "CREATE DATABASE sbtest")
			sysbench(b, p, applyTables, applyTableSize, "--threads="+strconv.Itoa(min(applyTables, 4)), "prepare")
			e.note("primary %s: sysbench prepare of %d×%d rows took %s", p.Addr(), applyTables, applyTableSize, time.Since(begin).Round(time.Millisecond))
			var tables []string
			for i := 1; i <= applyTables; i++ {
				tables = append(tables, fmt.Sprintf("sbtest.sbtest%d", i))
			}
			if triggers {
				p.exec(b, "CREATE TABLE sbtest.audit (n BIGINT AUTO_INCREMENT PRIMARY KEY, tbl INT, op CHAR(1), id INT)")
				for i := 1; i <= applyTables; i++ {
					for _, op := range []struct{ when, row, code string }{{"INSERT", "NEW", "i"}, {"UPDATE", "NEW", "u"}, {"DELETE", "OLD", "d"}} {
						p.exec(b, fmt.Sprintf("CREATE TRIGGER sbtest.sbtest%d_%s AFTER %s ON sbtest.sbtest%d FOR EACH ROW INSERT INTO sbtest.audit (tbl, op, id) VALUES (%d, '%s', %s.id)",
							i, op.code, op.when, i, i, op.code, op.row))
					}
				}
				tables = append(tables, "sbtest.audit")
			}
			return tables
		},
		run: func(b *testing.B, e *backlog, p *server) int {
			begin, pressure0 := time.Now(), readStall()
			out := sysbench(b, p, applyTables, applyTableSize, "--threads=8", "--events="+strconv.Itoa(tx), "--time=0", "run")
			loadTime := time.Since(begin)
			m := sysbenchTx.FindStringSubmatch(out)
			if m == nil {
				b.Fatalf("no transaction count in sysbench's output:\n%s", out)
			}
			sbTx, _ := strconv.Atoi(m[1])
			sbRate, _ := strconv.ParseFloat(m[2], 64)
			e.load = result{elapsed: loadTime, metrics: map[string]float64{"tx/s": sbRate}}
			e.note("sysbench run, 8 threads: %d transactions at %.0f tx/s (%s); the primary was idle again %s later",
				sbTx, sbRate, pressure0.since(), waitIdle(p.PID(), time.Minute).Round(time.Millisecond))
			return sbTx
		},
	}
}

// largeTxWorkload: n UPDATEs of every row of a 100,000-row table, one
// transaction each.
func largeTxWorkload(n int) workload {
	const rows = 100000
	return workload{
		name: "large-transactions",
		prepare: func(b *testing.B, e *backlog, p *server) []string {
			p.exec(b, "CREATE DATABASE big",
				"CREATE TABLE big.t (id INT PRIMARY KEY, v INT, pad CHAR(60))",
				fmt.Sprintf("INSERT INTO big.t SELECT seq, 0, REPEAT('p', 60) FROM big.seq_1_to_%d", rows))
			return []string{"big.t"}
		},
		run: func(b *testing.B, e *backlog, p *server) int {
			begin := time.Now()
			for range n {
				p.exec(b, "UPDATE big.t SET v = v + 1")
			}
			e.load = result{elapsed: time.Since(begin), metrics: map[string]float64{"tx/s": float64(n) / time.Since(begin).Seconds()}}
			e.note("%d UPDATEs of %d rows each took %s", n, rows, time.Since(begin).Round(time.Millisecond))
			return n
		},
	}
}

// bigRowWorkload: n INSERTs of one row holding an 8 MB LONGBLOB.
func bigRowWorkload(n int) workload {
	return workload{
		name: "8mb-rows",
		prepare: func(b *testing.B, e *backlog, p *server) []string {
			p.exec(b, "CREATE DATABASE blobs", "CREATE TABLE blobs.t (id INT PRIMARY KEY, b LONGBLOB)")
			return []string{"blobs.t"}
		},
		run: func(b *testing.B, e *backlog, p *server) int {
			begin := time.Now()
			for i := range n {
				p.exec(b, fmt.Sprintf("INSERT INTO blobs.t VALUES (%d, REPEAT(CHAR(65 + %d %% 26), 8 << 20))", i, i))
			}
			e.load = result{elapsed: time.Since(begin), metrics: map[string]float64{"tx/s": float64(n) / time.Since(begin).Seconds()}}
			e.note("%d INSERTs of one 8 MB row took %s", n, time.Since(begin).Round(time.Millisecond))
			return n
		},
	}
}

func setupBacklog(b *testing.B, w workload) *backlog {
	b.Helper()
	e := &backlog{dir: b.TempDir()}
	tmpl := testutil.Template(b)

	// 1. The primary, prepared.
	p := startServer(b, filepath.Join(e.dir, "primary"), 100, tmpl)
	e.tables = w.prepare(b, e, p)

	// 2. The snapshot: a clean shutdown, a copy of the datadir, a restart.
	// The restart opens a new binlog file; nothing writes to it until the
	// load, so its end is where every replica starts.
	p.stop(b)
	e.snapshot = filepath.Join(e.dir, "snapshot")
	copyDatadir(b, p.Config().DataDir(), e.snapshot)
	p = p.restart(b)
	e.primary = p
	e.from = p.masterStatus(b)

	// 3. The backlog, no replica attached.
	w.run(b, e, p)
	e.to = p.masterStatus(b)
	e.note("binlog %s → %s", e.from, e.to)
	e.primarySums = p.checksums(b, e.tables)

	// The extractor, after the load (the machine has two cores): from the
	// snapshot position until it has stored the last transaction.
	store, err := thl.Open(thl.Config{Dir: filepath.Join(e.dir, "thl")})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	e.store = store
	x, err := extract.New(extract.Config{Addr: p.Addr(), User: dbUser, Password: dbPassword, Service: applyService, SourceID: "primary"})
	if err != nil {
		b.Fatal(err)
	}
	defer x.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var seqno uint64
	var last position.Position
	stopProfile := startProfile(b, w.name+"-extract")
	cpu0, pressure := selfCPU(), readStall()
	begin := time.Now()
	err = x.Run(ctx, e.from, func(frags []*thlpb.Event) error {
		for _, f := range frags {
			f.Seqno, f.Epoch = seqno, 0
		}
		if err := store.Append(frags...); err != nil {
			return err
		}
		if !frags[len(frags)-1].GetLastFrag() {
			return nil // a large transaction comes in several calls
		}
		seqno++
		if seqno%1000 == 0 {
			if err := store.Sync(); err != nil {
				return err
			}
		}
		pos, err := position.Parse(frags[len(frags)-1].GetEventId())
		if err != nil {
			return err
		}
		last = pos
		if pos.Compare(e.to) >= 0 {
			cancel()
		}
		return nil
	})
	if err == nil {
		err = store.Sync()
	}
	elapsed := time.Since(begin)
	goCPU := selfCPU() - cpu0
	stopProfile()
	if err != nil || last.Compare(e.to) < 0 {
		b.Fatalf("extract: %v (stored up to %s of %s)", err, last, e.to)
	}
	e.txns, e.lastSeqno = int(seqno), seqno-1
	e.extract = result{elapsed: elapsed, metrics: map[string]float64{
		"tx/s":         float64(seqno) / elapsed.Seconds(),
		"go-cpu-us/tx": float64(goCPU.Microseconds()) / float64(seqno),
		"thl-bytes/tx": float64(storeBytes(e.store.Dir())) / float64(seqno),
		"transactions": float64(seqno),
	}}
	e.extractNote = fmt.Sprintf("extractor, after the load: %d transactions (THL seqno 0..%d) into the THL in %s (%.0f tx/s; %s)",
		seqno, seqno-1, elapsed.Round(time.Millisecond), float64(seqno)/elapsed.Seconds(), pressure.since())
	return e
}

func storeBytes(dir string) int64 {
	var n int64
	files, _ := filepath.Glob(filepath.Join(dir, "thl.data.*"))
	for _, f := range files {
		if fi, err := os.Stat(f); err == nil {
			n += fi.Size()
		}
	}
	return n
}

func (e *backlog) note(format string, args ...any) {
	e.loadNotes = append(e.loadNotes, fmt.Sprintf(format, args...))
}

// verify fails b unless r's tables are the primary's.
func (e *backlog) verify(b *testing.B, r *server) {
	b.Helper()
	got := r.checksums(b, e.tables)
	if fmt.Sprint(got) != fmt.Sprint(e.primarySums) {
		b.Errorf("the replica's tables differ from the primary's: CHECKSUM TABLE %v, primary %v", got, e.primarySums)
		return
	}
	b.Logf("the replica's %d tables match the primary's (CHECKSUM TABLE)", len(got))
}

// replica starts the i-th copy of the snapshot.
func (e *backlog) replica(b *testing.B, i int, options ...string) *server {
	dir := filepath.Join(e.dir, fmt.Sprintf("replica%d", i))
	copyDatadir(b, filepath.Join(e.snapshot, "data"), dir)
	r := startServer(b, dir, uint32(100+i), nil, options...)
	r.waitBufferPoolLoaded(b)
	return r
}

// native applies the backlog with MariaDB's replication.
func (e *backlog) native(b *testing.B, i int, options ...string) result {
	r := e.replica(b, i, append([]string{"log_slave_updates=ON"}, options...)...)
	r.changeMaster(b, e.primary, e.from)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	st0, pressure := r.status(b), readStall()
	cpu0, pcpu0 := cpuTime(r.PID()), cpuTime(e.primary.PID())
	b.ResetTimer()
	begin := time.Now()
	r.exec(b, "START SLAVE")
	err := r.waitCaughtUp(ctx, e.to, 5*time.Millisecond)
	elapsed := time.Since(begin)
	b.StopTimer()
	if err != nil {
		b.Fatalf("native replica: %v", err)
	}
	srvCPU, pCPU := cpuTime(r.PID())-cpu0, cpuTime(e.primary.PID())-pcpu0
	b.Logf("%d transactions in %s (%s); replica CPU %s, primary CPU %s; per transaction: %s", e.txns, elapsed.Round(time.Millisecond), pressure.since(), srvCPU, pCPU, perTx(st0, r.status(b), e.txns))
	r.exec(b, "STOP SLAVE")
	e.verify(b, r)
	r.stop(b)
	os.RemoveAll(r.Dir())
	return result{elapsed: elapsed, metrics: map[string]float64{
		"tx/s":              float64(e.txns) / elapsed.Seconds(),
		"replica-cpu-us/tx": float64(srvCPU.Microseconds()) / float64(e.txns),
		"primary-cpu-us/tx": float64(pCPU.Microseconds()) / float64(e.txns),
	}}
}

// carbide applies the THL with replicator/apply in blocks of blockSize
// (BlockTime and the rest at their defaults); binlogRows applies every row
// from its source events; conflicts configures conflict detection (on by
// default).
func (e *backlog) carbide(b *testing.B, i, blockSize, channels int, name string, binlogRows bool, conflicts apply.Conflicts) result {
	r := e.replica(b, i)
	a, err := apply.New(apply.Config{Addr: r.Addr(), User: dbUser, Password: dbPassword, Service: applyService, BlockSize: blockSize, Channels: channels,
		BinlogRows: binlogRows, Conflicts: conflicts})
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	if err := a.Open(ctx); err != nil {
		b.Fatal(err)
	}
	rd, err := e.store.NewReader(0)
	if err != nil {
		b.Fatal(err)
	}
	defer rd.Close()
	st0, pressure := r.status(b), readStall()
	elapsed, srvCPU, goCPU := timedApply(ctx, b, a, rd.NextSized, e.lastSeqno, e.txns, r.PID(), name)
	stolen, _ := pressure.stolenSince(readStall())
	b.Logf("%d transactions in %s (%s); replica CPU %s, this process's CPU %s; per transaction: %s", e.txns, elapsed.Round(time.Millisecond), pressure.since(), srvCPU, goCPU, perTx(st0, r.status(b), e.txns))
	e.verify(b, r)
	r.stop(b)
	os.RemoveAll(r.Dir())
	return result{elapsed: elapsed, metrics: map[string]float64{
		"tx/s":              float64(e.txns) / elapsed.Seconds(),
		"replica-cpu-us/tx": float64(srvCPU.Microseconds()) / float64(e.txns),
		"go-cpu-us/tx":      float64(goCPU.Microseconds()) / float64(e.txns),
		"steal-%":           stolen,
	}}
}

// BenchmarkReplicationApplyKinds applies backlogs of other kinds beside
// native replication (1 thread), each the same way as
// BenchmarkReplicationApply: 5 transactions that UPDATE 100,000 rows each;
// 20 rows of 8 MB; and sysbench oltp_write_only (applyTx/4 transactions)
// on tables whose triggers write an audit table, which the applier applies
// from the source's binlog events (BINLOG statements) instead of SQL.
func BenchmarkReplicationApplyKinds(b *testing.B) {
	requireEnabled(b)
	for _, w := range []workload{largeTxWorkload(5), bigRowWorkload(20), sysbenchWorkload(applyTx/4, true)} {
		b.Run(w.name, func(b *testing.B) {
			env := setupBacklog(b, w)
			results := map[string]result{}
			run := func(name string, f func(b *testing.B) result) {
				b.Run(name, func(b *testing.B) {
					r, ok := results[name]
					if !ok {
						r = f(b)
						if b.Failed() {
							return
						}
						results[name] = r
					}
					r.report(b)
				})
			}
			run("native-1thread-baseline", func(b *testing.B) result {
				return env.native(b, 1, "slave_parallel_threads=0")
			})
			name := fmt.Sprintf("carbide-applier-block%d", apply.DefaultConfig().BlockSize)
			run(name, func(b *testing.B) result {
				r := env.carbide(b, 2, apply.DefaultConfig().BlockSize, 1, w.name+"-"+name, false, apply.Conflicts{})
				if n, ok := results["native-1thread-baseline"]; ok {
					r.metrics["vs-native-1thread"] = r.metrics["tx/s"] / n.metrics["tx/s"]
				}
				return r
			})
		})
	}
}

// timedApply runs a, open, on next until it has applied seqno last (of
// txns transactions), and returns the time it took and the CPU it cost the
// database process pid and this one; the run is profiled as name.
func timedApply(ctx context.Context, b *testing.B, a *apply.Applier, next apply.Next, last uint64, txns, pid int, name string) (elapsed, srvCPU, goCPU time.Duration) {
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	stopProfile := startProfile(b, name)
	cpu0, goCPU0 := cpuTime(pid), selfCPU()
	b.ResetTimer()
	begin := time.Now()
	go func() { done <- a.Run(runCtx, next) }()
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
wait:
	for {
		select {
		case err := <-done:
			b.Fatalf("applier stopped before the end of the backlog: %v", err)
		case <-ctx.Done():
			b.Fatalf("applier did not finish: applied %d of %d", a.Applied(), txns)
		case <-tick.C:
			if pos, ok := a.Position(); ok && pos.Seqno >= last {
				break wait
			}
		}
	}
	elapsed = time.Since(begin)
	b.StopTimer()
	srvCPU, goCPU = cpuTime(pid)-cpu0, selfCPU()-goCPU0
	stopProfile()
	stop()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		b.Errorf("applier: %v", err)
	}
	return elapsed, srvCPU, goCPU
}
