package multitrepctl

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/carbidedb/carbide/rpc/gen/replicatorpb"
)

// fakeReplicator serves a fixed list of services and records heartbeats.
type fakeReplicator struct {
	replicatorpb.UnimplementedReplicatorServer
	mu         sync.Mutex
	services   []*replicatorpb.ServiceStatus
	heartbeats []string // service/name
	block      chan struct{}
}

var _ replicatorpb.ReplicatorServer = (*fakeReplicator)(nil)

func (f *fakeReplicator) Services(ctx context.Context, _ *replicatorpb.ServicesRequest) (*replicatorpb.ServicesReply, error) {
	if f.block != nil {
		select {
		case <-f.block:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return &replicatorpb.ServicesReply{Services: f.services}, nil
}

func (f *fakeReplicator) service(name string) (*replicatorpb.ServiceStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range f.services {
		if s.GetService() == name {
			return s, nil
		}
	}
	return nil, status.Errorf(codes.InvalidArgument, "this replicator has no service %s", name)
}

func (f *fakeReplicator) Status(ctx context.Context, req *replicatorpb.StatusRequest) (*replicatorpb.StatusReply, error) {
	s, err := f.service(req.GetService())
	if err != nil {
		return nil, err
	}
	return &replicatorpb.StatusReply{Status: s}, nil
}

func (f *fakeReplicator) Heartbeat(ctx context.Context, req *replicatorpb.HeartbeatRequest) (*replicatorpb.HeartbeatReply, error) {
	s, err := f.service(req.GetService())
	if err != nil {
		return nil, err
	}
	if s.GetRole() != "master" {
		return nil, status.Error(codes.FailedPrecondition, "heartbeat runs on the master")
	}
	f.mu.Lock()
	f.heartbeats = append(f.heartbeats, req.GetService()+"/"+req.GetName())
	f.mu.Unlock()
	return &replicatorpb.HeartbeatReply{}, nil
}

// fakeNet is a set of fake replicators by control address, each served by
// a real gRPC server over an in-memory listener. An address with no
// replicator refuses connections.
type fakeNet struct {
	t    *testing.T
	mu   sync.Mutex
	lis  map[string]*bufconn.Listener
	reps map[string]*fakeReplicator
	// dialled counts the dials, so that a refused command can show it
	// asked nobody.
	dialled int
}

// dials returns how many times multi_trepctl dialled a replicator.
func (n *fakeNet) dials() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.dialled
}

func newFakeNet(t *testing.T) *fakeNet {
	return &fakeNet{t: t, lis: map[string]*bufconn.Listener{}, reps: map[string]*fakeReplicator{}}
}

func (n *fakeNet) add(addr string, services ...*replicatorpb.ServiceStatus) *fakeReplicator {
	f := &fakeReplicator{services: services}
	lis := bufconn.Listen(1 << 16)
	srv := grpc.NewServer()
	replicatorpb.RegisterReplicatorServer(srv, f)
	go srv.Serve(lis)
	n.t.Cleanup(srv.Stop)
	n.mu.Lock()
	n.lis[addr], n.reps[addr] = lis, f
	n.mu.Unlock()
	return f
}

// remove makes addr refuse connections: a replicator that is not running.
func (n *fakeNet) remove(addr string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.lis, addr)
}

func (n *fakeNet) dial(ctx context.Context, addr string) (replicatorpb.ReplicatorClient, func(), error) {
	n.mu.Lock()
	n.dialled++
	n.mu.Unlock()
	conn, err := grpc.NewClient("passthrough:///"+addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
			n.mu.Lock()
			lis := n.lis[addr]
			n.mu.Unlock()
			if lis == nil {
				return nil, fmt.Errorf("dial tcp %s: connect: connection refused", addr)
			}
			return lis.DialContext(ctx)
		}))
	if err != nil {
		return nil, nil, err
	}
	return replicatorpb.NewReplicatorClient(conn), func() { conn.Close() }, nil
}

// guide is the operator guide's example: seqno and latency per host and
// service (multi_trepctl --by-service).
var guide = []struct {
	host, service, role string
	seqno               int64
	latency             float64
}{
	{"east1", "east", "master", 5, 0.322},
	{"east2", "east", "slave", 5, 0.415},
	{"east3", "east", "slave", 5, 0.421},
	{"west1", "east", "slave", 5, 0.422},
	{"west2", "east", "slave", 5, 0.435},
	{"west3", "east", "slave", 5, 0.460},
	{"west1", "west", "master", 213, 0.035},
	{"east1", "west", "slave", 213, 0.104},
	{"east2", "west", "slave", 213, 0.097},
	{"east3", "west", "slave", 213, 0.132},
	{"west2", "west", "slave", 213, 0.096},
	{"west3", "west", "slave", 213, 0.116},
}

// hostAddr is each guide host's address in the test ini's [hosts].
func hostAddr(host string) string {
	site := 1
	if strings.HasPrefix(host, "west") {
		site = 2
	}
	return fmt.Sprintf("10.9.%d.%s", site, host[len(host)-1:])
}

// rmiAddr is where a host's replicator for service answers: its own
// site's service on the cluster install (rmi-port 10000), the other site's
// on the cross-site install (10002, as examples/msaa.ini sets it).
func rmiAddr(host, service string) string {
	port := "10002"
	if strings.HasPrefix(host, service) {
		port = "10000"
	}
	return net.JoinHostPort(hostAddr(host), port)
}

// guideNet serves the guide's twelve services.
func guideNet(t *testing.T) *fakeNet {
	n := newFakeNet(t)
	for _, g := range guide {
		st := &replicatorpb.ServiceStatus{
			Service: g.service, Role: g.role, State: "ONLINE", AppliedLastSeqno: g.seqno, AppliedLatency: g.latency,
			AppliedLastEventId: fmt.Sprintf("mysql-bin.000002:%016d;-1", 1000+g.seqno),
			Fields:             []*replicatorpb.Field{{Name: "serviceName", Value: g.service}, {Name: "timeInStateSeconds", Value: "12.5"}},
		}
		n.add(rmiAddr(g.host, g.service), st)
	}
	return n
}

// testINI writes examples/msaa.ini with a [hosts] map, plus extra.
func testINI(t *testing.T, extra string) string {
	t.Helper()
	base, err := os.ReadFile("../../examples/msaa.ini")
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.Write(base)
	b.WriteString("\n[hosts]\n")
	for _, h := range []string{"east1", "east2", "east3", "west1", "west2", "west3"} {
		fmt.Fprintf(&b, "%s=%s\n", h, hostAddr(h))
	}
	b.WriteString(extra)
	path := filepath.Join(t.TempDir(), "tungsten.ini")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
