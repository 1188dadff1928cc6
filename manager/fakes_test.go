package manager

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/carbidedb/carbide/internal/config"
	"github.com/carbidedb/carbide/manager/policy"
	"github.com/carbidedb/carbide/rpc/gen/replicatorpb"
	"github.com/carbidedb/carbide/rpc/replstate"
)

// A site of fakes behind the manager's seams (seams.go): databases,
// replicators and the agreed state, each host's as a test sets it. Every
// action is logged in order, so a test can check what happened and
// what did not.
type fakeSite struct {
	mu    sync.Mutex
	st    policy.State
	dbs   map[string]*fakeDB
	repls map[string]*fakeRepl
	log   []string
	// applyFails makes the ledger refuse changes of this op.
	applyFails string
	// index counts the changes applied: the ledger's raft index.
	index uint64
	// mgrs are the other managers' views (confirm_test.go); a host
	// without one answers with the site's state as it is.
	mgrs map[string]*fakeView
}

type fakeDB struct {
	readOnly bool
	down     bool // refuses connections
	cut      bool // does not answer
}

type fakeRepl struct {
	role, state, uri string
	applied, stored  int64
	epoch            uint64
	cut              bool  // does not answer
	stuck            bool  // cannot apply (a lock): Wait times out
	onlineErr        error // Online fails
	diverges         bool  // Online as a slave ends OFFLINE:ERROR (history diverged)
	pendingError     string
	pendingKind      replicatorpb.PendingErrorKind
}

func newFakeSite(t *testing.T, primary string, hosts ...string) *fakeSite {
	t.Helper()
	st, err := policy.State{}.Apply(policy.Change{Op: policy.OpInit, Host: primary, Hosts: hosts})
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeSite{st: st, dbs: map[string]*fakeDB{}, repls: map[string]*fakeRepl{}}
	for _, h := range hosts {
		f.dbs[h] = &fakeDB{readOnly: h != primary}
		r := &fakeRepl{role: policy.RoleSlave, state: "ONLINE", uri: "thl://" + primary + ":2112/", applied: 100, stored: 100, epoch: 1}
		if h == primary {
			r.role, r.uri = policy.RoleMaster, ""
		}
		f.repls[h] = r
	}
	return f
}

func (f *fakeSite) record(format string, args ...any) {
	f.log = append(f.log, fmt.Sprintf(format, args...))
}

// did reports whether an action was logged (a prefix of a log line).
func (f *fakeSite) did(prefix string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.ContainsFunc(f.log, func(l string) bool { return strings.HasPrefix(l, prefix) })
}

// agent is a coordinator (east2 when it exists) over the fakes, its
// facts what each replicator and database says now.
func (f *fakeSite) agent(t *testing.T, catchUp time.Duration) *Agent {
	t.Helper()
	hosts := f.st.Hosts()
	self := hosts[0]
	if slices.Contains(hosts, "east2") {
		self = "east2"
	}
	st := config.Settings{THLPort: 2112, FailoverCatchUp: catchUp, DisconnectTimeout: time.Second}
	a := &Agent{cfg: Config{FenceAfter: 3 * time.Second, Policy: policy.DefaultConfig()}, log: slog.New(slog.DiscardHandler),
		self: self, hosts: hosts, st: st, site: &config.Service{Name: "east", Members: hosts},
		dbs: fakeDBs{f}, repls: fakeRepls{f}, views: fakeViews{f}, ledger: fakeLedger{f},
		alerted: map[string]time.Time{}, grants: map[string]time.Time{}, reports: map[string]connectorReport{},
		leaderSince: time.Now().Add(-time.Hour)}
	a.pool = &pool{cfg: gossipConfig{Name: self, Stale: time.Hour}, peers: map[string]*member{}}
	f.mu.Lock()
	for _, h := range hosts {
		r, db := f.repls[h], f.dbs[h]
		facts := policy.Facts{Host: h, DB: policy.DBUp, ReadOnly: db.readOnly, ReplRole: r.role, ReplState: r.state, ReplKind: replstate.Of(r.state),
			Applied: r.applied, MaxStored: r.stored, MasterURI: r.uri}
		if db.down {
			facts.DB = policy.DBDown
		}
		if h == self {
			a.facts = facts
			continue
		}
		a.pool.peers[h] = &member{node: h, state: memberlist.StateAlive, facts: facts, seen: time.Now()}
	}
	f.mu.Unlock()
	return a
}

