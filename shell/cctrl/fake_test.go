package cctrl

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/carbidedb/carbide/internal/config"
	"github.com/carbidedb/carbide/internal/install"
	"github.com/carbidedb/carbide/rpc/command"
	"github.com/carbidedb/carbide/rpc/gen/managerpb"
	"github.com/carbidedb/carbide/rpc/gen/replicatorpb"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// golden compares got with testdata/name, or rewrites it under -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to write it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s:\n--- got\n%s--- want\n%s", path, got, want)
	}
}

// fakeManager answers Status with a fixed reply and records the commands
// it is sent; fail makes a command (by its first words) fail with a
// manager's refusal.
type fakeManager struct {
	mu       sync.Mutex
	reply    *managerpb.StatusReply
	commands []string // "args… [force]"
	fail     map[string]error
	down     bool // refuses connections
	// unconfirmed makes a command (by its first words) take, with a
	// connector that did not confirm it.
	unconfirmed map[string]string
}

var _ ManagerAPI = (*fakeManager)(nil)

func (f *fakeManager) Status(ctx context.Context, _ *managerpb.StatusRequest, _ ...grpc.CallOption) (*managerpb.StatusReply, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return nil, refused()
	}
	return proto.Clone(f.reply).(*managerpb.StatusReply), nil
}

func (f *fakeManager) Command(ctx context.Context, req *managerpb.CommandRequest, _ ...grpc.CallOption) (*managerpb.CommandReply, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return nil, refused()
	}
	text := command.Text(req)
	line := text
	if req.GetForce() {
		line += " [force]"
	}
	f.commands = append(f.commands, line)
	for prefix, err := range f.fail {
		if strings.HasPrefix(text, prefix) {
			return nil, err
		}
	}
	for prefix, who := range f.unconfirmed {
		if strings.HasPrefix(text, prefix) {
			return &managerpb.CommandReply{Lines: []string{"done: " + text, "WARNING: connector " + who + " still shows ONLINE after 2s"},
				Coordinator: f.reply.GetCoordinator(), Unconfirmed: text + " holds in the site's state, but connector " + who + " did not confirm applying it within 2s (manager-command-wait)"}, nil
		}
	}
	return &managerpb.CommandReply{Lines: []string{"done: " + text}, Coordinator: f.reply.GetCoordinator()}, nil
}

func (f *fakeManager) sent() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.commands...)
}

func refused() error {
	return status.Error(codes.Unavailable, `connection error: desc = "transport: Error while dialing: dial tcp 10.9.1.1:9997: connect: connection refused"`)
}

// fakeReplicator serves fixed services.
type fakeReplicator struct {
	mu       sync.Mutex
	services []*replicatorpb.ServiceStatus
	calls    []string
}

var _ ReplicatorAPI = (*fakeReplicator)(nil)

func (f *fakeReplicator) record(s string) {
	f.mu.Lock()
	f.calls = append(f.calls, s)
	f.mu.Unlock()
}

func (f *fakeReplicator) Services(context.Context, *replicatorpb.ServicesRequest, ...grpc.CallOption) (*replicatorpb.ServicesReply, error) {
	return &replicatorpb.ServicesReply{Services: f.services}, nil
}

func (f *fakeReplicator) Status(_ context.Context, req *replicatorpb.StatusRequest, _ ...grpc.CallOption) (*replicatorpb.StatusReply, error) {
	for _, s := range f.services {
		if s.GetService() == req.GetService() {
			return &replicatorpb.StatusReply{Status: s}, nil
		}
	}
	return nil, status.Errorf(codes.NotFound, "this replicator has no service %s", req.GetService())
}

func (f *fakeReplicator) Online(_ context.Context, req *replicatorpb.OnlineRequest, _ ...grpc.CallOption) (*replicatorpb.StatusReply, error) {
	f.record("online " + req.GetService())
	return &replicatorpb.StatusReply{}, nil
}

func (f *fakeReplicator) Offline(_ context.Context, req *replicatorpb.OfflineRequest, _ ...grpc.CallOption) (*replicatorpb.StatusReply, error) {
	f.record("offline " + req.GetService())
	return &replicatorpb.StatusReply{}, nil
}

func (f *fakeReplicator) Reset(_ context.Context, req *replicatorpb.ResetRequest, _ ...grpc.CallOption) (*replicatorpb.StatusReply, error) {
	f.record(fmt.Sprintf("reset %s thl=%t db=%t", req.GetService(), req.GetThl(), req.GetDb()))
	return &replicatorpb.StatusReply{}, nil
}

// fakeNet is the agents of the test deployment by address.
type fakeNet struct {
	managers    map[string]*fakeManager
	replicators map[string]*fakeReplicator
}

func (n *fakeNet) dialManager(_ context.Context, addr string) (ManagerAPI, func(), error) {
	if m, ok := n.managers[addr]; ok {
		return m, func() {}, nil
	}
	return &fakeManager{down: true}, func() {}, nil
}

