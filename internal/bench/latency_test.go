package bench

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/carbidedb/carbide/internal/testutil"
	"github.com/carbidedb/carbide/replicator/service"
	"github.com/carbidedb/carbide/replicator/stream"
	"github.com/carbidedb/carbide/replicator/thl"
	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

// Load of BenchmarkReplicationLatency.
var (
	latencyRate    = envInt("CARBIDE_BENCH_LATENCY_RATE", 200)   // transactions per second
	latencySeconds = envInt("CARBIDE_BENCH_LATENCY_SECONDS", 20) // measured
)

// pollGap is the pause between two polls of a replica: short enough to
// resolve well under a millisecond, long enough that two pollers do not
// take a core between them.
const pollGap = 200 * time.Microsecond

// BenchmarkReplicationLatency measures steady-state commit-to-replica
// latency at a fixed rate of small transactions (one single-row INSERT
// each, autocommit, on one connection to the primary): for each
// transaction, from its COMMIT returning to the client to the row being
// visible on the replica, seen by a poller reading MAX(id) there every
// ~0.2 ms (so a figure is late by at most one poll round trip).
//
// Both replicas follow the same primary during the same run, so they see
// the same transactions: native-1thread-baseline is a native replica
// (slave_parallel_threads=0, log_slave_updates=ON); carbide-services is
// Carbide's whole path, a master service (binlog extractor into its THL)
// served by the THL gRPC server to a slave service (THL client into its
// own THL, applier with default blocks) on the other replica.
func BenchmarkReplicationLatency(b *testing.B) {
	requireEnabled(b)
	results := map[string]result{}
	for _, name := range []string{"native-1thread-baseline", "carbide-services"} {
		b.Run(name, func(b *testing.B) {
			if len(results) == 0 {
				for k, v := range measureLatency(b) {
					results[k] = v
				}
			}
			if r, ok := results[name]; ok {
				r.report(b)
			}
		})
	}
}

// storeLog serves a THL store (as replicator/agent does).
type storeLog struct{ s *thl.Store }

func (l storeLog) Last() (*thlpb.Event, bool)               { return l.s.Last() }
func (l storeLog) Get(seqno uint64) ([]*thlpb.Event, error) { return l.s.Get(seqno) }
func (l storeLog) NewReader(from uint64) (stream.Reader, error) {
	r, err := l.s.NewReader(from)
	if err != nil {
		return nil, err
	}
	return r, nil
}