type fakeLedger struct{ f *fakeSite }

func (l fakeLedger) state() policy.State {
	l.f.mu.Lock()
	defer l.f.mu.Unlock()
	return l.f.st
}

func (l fakeLedger) leading() bool { return true }

func (l fakeLedger) index() uint64 {
	l.f.mu.Lock()
	defer l.f.mu.Unlock()
	return l.f.index
}

func (l fakeLedger) apply(changes ...policy.Change) error {
	l.f.mu.Lock()
	defer l.f.mu.Unlock()
	for _, c := range changes {
		if c.Op == l.f.applyFails {
			return fmt.Errorf("this manager stopped being the coordinator: %s refused", c.Op)
		}
		st, err := l.f.st.Apply(c)
		if err != nil {
			return err
		}
		l.f.st = st
		l.f.index++
		l.f.record("apply %s %s %s", c.Op, c.Host, c.Value)
	}
	return nil
}

type fakeDBs struct{ f *fakeSite }

var errTimeout = status.Error(codes.DeadlineExceeded, "i/o timeout")

func (d fakeDBs) readOnly(_ context.Context, host string, _ time.Duration) (bool, error) {
	d.f.mu.Lock()
	defer d.f.mu.Unlock()
	db := d.f.dbs[host]
	switch {
	case db.down:
		return false, errDatabaseDown
	case db.cut:
		return false, errTimeout
	}
	return db.readOnly, nil
}

func (d fakeDBs) setReadOnly(_ context.Context, host string, on bool, _ time.Duration) error {
	d.f.mu.Lock()
	defer d.f.mu.Unlock()
	db := d.f.dbs[host]
	switch {
	case db.down:
		return fmt.Errorf("set read_only on %s: %w", host, errDatabaseDown)
	case db.cut:
		return fmt.Errorf("set read_only on %s: %w", host, errTimeout)
	}
	db.readOnly = on
	d.f.record("read_only %s %t", host, on)
	return nil
}

func (d fakeDBs) fence(_ context.Context, host string, _ time.Duration) (int, error) {
	d.f.mu.Lock()
	defer d.f.mu.Unlock()
	db := d.f.dbs[host]
	switch {
	case db.down:
		return 0, fmt.Errorf("fence %s: %w", host, errDatabaseDown)
	case db.cut:
		return 0, fmt.Errorf("fence %s: %w", host, errTimeout)
	}
	db.readOnly = true
	d.f.record("fence %s", host)
	return 1, nil
}

type fakeRepls struct{ f *fakeSite }

func (r fakeRepls) replicator(host string) (replicatorpb.ReplicatorClient, error) {
	return &fakeReplClient{f: r.f, host: host}, nil
}

func (r fakeRepls) serviceStatus(ctx context.Context, host, service string, _ time.Duration) (*replicatorpb.ServiceStatus, error) {
	s, err := (&fakeReplClient{f: r.f, host: host}).Status(ctx, &replicatorpb.StatusRequest{Service: service})
	if err != nil {
		return nil, err
	}
	return s.GetStatus(), nil
}

// fakeReplClient is one host's replicator; the methods an operation does
// not use panic (the embedded nil interface).
type fakeReplClient struct {
	replicatorpb.ReplicatorClient
	f    *fakeSite
	host string
}

func (c *fakeReplClient) get() (*fakeRepl, error) {
	r := c.f.repls[c.host]
	if r.cut {
		return nil, status.Error(codes.Unavailable, "connection error: i/o timeout")
	}
	return r, nil
}

func (c *fakeReplClient) reply(r *fakeRepl) *replicatorpb.StatusReply {
	return &replicatorpb.StatusReply{Status: &replicatorpb.ServiceStatus{Service: "east", Role: r.role, State: r.state, StateKind: replstate.Of(r.state), MasterConnectUri: r.uri,
		AppliedLastSeqno: r.applied, MaxStoredSeqno: r.stored, Epoch: r.epoch, PendingError: r.pendingError, PendingErrorKind: r.pendingKind}}
}

func (c *fakeReplClient) Status(context.Context, *replicatorpb.StatusRequest, ...grpc.CallOption) (*replicatorpb.StatusReply, error) {
	c.f.mu.Lock()
	defer c.f.mu.Unlock()
	r, err := c.get()
	if err != nil {
		return nil, err
	}
	return c.reply(r), nil
}

