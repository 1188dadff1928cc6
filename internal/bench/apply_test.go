package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"testing"
	"time"

	"github.com/carbidedb/carbide/internal/testutil"
	"github.com/carbidedb/carbide/replicator/apply"
	"github.com/carbidedb/carbide/replicator/extract"
	"github.com/carbidedb/carbide/replicator/position"
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
	env := setupBacklog(b)
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
	type variant struct{ block, channels int }
	variants := []variant{{apply.DefaultConfig().BlockSize, 1}}
	if variants[0].block != 100 {
		variants = append(variants, variant{100, 1})
	}
	variants = append(variants, variant{apply.DefaultConfig().BlockSize, 4})
	for i, v := range variants {
		name := fmt.Sprintf("carbide-applier-block%d", v.block)
		if v.channels > 1 {
			name += fmt.Sprintf("-%dchannels", v.channels)
		}
		run(name, func(b *testing.B) result {
			r := env.carbide(b, 3+i, v.block, v.channels, name)
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
	primarySums []string // CHECKSUM TABLE of the sbtest tables after the load
	loadNotes   []string
	extractNote string
}

func (e *backlog) tableNames() []string {
	var t []string
	for i := 1; i <= applyTables; i++ {
		t = append(t, fmt.Sprintf("sbtest.sbtest%d", i))
	}
	return t
}

func setupBacklog(b *testing.B) *backlog {
	b.Helper()
	e := &backlog{dir: b.TempDir()}
	tmpl := testutil.Template(b)

	// 1. The primary, with sysbench's tables prepared.
	begin := time.Now()
	p := startServer(b, filepath.Join(e.dir, "primary"), 100, tmpl)
	p.exec(b, "CREATE DATABASE sbtest")
	sysbench(b, p, applyTables, applyTableSize, "--threads="+strconv.Itoa(min(applyTables, 4)), "prepare")
	e.note("primary %s: sysbench prepare of %d×%d rows took %s", p.Addr(), applyTables, applyTableSize, time.Since(begin).Round(time.Millisecond))

	// 2. The snapshot: a clean shutdown, a copy of the datadir, a restart.
	// The restart opens a new binlog file; nothing writes to it until the
	// load, so its end is where every replica starts.
	p.stop(b)
	e.snapshot = filepath.Join(e.dir, "snapshot")
	copyDatadir(b, p.Config().DataDir(), e.snapshot)
	p = p.restart(b)
	e.primary = p
	e.from = p.masterStatus(b)

	// 3. The backlog: sysbench with 8 threads, no replica attached.
	begin, pressure0 := time.Now(), readStall()
	out := sysbench(b, p, applyTables, applyTableSize, "--threads=8", "--events="+strconv.Itoa(applyTx), "--time=0", "run")
	loadTime := time.Since(begin)
	loadPressure := pressure0.since()
	e.to = p.masterStatus(b)
	m := sysbenchTx.FindStringSubmatch(out)
	if m == nil {
		b.Fatalf("no transaction count in sysbench's output:\n%s", out)
	}
	sbTx, _ := strconv.Atoi(m[1])
	sbRate, _ := strconv.ParseFloat(m[2], 64)
	e.load = result{elapsed: loadTime, metrics: map[string]float64{"tx/s": sbRate}}
	e.note("sysbench run, 8 threads: %d transactions at %.0f tx/s (%s); binlog %s → %s; the primary was idle again %s later",
		sbTx, sbRate, loadPressure, e.from, e.to, waitIdle(p.PID(), time.Minute).Round(time.Millisecond))
	e.primarySums = p.checksums(b, e.tableNames())

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
	cpu0, pressure := selfCPU(), readStall()
	begin = time.Now()
	err = x.Run(ctx, e.from, func(frags []*thlpb.Event) error {
		for _, f := range frags {
			f.Seqno, f.Epoch = seqno, 0
		}
		if err := store.Append(frags...); err != nil {
			return err
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

// verify fails b unless r's sbtest tables are the primary's.
func (e *backlog) verify(b *testing.B, r *server) {
	b.Helper()
	got := r.checksums(b, e.tableNames())
	if fmt.Sprint(got) != fmt.Sprint(e.primarySums) {
		b.Errorf("the replica's tables differ from the primary's: CHECKSUM TABLE %v, primary %v", got, e.primarySums)
		return
	}
	b.Logf("the replica's %d sbtest tables match the primary's (CHECKSUM TABLE)", len(got))
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
// (BlockTime and the rest at their defaults).
func (e *backlog) carbide(b *testing.B, i, blockSize, channels int, name string) result {
	r := e.replica(b, i)
	a, err := apply.New(apply.Config{Addr: r.Addr(), User: dbUser, Password: dbPassword, Service: applyService, BlockSize: blockSize, Channels: channels})
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
	if dir := os.Getenv("CARBIDE_BENCH_PROFILE_DIR"); dir != "" {
		f, err := os.Create(filepath.Join(dir, name+".pprof"))
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	st0, pressure := r.status(b), readStall()
	cpu0, goCPU0 := cpuTime(r.PID()), selfCPU()
	b.ResetTimer()
	begin := time.Now()
	go func() { done <- a.Run(runCtx, rd.Next) }()
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
wait:
	for {
		select {
		case err := <-done:
			b.Fatalf("applier stopped before the end of the backlog: %v", err)
		case <-ctx.Done():
			b.Fatalf("applier did not finish: applied %d of %d", a.Applied(), e.txns)
		case <-tick.C:
			if pos, ok := a.Position(); ok && pos.Seqno >= e.lastSeqno {
				break wait
			}
		}
	}
	elapsed := time.Since(begin)
	b.StopTimer()
	srvCPU, goCPU := cpuTime(r.PID())-cpu0, selfCPU()-goCPU0
	b.Logf("%d transactions in %s (%s); replica CPU %s, this process's CPU %s; per transaction: %s", e.txns, elapsed.Round(time.Millisecond), pressure.since(), srvCPU, goCPU, perTx(st0, r.status(b), e.txns))
	stop()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		b.Errorf("applier: %v", err)
	}
	e.verify(b, r)
	r.stop(b)
	os.RemoveAll(r.Dir())
	return result{elapsed: elapsed, metrics: map[string]float64{
		"tx/s":              float64(e.txns) / elapsed.Seconds(),
		"replica-cpu-us/tx": float64(srvCPU.Microseconds()) / float64(e.txns),
		"go-cpu-us/tx":      float64(goCPU.Microseconds()) / float64(e.txns),
	}}
}