func measureLatency(b *testing.B) map[string]result {
	dir := b.TempDir()
	tmpl := testutil.Template(b)
	p := startServer(b, filepath.Join(dir, "primary"), 200, tmpl)
	native := startServer(b, filepath.Join(dir, "native"), 201, tmpl, "log_slave_updates=ON", "slave_parallel_threads=0")
	carb := startServer(b, filepath.Join(dir, "carbide"), 202, tmpl)
	const ddl = "CREATE TABLE bench.lat (id BIGINT NOT NULL PRIMARY KEY, note VARCHAR(64) NOT NULL)"
	for _, s := range []*server{p, native, carb} {
		s.exec(b, "CREATE DATABASE bench", ddl)
	}
	from := p.masterStatus(b)
	native.changeMaster(b, p, from)
	native.exec(b, "START SLAVE")

	// Carbide: master service on the primary, THL server, slave service.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	master, err := service.New(service.Config{Name: applyService, Host: "primary", Role: service.RoleMaster,
		THLDir: filepath.Join(dir, "thl-master"), DBAddr: p.Addr(), DBUser: dbUser, DBPassword: dbPassword})
	if err != nil {
		b.Fatal(err)
	}
	defer master.Close()
	if err := master.Online(service.OnlineOptions{}); err != nil {
		b.Fatal(err)
	}
	if err := master.Wait(ctx, -1, service.StateOnline); err != nil {
		b.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	thlSrv := stream.NewServer(time.Second, nil)
	thlSrv.Serve(applyService, storeLog{master.Store()}, master.Role)
	gs := grpc.NewServer()
	thlpb.RegisterTHLServer(gs, thlSrv)
	go gs.Serve(l)
	defer gs.Stop()
	slave, err := service.New(service.Config{Name: applyService, Host: "replica", Role: service.RoleSlave, Sources: []string{l.Addr().String()},
		THLDir: filepath.Join(dir, "thl-slave"), DBAddr: carb.Addr(), DBUser: dbUser, DBPassword: dbPassword})
	if err != nil {
		b.Fatal(err)
	}
	defer slave.Close()
	if err := slave.Online(service.OnlineOptions{}); err != nil {
		b.Fatal(err)
	}
	if err := slave.Wait(ctx, -1, service.StateOnline); err != nil {
		b.Fatal(err)
	}
	// Both stop before the servers do (cleanups run after these defers).
	defer slave.Offline(context.Background())
	defer master.Offline(context.Background())

	conn, err := p.db.Conn(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	insert := func(id int) {
		if _, err := conn.ExecContext(ctx, fmt.Sprintf("INSERT INTO bench.lat VALUES (%d, 'transaction %d')", id, id)); err != nil {
			b.Fatal(err)
		}
	}
	// A first row through both paths: everything connected and warm.
	insert(0)
	for _, s := range []*server{native, carb} {
		if err := waitRow(ctx, s, 0, time.Minute); err != nil {
			b.Fatalf("%s: %v", s.Addr(), err)
		}
	}

	n := latencyRate * latencySeconds
	base := time.Now()
	committed := make([]atomic.Int64, n+1) // ns since base
	type follower struct {
		name    string
		srv     *server
		arrived []int64
		err     error
	}
	followers := []*follower{{name: "native-1thread-baseline", srv: native}, {name: "carbide-services", srv: carb}}
	pollCtx, stopPolls := context.WithCancel(ctx)
	defer stopPolls()
	var wg sync.WaitGroup
	for _, f := range followers {
		f.arrived = make([]int64, n+1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			f.err = poll(pollCtx, f.srv, n, base, f.arrived)
		}()
	}

	pressure := readStall()
	cpu0 := map[string]time.Duration{"primary": cpuTime(p.PID()), "native": cpuTime(native.PID()), "carbide": cpuTime(carb.PID()), "go": selfCPU()}
	interval := time.Second / time.Duration(latencyRate)
	b.ResetTimer()
	for id := 1; id <= n; id++ {
		time.Sleep(time.Until(base.Add(time.Duration(id) * interval)))
		insert(id)
		committed[id].Store(int64(time.Since(base)))
	}
	writeTime := time.Since(base)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Minute):
		stopPolls()
		<-done
	}
	b.StopTimer()
	cpu := map[string]time.Duration{"primary": cpuTime(p.PID()), "native": cpuTime(native.PID()), "carbide": cpuTime(carb.PID()), "go": selfCPU()}
	for k := range cpu {
		cpu[k] -= cpu0[k]
	}
	b.Logf("%d transactions in %s (%.0f tx/s; %s); CPU over the run: primary %s, native replica %s, Carbide replica %s, this process (replicator services, writer, pollers) %s",
		n, writeTime.Round(time.Millisecond), float64(n)/writeTime.Seconds(), pressure.since(), cpu["primary"], cpu["native"], cpu["carbide"], cpu["go"])

	out := map[string]result{}
	for _, f := range followers {
		if f.err != nil {
			b.Fatalf("%s: %v", f.name, f.err)
		}
		lat := make([]float64, 0, n)
		for id := 1; id <= n; id++ {
			lat = append(lat, float64(f.arrived[id]-committed[id].Load())/1e6)
		}
		s := sortedCopy(lat)
		var sum float64
		for _, v := range s {
			sum += v
		}
		out[f.name] = result{metrics: map[string]float64{
			"p50-ms": percentile(s, 50),
			"p90-ms": percentile(s, 90),
			"p99-ms": percentile(s, 99),
		}}
		b.Logf("%s: p50 %.2f ms, p90 %.2f, p99 %.2f, max %.2f, mean %.2f (min %.2f)", f.name,
			percentile(s, 50), percentile(s, 90), percentile(s, 99), s[len(s)-1], sum/float64(len(s)), s[0])
	}
	if st, err := native.slaveStatus(ctx); err == nil && st != nil {
		native.exec(b, "STOP SLAVE")
	}
	return out
}

// waitRow waits until row id of bench.lat is on s.
func waitRow(ctx context.Context, s *server, id int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		var n int
		if err := s.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM bench.lat WHERE id = ?", id).Scan(&n); err != nil {
			return err
		}
		if n == 1 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("row %d did not arrive within %s", id, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// poll reads MAX(id) of bench.lat on s until it reaches last, recording
// for each id the time (ns since base) it was first seen.
func poll(ctx context.Context, s *server, last int, base time.Time, arrived []int64) error {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	seen := 0
	for seen < last {
		var max int
		if err := conn.QueryRowContext(ctx, "SELECT MAX(id) FROM bench.lat").Scan(&max); err != nil {
			return fmt.Errorf("poll: %w (seen up to id %d of %d)", err, seen, last)
		}
		now := int64(time.Since(base))
		for id := seen + 1; id <= max && id <= last; id++ {
			arrived[id] = now
		}
		seen = max
		time.Sleep(pollGap)
	}
	return nil
}