func (c *fakeReplClient) Offline(context.Context, *replicatorpb.OfflineRequest, ...grpc.CallOption) (*replicatorpb.StatusReply, error) {
	c.f.mu.Lock()
	defer c.f.mu.Unlock()
	r, err := c.get()
	if err != nil {
		return nil, err
	}
	r.state = "OFFLINE:NORMAL"
	c.f.record("offline %s", c.host)
	return c.reply(r), nil
}

func (c *fakeReplClient) SetRole(_ context.Context, in *replicatorpb.SetRoleRequest, _ ...grpc.CallOption) (*replicatorpb.StatusReply, error) {
	c.f.mu.Lock()
	defer c.f.mu.Unlock()
	r, err := c.get()
	if err != nil {
		return nil, err
	}
	r.role, r.uri = in.GetRole(), in.GetUri()
	c.f.record("setrole %s %s %s", c.host, in.GetRole(), in.GetUri())
	return c.reply(r), nil
}

// Online: a master takes a new epoch; a slave fetches what its source
// stored (and applies it unless stuck).
func (c *fakeReplClient) Online(context.Context, *replicatorpb.OnlineRequest, ...grpc.CallOption) (*replicatorpb.StatusReply, error) {
	c.f.mu.Lock()
	defer c.f.mu.Unlock()
	r, err := c.get()
	if err != nil {
		return nil, err
	}
	if r.onlineErr != nil {
		return nil, r.onlineErr
	}
	r.state = "ONLINE"
	if r.diverges && r.role == policy.RoleSlave {
		r.state, r.pendingError, r.pendingKind = "OFFLINE:ERROR", "the source's history was not this replica's at seqno 101", replicatorpb.PendingErrorKind_PENDING_ERROR_KIND_DIVERGED
		return c.reply(r), nil
	}
	if r.role == policy.RoleMaster {
		r.epoch++
	} else if src := strings.TrimSuffix(strings.TrimPrefix(r.uri, "thl://"), ":2112/"); c.f.repls[src] != nil && !c.f.repls[src].cut {
		r.stored = max(r.stored, c.f.repls[src].stored)
		if !r.stuck {
			r.applied = r.stored
		}
	}
	c.f.record("online %s %s", c.host, r.role)
	return c.reply(r), nil
}

func (c *fakeReplClient) Wait(_ context.Context, in *replicatorpb.WaitRequest, _ ...grpc.CallOption) (*replicatorpb.StatusReply, error) {
	c.f.mu.Lock()
	defer c.f.mu.Unlock()
	r, err := c.get()
	if err != nil {
		return nil, err
	}
	if in.GetAppliedSeqno() >= 0 {
		if !r.stuck && r.stored >= in.GetAppliedSeqno() {
			r.applied = max(r.applied, in.GetAppliedSeqno())
		}
		if r.applied < in.GetAppliedSeqno() {
			return nil, status.Errorf(codes.DeadlineExceeded, "applied seqno %d, waited for %d", r.applied, in.GetAppliedSeqno())
		}
	}
	if in.GetState() != "" && r.state != in.GetState() {
		return nil, status.Errorf(codes.DeadlineExceeded, "state %s, waited for %s", r.state, in.GetState())
	}
	return c.reply(r), nil
}

func (c *fakeReplClient) Flush(context.Context, *replicatorpb.FlushRequest, ...grpc.CallOption) (*replicatorpb.FlushReply, error) {
	c.f.mu.Lock()
	defer c.f.mu.Unlock()
	r, err := c.get()
	if err != nil {
		return nil, err
	}
	c.f.record("flush %s", c.host)
	return &replicatorpb.FlushReply{Seqno: r.stored}, nil
}

func (c *fakeReplClient) Heartbeat(_ context.Context, in *replicatorpb.HeartbeatRequest, _ ...grpc.CallOption) (*replicatorpb.HeartbeatReply, error) {
	c.f.mu.Lock()
	defer c.f.mu.Unlock()
	r, err := c.get()
	if err != nil {
		return nil, err
	}
	r.stored++
	c.f.record("heartbeat %s %s", c.host, in.GetName())
	return &replicatorpb.HeartbeatReply{Seqno: uint64(r.stored)}, nil
}
