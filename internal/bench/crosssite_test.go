package bench

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/carbidedb/carbide/internal/config"
)

// Load of BenchmarkReplicationCrossSite; the environment may change it
// while working on the benchmark itself.
var (
	crossRate    = envInt("CARBIDE_BENCH_CROSS_RATE", 500)      // transactions per second per site
	crossSeconds = envInt("CARBIDE_BENCH_CROSS_SECONDS", 20)    // of the latency run
	crossBacklog = envInt("CARBIDE_BENCH_CROSS_BACKLOG", 20000) // transactions of the backlog
	crossConns   = envInt("CARBIDE_BENCH_CROSS_CONNS", 4)       // connections of each site's writer
	// crossPollGap is the pause between two polls of an observer. The
	// target is 100 ms, so a millisecond resolves it to 1%; the 200 µs of
	// the single-replica latency rows would be 5,000 queries a second per
	// observer, a load of its own on the six databases' two cores.
	crossPollGap = time.Duration(envInt("CARBIDE_BENCH_CROSS_POLL_US", 1000)) * time.Microsecond
	// crossLowRate is the second latency run's rate: one the machine
	// sustains even when 500 tx/s per site saturates it, so that the
	// pipeline's own latency (and on the WAN bed, the delay's share) shows
	// rather than a queue.
	crossLowRate = envInt("CARBIDE_BENCH_CROSS_LOW_RATE", 100)
)

// crossNet is the sandbox's address block (127.240.S.H), away from the
// e2e tests' 150-189 and bench.sh's 251.
const crossNet = 240

// Disjoint id ranges of app.t: each site's latency writer and the backlog.
const (
	eastBase    = 1_000_000
	westBase    = 2_000_000
	backlogBase = 3_000_000
	rangeSize   = 1_000_000
)

var crossHosts = []string{"east1", "east2", "east3", "west1", "west2", "west3"}

// BenchmarkReplicationCrossSite runs the operator guide's Multi-Site
// Active/Active topology (examples/msaa.ini: sites east and west of three
// hosts, a cluster replicator per host and a cross-site replicator on every
// host) in a sandbox of real processes: six mariadbd, twelve replicators.
//
//   - latency-500tps-per-site: a writer on east1 and one on west1 each
//     commit 500 single-row INSERT transactions per second for 20 s
//     (ticker-paced; each INSERT on one of 4 connections, as one commit
//     takes longer than 2 ms here); each transaction is timed from its
//     COMMIT returning on its site's primary to the row being visible on a
//     host of the other site (east's on west3, west's on east3), seen by a
//     poller per observer;
//   - backlog-apply: west's cross-site replicators are stopped, east1 takes
//     a backlog of 20,000 single-row transactions (4 clients), the
//     replicators are started again and timed until every west host's
//     cross-site service east has applied east's last seqno.
//   - backlog-apply-updates-of-the-losing-site: the same the other way:
//     east's cross-site replicators stopped, west1 UPDATEs the 20,000
//     backlog rows (one a transaction), east's hosts timed as they apply
//     west's changes. West loses to east (converge, east first), so each
//     block of them is asked about east's concurrent changes where east
//     changed app.t after what west1 had applied (docs/replicator.md,
//     "Conflicts"): on east1, its primary, always.
//
// At the end app.t must have the same CHECKSUM TABLE on all six hosts.
// The work runs once, whatever b.N.
func BenchmarkReplicationCrossSite(b *testing.B) {
	requireEnabled(b)
	crossSiteBench(b, nil, nil)
}

// crossSiteBench is BenchmarkReplicationCrossSite's work, on loopback or
// with wan on the WAN bed; more, when set, runs more sub-benchmarks on the
// sandbox before the final check.
func crossSiteBench(b *testing.B, wan *config.WAN, more func(b *testing.B, x *crossSite)) {
	x := startCrossSite(b, wan)
	x.exec(b, "east1", "CREATE DATABASE app",
		"CREATE TABLE app.t (id BIGINT PRIMARY KEY, site VARCHAR(8), at DATETIME(6))")
	x.waitTable(b, 60*time.Second)

	var lat, low, backlog, updates *result
	latency := func(rate int, offset int64) *result {
		before := x.causal(b)
		r := x.measureLatency(b, rate, offset)
		after := x.causal(b)
		r.metrics["causal-holds"], r.metrics["causal-held-ms"] = after.holds-before.holds, (after.held-before.held)*1000
		return &r
	}
	b.Run(fmt.Sprintf("latency-%dtps-per-site", crossRate), func(b *testing.B) {
		if lat == nil {
			lat = latency(crossRate, 0)
		}
		lat.report(b)
	})
	b.Run(fmt.Sprintf("latency-%dtps-per-site", crossLowRate), func(b *testing.B) {
		if low == nil {
			low = latency(crossLowRate, rangeSize/2)
		}
		low.report(b)
	})
	b.Run("backlog-apply", func(b *testing.B) {
		if backlog == nil {
			r := x.measureBacklog(b, insertBacklog)
			backlog = &r
		}
		backlog.report(b)
	})
	b.Run("backlog-apply-updates-of-the-losing-site", func(b *testing.B) {
		if updates == nil {
			r := x.measureBacklog(b, updateBacklog)
			updates = &r
		}
		updates.report(b)
	})
	if more != nil {
		more(b, x)
	}
	x.sameChecksum(b, 2*time.Minute)
}

