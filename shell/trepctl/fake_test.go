package trepctl

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc"

	"github.com/carbidedb/carbide/rpc/gen/replicatorpb"
	"github.com/carbidedb/carbide/shell/clustercheck"
)

// fakeReplicator records every request trepctl sends; the methods trepctl
// does not call panic through the nil embedded client.
type fakeReplicator struct {
	replicatorpb.ReplicatorClient
	mu       sync.Mutex
	services []string
	calls    []any // the requests, in order
	deadline bool  // the last call's context had a deadline
	dials    []string
	failDial int // the first failDial dials fail
}

func (f *fakeReplicator) record(ctx context.Context, req any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, req)
	_, f.deadline = ctx.Deadline()
}

// last returns the last request of type T, and whether there is one.
func last[T any](f *fakeReplicator) (T, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := len(f.calls) - 1; i >= 0; i-- {
		if r, ok := f.calls[i].(T); ok {
			return r, true
		}
	}
	var zero T
	return zero, false
}

func (f *fakeReplicator) status(name string) *replicatorpb.ServiceStatus {
	return &replicatorpb.ServiceStatus{Service: name, State: "ONLINE", StateKind: replicatorpb.ReplicatorState_REPLICATOR_STATE_ONLINE, Role: "master", AppliedLastSeqno: 7,
		Fields: []*replicatorpb.Field{{Name: "serviceName", Value: name}, {Name: "state", Value: "ONLINE"}}}
}

func (f *fakeReplicator) Services(ctx context.Context, in *replicatorpb.ServicesRequest, _ ...grpc.CallOption) (*replicatorpb.ServicesReply, error) {
	r := &replicatorpb.ServicesReply{}
	for _, s := range f.services {
		r.Services = append(r.Services, f.status(s))
	}
	return r, nil
}

func (f *fakeReplicator) Status(ctx context.Context, in *replicatorpb.StatusRequest, _ ...grpc.CallOption) (*replicatorpb.StatusReply, error) {
	f.record(ctx, in)
	r := &replicatorpb.StatusReply{Status: f.status(in.GetService())}
	if in.GetName() != "" {
		r.Rows = []*replicatorpb.Row{{Fields: []*replicatorpb.Field{{Name: "stage", Value: "q-to-thl"}}}}
	}
	return r, nil
}

func (f *fakeReplicator) Online(ctx context.Context, in *replicatorpb.OnlineRequest, _ ...grpc.CallOption) (*replicatorpb.StatusReply, error) {
	f.record(ctx, in)
	return &replicatorpb.StatusReply{}, nil
}

func (f *fakeReplicator) Offline(ctx context.Context, in *replicatorpb.OfflineRequest, _ ...grpc.CallOption) (*replicatorpb.StatusReply, error) {
	f.record(ctx, in)
	return &replicatorpb.StatusReply{}, nil
}

func (f *fakeReplicator) Reset(ctx context.Context, in *replicatorpb.ResetRequest, _ ...grpc.CallOption) (*replicatorpb.StatusReply, error) {
	f.record(ctx, in)
	return &replicatorpb.StatusReply{}, nil
}

func (f *fakeReplicator) SetRole(ctx context.Context, in *replicatorpb.SetRoleRequest, _ ...grpc.CallOption) (*replicatorpb.StatusReply, error) {
	f.record(ctx, in)
	return &replicatorpb.StatusReply{}, nil
}

func (f *fakeReplicator) Heartbeat(ctx context.Context, in *replicatorpb.HeartbeatRequest, _ ...grpc.CallOption) (*replicatorpb.HeartbeatReply, error) {
	f.record(ctx, in)
	return &replicatorpb.HeartbeatReply{}, nil
}

func (f *fakeReplicator) Flush(ctx context.Context, in *replicatorpb.FlushRequest, _ ...grpc.CallOption) (*replicatorpb.FlushReply, error) {
	f.record(ctx, in)
	return &replicatorpb.FlushReply{Seqno: 7}, nil
}

func (f *fakeReplicator) Wait(ctx context.Context, in *replicatorpb.WaitRequest, _ ...grpc.CallOption) (*replicatorpb.StatusReply, error) {
	f.record(ctx, in)
	return &replicatorpb.StatusReply{}, nil
}

func (f *fakeReplicator) Conflicts(ctx context.Context, in *replicatorpb.ConflictsRequest, _ ...grpc.CallOption) (*replicatorpb.ConflictsReply, error) {
	f.record(ctx, in)
	return &replicatorpb.ConflictsReply{Conflicts: []*replicatorpb.Conflict{{Id: 3, Seqno: 41, Origin: "west", Schema: "app", Table: "t", Key: "id=1",
		Action: "UPDATE", Kind: "row differs", Before: `{"id":1,"v":"a"}`, Target: `{"id":1,"v":"e"}`, After: `{"id":1,"v":"w"}`,
		Policy: "converge", Decision: "kept", DetectedAtUs: 1700000000000000}}}, nil
}

// result is what one trepctl run left behind.
type result struct {
	code     int
	out, err string
}

// runTrepctl runs trepctl with args against a fake replicator with one service,
// east, unless services are given.
func runTrepctl(t *testing.T, f *fakeReplicator, args ...string) result {
	t.Helper()
	if f.services == nil {
		f.services = []string{"east"}
	}
	var out, errOut bytes.Buffer
	env := Env{In: strings.NewReader(""), Out: &out, Err: &errOut, Getenv: func(string) string { return "" }, Name: "trepctl",
		Streams: func(Env) ([]clustercheck.Stream, error) {
			return []clustercheck.Stream{{Service: "east", Replicators: []clustercheck.Replicator{{Host: "db1", Addr: "127.0.0.1:10000"}}}}, nil
		},
		Dial: func(_ context.Context, addr string) (replicatorpb.ReplicatorClient, func(), error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.dials = append(f.dials, addr)
			if len(f.dials) <= f.failDial {
				return nil, nil, errors.New("connection refused")
			}
			return f, func() {}, nil
		}}
	code := Main(t.Context(), args, env)
	return result{code, out.String(), errOut.String()}
}

// local is the address every test run talks to.
var local = []string{"-host", "127.0.0.1", "-port", "10000"}

// cmdline is local followed by args.
func cmdline(args ...string) []string { return append(append([]string(nil), local...), args...) }

// Check answers a check with its id and no table: the report is empty.
func (f *fakeReplicator) Check(ctx context.Context, in *replicatorpb.CheckRequest, _ ...grpc.CallOption) (grpc.ServerStreamingClient[replicatorpb.CheckProgress], error) {
	f.record(ctx, in)
	return &progressStream{msgs: []*replicatorpb.CheckProgress{{CheckId: 1}}}, nil
}

func (f *fakeReplicator) CheckResults(ctx context.Context, in *replicatorpb.CheckResultsRequest, _ ...grpc.CallOption) (*replicatorpb.CheckResultsReply, error) {
	f.record(ctx, in)
	return &replicatorpb.CheckResultsReply{}, nil
}

// progressStream yields msgs, then io.EOF.
type progressStream struct {
	grpc.ClientStream
	msgs []*replicatorpb.CheckProgress
}

func (s *progressStream) Recv() (*replicatorpb.CheckProgress, error) {
	if len(s.msgs) == 0 {
		return nil, io.EOF
	}
	m := s.msgs[0]
	s.msgs = s.msgs[1:]
	return m, nil
}