func (n *fakeNet) dialReplicator(_ context.Context, addr string) (ReplicatorAPI, func(), error) {
	if r, ok := n.replicators[addr]; ok {
		return r, func() {}, nil
	}
	return nil, nil, fmt.Errorf("no replicator at %s", addr)
}

// hostAddr is each test host's address in the test ini's [hosts].
func hostAddr(host string) string {
	site := 1
	if strings.HasPrefix(host, "west") {
		site = 2
	}
	return fmt.Sprintf("10.9.%d.%s", site, host[len(host)-1:])
}

// testInstall installs the guide's two-site ini for host (cluster or
// cross-site install) under a temporary root and returns its directory,
// the value of CARBIDE_HOME.
func testInstall(t *testing.T, host string, kind config.InstallKind, extra string) string {
	t.Helper()
	base, err := os.ReadFile("../../examples/msaa.ini")
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	var b strings.Builder
	b.Write(base)
	b.WriteString("\n[hosts]\n")
	for _, h := range []string{"east1", "east2", "east3", "west1", "west2", "west3"} {
		fmt.Fprintf(&b, "%s=%s\n", h, hostAddr(h))
	}
	fmt.Fprintf(&b, "\n[sandbox]\nroot=%s\n%s", root, extra)
	ini := filepath.Join(root, "tungsten.ini")
	if err := os.WriteFile(ini, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(ini)
	if err != nil {
		t.Fatal(err)
	}
	staging := t.TempDir()
	os.MkdirAll(filepath.Join(staging, "bin"), 0o755)
	ins, err := install.Install(cfg, host, install.Options{Staging: staging, INI: []string{ini}})
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range ins {
		if in.Kind == kind {
			return in.Dir
		}
	}
	t.Fatalf("%s has no %s install", host, kind)
	return ""
}

// deployment is a fake of the guide's deployment: east's and west's
// managers answer with healthy statuses, every cross-site replicator with
// its service.
func deployment() *fakeNet {
	n := &fakeNet{managers: map[string]*fakeManager{}, replicators: map[string]*fakeReplicator{}}
	for _, site := range []string{"east", "west"} {
		reply := healthy()
		if site == "west" {
			reply = renamed(reply, "east", "west")
		}
		for i := 1; i <= 3; i++ {
			h := fmt.Sprintf("%s%d", site, i)
			n.managers[hostAddr(h)+":9997"] = &fakeManager{reply: reply}
			n.replicators[hostAddr(h)+":10000"] = &fakeReplicator{services: []*replicatorpb.ServiceStatus{{
				Service: site, Role: "slave", State: "ONLINE", AppliedLastSeqno: 213,
				Fields: []*replicatorpb.Field{{Name: "state", Value: "ONLINE"}, {Name: "appliedLastSeqno", Value: "213"}, {Name: "role", Value: "slave"}},
			}}}
			origin := map[string]string{"east": "west", "west": "east"}[site]
			n.replicators[hostAddr(h)+":10002"] = &fakeReplicator{services: []*replicatorpb.ServiceStatus{{
				Service: origin, Role: "slave", State: "ONLINE", AppliedLastSeqno: int64(4 + i), AppliedLatency: 0.4 + float64(i)/100,
				MasterConnectUri: fmt.Sprintf("thl://%s:2112/", hostAddr(origin+"2")),
			}}}
		}
	}
	return n
}

// renamed is r with every host and the site renamed from one site to another.
func renamed(r *managerpb.StatusReply, from, to string) *managerpb.StatusReply {
	r = proto.Clone(r).(*managerpb.StatusReply)
	rn := func(s string) string { return strings.ReplaceAll(s, from, to) }
	r.Site, r.Host, r.Coordinator, r.Primary = rn(r.Site), rn(r.Host), rn(r.Coordinator), rn(r.Primary)
	for _, d := range r.Datasources {
		d.Host, d.MasterUri = rn(d.Host), rn(d.MasterUri)
	}
	for _, rt := range r.Routers {
		rt.Host = rn(rt.Host)
	}
	for _, m := range r.Members {
		m.Host = rn(m.Host)
	}
	return r
}

// run is one run of Main.
type run struct {
	code     int
	out, err string
}

// runMain runs cctrl against n with CARBIDE_HOME=home and stdin in.
func runMain(t *testing.T, n *fakeNet, home, in string, args ...string) run {
	t.Helper()
	var out, errOut bytes.Buffer
	env := Env{In: strings.NewReader(in), Out: &out, Err: &errOut,
		Getenv:      func(k string) string { return map[string]string{install.EnvHome: home}[k] },
		DialManager: n.dialManager, DialReplicator: n.dialReplicator}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code := Main(ctx, "cctrl", args, env)
	return run{code, out.String(), errOut.String()}
}