// waitTable waits until app.t exists on every host.
func (x *crossSite) waitTable(b *testing.B, timeout time.Duration) {
	b.Helper()
	deadline := time.Now().Add(timeout)
	for _, h := range crossHosts {
		for {
			var n int
			x.dbs[h].QueryRow("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA='app' AND TABLE_NAME='t'").Scan(&n)
			if n == 1 {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("%s: app.t did not arrive within %s", h, timeout)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// waitRow waits until row id is on host.
func (x *crossSite) waitRow(ctx context.Context, host string, id int64, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		var n int
		if err := x.dbs[host].QueryRowContext(ctx, "SELECT COUNT(*) FROM app.t WHERE id = ?", id).Scan(&n); err != nil {
			return err
		}
		if n == 1 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: row %d did not arrive within %s", host, id, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// direction is one site's writer and the other site's observer.
type direction struct {
	name              string // east-to-west
	site              string // the writer's site, app.t.site
	writer, observer  string
	base              int64 // ids base+1 … base+n; base itself is the warm-up row
	rate              int   // transactions a second
	committed         []atomic.Int64
	arrived           []atomic.Int64
	written           atomic.Int64 // ids handed out so far (base+1 … base+written)
	maxQueued         int          // most ids due but not yet taken by a connection
	elapsed           time.Duration
	writeErr, pollErr error
}

// measureLatency runs both writers at rate transactions a second for
// crossSeconds, their ids offset into their sites' ranges.
func (x *crossSite) measureLatency(b *testing.B, rate int, offset int64) result {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	n := rate * crossSeconds
	dirs := []*direction{
		{name: "east-to-west", site: "east", writer: "east1", observer: "west3", base: eastBase + offset, rate: rate},
		{name: "west-to-east", site: "west", writer: "west1", observer: "east3", base: westBase + offset, rate: rate},
	}
	// A first row each way: every replicator connected and warm.
	for _, d := range dirs {
		if _, err := x.dbs[d.writer].Exec("INSERT INTO app.t VALUES (?, ?, NOW(6))", d.base, d.site); err != nil {
			b.Fatal(err)
		}
	}
	for _, d := range dirs {
		for _, h := range crossHosts {
			if err := x.waitRow(ctx, h, d.base, time.Minute); err != nil {
				b.Fatal(err)
			}
		}
	}

	base := time.Now()
	writing := make(chan struct{}) // closed when both writers are done
	var writers, pollers sync.WaitGroup
	for _, d := range dirs {
		d.committed = make([]atomic.Int64, n+1)
		d.arrived = make([]atomic.Int64, n+1)
		writers.Add(1)
		go func() {
			defer writers.Done()
			d.writeErr = d.write(ctx, x.dbs[d.writer], n, base)
		}()
		pollers.Add(1)
		go func() {
			defer pollers.Done()
			d.pollErr = d.poll(ctx, x.dbs[d.observer], base, writing)
		}()
	}
	pressure := readStall()
	cpu0 := selfCPU()
	writers.Wait()
	close(writing)
	pollers.Wait()
	wall := time.Since(base)
	b.Logf("both ways in %s, %s; this process (writers, pollers) used %s of CPU", wall.Round(time.Millisecond), pressure.since(), selfCPU()-cpu0)

	metrics := map[string]float64{}
	var all []float64
	var clamped int
	for _, d := range dirs {
		if d.writeErr != nil {
			b.Fatalf("%s writer: %v", d.writer, d.writeErr)
		}
		if d.pollErr != nil {
			b.Fatalf("%s poller: %v", d.observer, d.pollErr)
		}
		w := int(d.written.Load())
		var lat []float64
		neg, worst := 0, 0.0
		for i := 1; i <= w; i++ {
			v := float64(d.arrived[i].Load()-d.committed[i].Load()) / 1e6
			if v < 0 {
				worst = min(worst, v)
				v = 0
				neg++
			}
			lat = append(lat, v)
		}
		clamped += neg
		all = append(all, lat...)
		s := sortedCopy(lat)
		rate := float64(w) / d.elapsed.Seconds()
		metrics[d.site+"-tx/s"] = rate
		metrics[d.site+"-max-queued"] = float64(d.maxQueued)
		metrics[d.name+"-p50-ms"] = percentile(s, 50)
		metrics[d.name+"-p99-ms"] = percentile(s, 99)
		b.Logf("%s (%s writes %d tx in %s, %.0f tx/s; seen on %s): p50 %.2f ms, p90 %.2f, p99 %.2f, max %.2f; %d negative clamped to 0 (most negative %.2f ms); at most %d due ids waited for one of the %d connections",
			d.name, d.writer, w, d.elapsed.Round(time.Millisecond), rate, d.observer,
			percentile(s, 50), percentile(s, 90), percentile(s, 99), s[len(s)-1], neg, worst, d.maxQueued, crossConns)
	}
	s := sortedCopy(all)
	metrics["p50-ms"] = percentile(s, 50)
	metrics["p90-ms"] = percentile(s, 90)
	metrics["p99-ms"] = percentile(s, 99)
	metrics["max-ms"] = s[len(s)-1]
	metrics["clamped"] = float64(clamped)
	b.Logf("both ways: p50 %.2f ms, p90 %.2f, p99 %.2f, max %.2f (target p99 < 100 ms at %d tx/s per site)",
		percentile(s, 50), percentile(s, 90), percentile(s, 99), s[len(s)-1], rate)
	return result{elapsed: wall, metrics: metrics}
}

// write commits d.rate single-row INSERTs a second for crossSeconds,
// at most n rows. A ticker wakes the pacer every 1/d.rate s, which hands
// out every id due by then (so a late wake-up under CPU pressure does not
// lower the rate); one of crossConns connections commits it (autocommit,
// each its own transaction: one commit takes longer than a tick under
// this load). When the connections fall a second behind, the pacer waits
// for them, so the achieved rate may fall short.
func (d *direction) write(ctx context.Context, db *sql.DB, n int, base time.Time) error {
	ids := make(chan int, d.rate)
	errs := make([]error, crossConns)
	var wg sync.WaitGroup
	for c := range crossConns {
		conn, err := db.Conn(ctx)
		if err != nil {
			close(ids)
			wg.Wait()
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer conn.Close()
			for i := range ids {
				if errs[c] != nil {
					continue
				}
				if _, err := conn.ExecContext(ctx, "INSERT INTO app.t VALUES (?, ?, NOW(6))", d.base+int64(i), d.site); err != nil {
					errs[c] = err
					continue
				}
				d.committed[i].Store(int64(time.Since(base)))
			}
		}()
	}
	t := time.NewTicker(time.Second / time.Duration(d.rate))
	defer t.Stop()
	begin := time.Now()
	end := begin.Add(time.Duration(crossSeconds) * time.Second)
	next, due := 1, 0
loop:
	for next <= n {
		select {
		case <-ctx.Done():
			break loop
		case <-t.C:
			// The tick's own time may be stale (one tick is buffered).
			now := time.Now()
			if now.After(end) {
				break loop
			}
			due = min(n, int(now.Sub(begin)*time.Duration(d.rate)/time.Second))
		}
		for ; next <= due; next++ {
			select {
			case ids <- next:
				d.written.Store(int64(next))
			case <-ctx.Done():
				break loop
			}
		}
		d.maxQueued = max(d.maxQueued, len(ids))
	}
	close(ids)
	wg.Wait()
	d.elapsed = time.Since(begin)
	if err := ctx.Err(); err != nil {
		return err
	}
	return errors.Join(errs...)
}

// poll reads the new rows of d's site on the observer in a loop, stamping
// each id's first sighting (ns since base), until the writer is done and
// every row it wrote has been seen (or a minute after the writer is done).
// Several connections write, so ids commit slightly out of order: the
// query starts after the highest id below which every id has been seen.
func (d *direction) poll(ctx context.Context, db *sql.DB, base time.Time, writing <-chan struct{}) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	low := int64(0) // every id base+1 … base+low has been seen
	var giveUp <-chan time.Time
	for {
		// The upper bound keeps the range scan off the other site's rows.
		rows, err := conn.QueryContext(ctx, "SELECT id FROM app.t WHERE site = ? AND id > ? AND id < ? ORDER BY id", d.site, d.base+low, d.base+rangeSize)
		if err != nil {
			return err
		}
		now := int64(time.Since(base))
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			if i := id - d.base; i >= 1 && i < int64(len(d.arrived)) {
				d.arrived[i].CompareAndSwap(0, now)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for low+1 < int64(len(d.arrived)) && d.arrived[low+1].Load() != 0 {
			low++
		}
		select {
		case <-writing:
			if low >= d.written.Load() {
				return nil
			}
			if giveUp == nil {
				giveUp = time.After(time.Minute)
			}
		default:
		}
		select {
		case <-giveUp:
			return fmt.Errorf("saw every row up to %d of %d a minute after the writer stopped", low, d.written.Load())
		default:
		}
		time.Sleep(crossPollGap)
	}
}

// sameChecksum waits until CHECKSUM TABLE app.t is the same on all six
// hosts, failing b otherwise.
func (x *crossSite) sameChecksum(b *testing.B, timeout time.Duration) {
	b.Helper()
	deadline := time.Now().Add(timeout)
	for {
		sums := map[string]string{}
		var err error
		for _, h := range crossHosts {
			var name string
			var sum sql.NullString
			if e := x.dbs[h].QueryRow("CHECKSUM TABLE app.t").Scan(&name, &sum); e != nil {
				err = e
			}
			sums[h] = sum.String
		}
		same := err == nil
		for _, h := range crossHosts[1:] {
			same = same && sums[h] == sums[crossHosts[0]]
		}
		if same {
			b.Logf("CHECKSUM TABLE app.t is %s on all six hosts", sums[crossHosts[0]])
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("CHECKSUM TABLE app.t differs after %s: %v (error %v)", timeout, sums, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
