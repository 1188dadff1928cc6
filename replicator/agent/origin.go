package agent

import (
	"context"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"

	"google.golang.org/grpc"

	"github.com/carbidedb/carbide/internal/config"
	"github.com/carbidedb/carbide/rpc/gen/managerpb"
	"github.com/carbidedb/carbide/rpc/gen/replicatorpb"
)

// lagLimit is how many transactions an origin replica may trail the
// origin's primary before a cross-site replicator prefers another source.
const lagLimit = 1000

// originOrder ranks a cross-site service's THL sources from what the
// origin site's managers report: ONLINE replicas that keep up first (in
// the configured order), then the primary, then the rest. It answers nil
// (configured order) when no origin manager answers, and asks them at
// most once a second.
type originOrder struct {
	cfg    *config.Config
	origin *config.Service
	port   int

	mu    sync.Mutex
	conns map[string]*grpc.ClientConn
	dial  []grpc.DialOption
	at    time.Time
	last  *managerpb.StatusReply
}

func newOriginOrder(cfg *config.Config, origin *config.Service, dial []grpc.DialOption) *originOrder {
	return &originOrder{cfg: cfg, origin: origin, port: cfg.ClusterSettings(origin.Name).ManagerRPCPort, conns: map[string]*grpc.ClientConn{}, dial: dial}
}

func (o *originOrder) status(ctx context.Context) *managerpb.StatusReply {
	o.mu.Lock()
	defer o.mu.Unlock()
	if time.Since(o.at) < time.Second {
		return o.last
	}
	o.at, o.last = time.Now(), nil
	for _, h := range append(append([]string(nil), o.origin.Members...), o.origin.Witnesses...) {
		c, ok := o.conns[h]
		if !ok {
			var err error
			c, err = grpc.NewClient(net.JoinHostPort(o.cfg.Address(h), strconv.Itoa(o.port)), o.dial...)
			if err != nil {
				continue
			}
			o.conns[h] = c
		}
		qctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		r, err := managerpb.NewManagerClient(c).Status(qctx, &managerpb.StatusRequest{})
		cancel()
		if err == nil && r.GetInitialized() && r.GetCoordinator() != "" {
			o.last = r
			break
		}
	}
	return o.last
}

// Order implements stream.ClientConfig.Order. With no origin manager
// answering, the first origin member that accepts connections comes
// first: a service that read from a member of its own site (a source of
// last resort, for a host cut off from the origin) goes back to the
// origin once it answers again — two neighbours reading each other
// would otherwise stay ONLINE with nothing moving.
func (o *originOrder) Order(ctx context.Context, sources []string) []string {
	if r := o.status(ctx); r != nil {
		return rankSources(r, sources)
	}
	d := net.Dialer{Timeout: 500 * time.Millisecond}
	for _, src := range sources {
		h, port, err := net.SplitHostPort(src)
		if err != nil || !slices.Contains(o.origin.Members, h) {
			continue
		}
		c, err := d.DialContext(ctx, "tcp", net.JoinHostPort(o.cfg.Address(h), port))
		if err != nil {
			continue
		}
		c.Close()
		return []string{src}
	}
	return nil
}

// rankSources orders sources ("host:port") by what r says of their hosts.
func rankSources(r *managerpb.StatusReply, sources []string) []string {
	host := func(src string) string {
		h, _, err := net.SplitHostPort(src)
		if err != nil {
			return src
		}
		return h
	}
	var head int64 = -1
	for _, d := range r.GetDatasources() {
		if d.GetHost() == r.GetPrimary() {
			head = d.GetMaxStoredSeqno()
		}
	}
	good := func(d *managerpb.Datasource) bool {
		return d.GetStateKind() == managerpb.DatasourceState_DATASOURCE_STATE_ONLINE && d.GetManagerAlive() && d.GetReplicatorStateKind() == replicatorpb.ReplicatorState_REPLICATOR_STATE_ONLINE
	}
	var replicas, primary, rest []string
	for _, src := range sources {
		var ds *managerpb.Datasource
		for _, d := range r.GetDatasources() {
			if d.GetHost() == host(src) {
				ds = d
			}
		}
		switch {
		case ds == nil || !good(ds):
			rest = append(rest, src)
		case ds.GetHost() == r.GetPrimary():
			primary = append(primary, src)
		case head >= 0 && head-ds.GetMaxStoredSeqno() > lagLimit:
			rest = append(rest, src)
		default:
			replicas = append(replicas, src)
		}
	}
	return slices.Concat(replicas, primary, rest)
}

func (o *originOrder) close() {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, c := range o.conns {
		c.Close()
	}
}

// preferFirst ranks sources in their configured order when the first
// (the site's primary) accepts connections, and leaves the order to the
// client (nil) when it does not. resolve turns a source ("east1:2112")
// into the address to dial, as the client does ([hosts], else DNS).
func preferFirst(resolve func(string) string) func(context.Context, []string) []string {
	return func(ctx context.Context, sources []string) []string {
		if len(sources) < 2 {
			return nil
		}
		d := net.Dialer{Timeout: 500 * time.Millisecond}
		c, err := d.DialContext(ctx, "tcp", resolve(sources[0]))
		if err != nil {
			return nil
		}
		c.Close()
		return sources
	}
}
