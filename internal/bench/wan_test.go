package bench

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/carbidedb/carbide/internal/config"
	"github.com/carbidedb/carbide/internal/install"
	"github.com/carbidedb/carbide/internal/netns"
	"github.com/carbidedb/carbide/internal/security"
	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

// The WAN benchmarks run on the WAN bed (sandbox up --netns): each host in
// a network namespace of its own, the sites wanDelay apart (one way).
var (
	wanDelay     = envString("CARBIDE_BENCH_WAN_DELAY", "40ms")
	wanReps      = envInt("CARBIDE_BENCH_WAN_REPS", 3)           // alternations of each stream pair
	wanFailovers = envInt("CARBIDE_BENCH_WAN_FAILOVER_REPS", 10) // kills of BenchmarkWANFailover
)

func envString(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// requireWAN skips a WAN benchmark where the bed cannot be made.
func requireWAN(b *testing.B) *config.WAN {
	b.Helper()
	requireEnabled(b)
	if os.Geteuid() != 0 {
		b.Skip("the WAN benchmarks need root: the bed is made of network namespaces")
	}
	return &config.WAN{Delay: wanDelay}
}

// wanNet is a net of the WAN bed (0 to 15) no other bed uses.
func wanNet(b *testing.B) int {
	b.Helper()
	for n := 15; n >= 0; n-- {
		_, err := os.Stat(fmt.Sprintf("/sys/class/net/cb%ds1", n))
		used, _ := filepath.Glob(fmt.Sprintf("/run/netns/carbide%d-*", n))
		if err != nil && len(used) == 0 {
			return n
		}
	}
	b.Fatal("every net of the WAN bed (0 to 15) is in use; sandbox down the others")
	return 0
}

// nsOf is host's namespace on the bed.
func (x *crossSite) nsOf(host string) string { return fmt.Sprintf("carbide%d-%s", x.cfg.Net, host) }

// dialFrom dials addr from inside host's namespace.
func (x *crossSite) dialFrom(ctx context.Context, host, addr string) (net.Conn, error) {
	var c net.Conn
	err := netns.Do(x.nsOf(host), func() error {
		var err error
		c, err = (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, "tcp", addr)
		return err
	})
	return c, err
}

// BenchmarkWANCrossSite is BenchmarkReplicationCrossSite on the WAN bed
// (the sites wanDelay apart): the latency of 500 tx/s per site from
// COMMIT to the other site, the backlog's catch-up; then east's THL
// streamed whole from east1 into west1's namespace beside a raw TCP
// transfer of as many bytes over the same link (the link's limit),
// alternated wanReps times.
func BenchmarkWANCrossSite(b *testing.B) {
	wan := requireWAN(b)
	crossSiteBench(b, wan, func(b *testing.B, x *crossSite) {
		var stream, raw []float64
		var bytes int64
		for range wanReps {
			n, took := x.streamTHL(b, "east1", "west1")
			bytes = n
			stream = append(stream, float64(n)/took.Seconds()/1e6)
			took = x.rawTCP(b, "east1", "west1", n)
			raw = append(raw, float64(n)/took.Seconds()/1e6)
		}
		report := func(name string, v []float64) {
			b.Run(name, func(b *testing.B) {
				s := sortedCopy(v)
				b.ReportMetric(0, "ns/op")
				b.ReportMetric(percentile(s, 50), "MB/s")
				b.ReportMetric(s[0], "min-MB/s")
				b.ReportMetric(s[len(s)-1], "max-MB/s")
				b.ReportMetric(float64(bytes)/1e6, "MB")
				b.ReportMetric(float64(len(s)), "ops")
			})
		}
		report("thl-stream", stream)
		report("raw-tcp-baseline", raw)
	})
}

// BenchmarkWANFailover is BenchmarkManagerFailover on the sample topology
// on the WAN bed: east's primary killed wanFailovers times while west,
// wanDelay away, replicates from east.
func BenchmarkWANFailover(b *testing.B) {
	wan := requireWAN(b)
	ini, err := os.ReadFile("../../examples/msaa.ini")
	if err != nil {
		b.Fatal(err)
	}
	runFailovers(b, startManagerSiteOn(b, "examples/msaa.ini on the WAN bed", ini, wan), wanFailovers)
}

// streamTHL streams from's cluster THL whole (seqno 0 to its last) into
// host to's namespace, as a cross-site replicator there would, counting
// the events' bytes; nothing is stored.
func (x *crossSite) streamTHL(b *testing.B, from, to string) (int64, time.Duration) {
	b.Helper()
	bound, err := install.Open(filepath.Join(x.cfg.Dir, from, "continuent"))
	if err != nil {
		b.Fatal(err)
	}
	sec, err := security.ForInstall(bound)
	if err != nil {
		b.Fatal(err)
	}
	last := x.seqno(from, "continuent", "trepctl", "maximumStoredSeqNo")
	addr := net.JoinHostPort(x.hosts[from], fmt.Sprint(bound.Install.Settings.THLPort))
	dial := func(ctx context.Context, addr string) (net.Conn, error) { return x.dialFrom(ctx, to, addr) }
	conn, err := grpc.NewClient(addr, append(sec.THLDialOptions(dial), grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)))...)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	begin := time.Now()
	st, err := thlpb.NewTHLClient(conn).Stream(ctx, &thlpb.StreamRequest{Service: bound.Install.Services[0].Name, ClientHost: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	var n int64
	for {
		m, err := st.Recv()
		if err != nil {
			b.Fatalf("THL stream from %s: %v", from, err)
		}
		if ev := m.GetEvent(); ev != nil {
			n += int64(proto.Size(ev))
			if ev.GetSeqno() >= uint64(last) && ev.GetLastFrag() {
				return n, time.Since(begin)
			}
		}
	}
}

// rawTCP sends n bytes over one TCP connection from host from's namespace
// to host to's, timed from the dial to the last byte read.
func (x *crossSite) rawTCP(b *testing.B, from, to string, n int64) time.Duration {
	b.Helper()
	var l net.Listener
	if err := netns.Do(x.nsOf(to), func() error {
		var err error
		l, err = net.Listen("tcp", net.JoinHostPort(x.hosts[to], "0"))
		return err
	}); err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	got := make(chan error, 1)
	var end time.Time
	go func() {
		c, err := l.Accept()
		if err == nil {
			_, err = io.Copy(io.Discard, c)
			end = time.Now()
			c.Close()
		}
		got <- err
	}()
	begin := time.Now()
	c, err := x.dialFrom(context.Background(), from, l.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 256<<10)
	for left := n; left > 0; left -= int64(len(buf)) {
		if _, err := c.Write(buf[:min(int64(len(buf)), left)]); err != nil {
			b.Fatal(err)
		}
	}
	c.Close()
	if err := <-got; err != nil {
		b.Fatal(err)
	}
	return end.Sub(begin)
}
