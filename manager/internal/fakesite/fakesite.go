package fakesite

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/carbidedb/carbide/manager/policy"
	"github.com/carbidedb/carbide/rpc/gen/replicatorpb"
	"github.com/carbidedb/carbide/rpc/replstate"
)

// Site is the fakes of one site.
type Site struct {
	Mu    sync.Mutex
	St    policy.State
	DBs   map[string]*DB
	Repls map[string]*Repl
	Log   []string
	// ApplyFails makes the ledger refuse changes of this op.
	ApplyFails string
	// Changes counts the changes applied: the ledger's raft index.
	Changes uint64
}

// DB is one host's database.
type DB struct {
	ReadOnly bool
	Down     bool // refuses connections
	Cut      bool // does not answer
}

// Repl is one host's replicator.
type Repl struct {
	Role, State, URI string
	Applied, Stored  int64
	Epoch            uint64
	Cut              bool  // does not answer
	Stuck            bool  // cannot apply (a lock): Wait times out
	OnlineErr        error // Online fails
	Diverges         bool  // Online as a slave ends OFFLINE:ERROR (history diverged)
	// Fails: Online as a slave ends OFFLINE:ERROR on this apply error.
	Fails        string
	PendingError string
	PendingKind  replicatorpb.PendingErrorKind
	// EventID is the last event its replicator extracted or applied.
	EventID string
	// Dropped is the tail its THL dropped going online as master.
	Dropped *replicatorpb.DroppedTail
	// Orphans is what its binlog holds that the site never got.
	Orphans    []string
	OrphansErr error
}

// New is a site of hosts whose primary is primary: every replicator
// ONLINE, applied and stored 100, epoch 1; every replica read-only.
func New(t testing.TB, primary string, hosts ...string) *Site {
	t.Helper()
	st, err := policy.State{}.Apply(policy.Change{Op: policy.OpInit, Host: primary, Hosts: hosts})
	if err != nil {
		t.Fatal(err)
	}
	f := &Site{St: st, DBs: map[string]*DB{}, Repls: map[string]*Repl{}}
	for _, h := range hosts {
		f.DBs[h] = &DB{ReadOnly: h != primary}
		r := &Repl{Role: policy.RoleSlave, State: "ONLINE", URI: "thl://" + primary + ":2112/", Applied: 100, Stored: 100, Epoch: 1}
		if h == primary {
			r.Role, r.URI = policy.RoleMaster, ""
		}
		f.Repls[h] = r
	}
	return f
}

// Record logs an action (f.Mu held).
func (f *Site) Record(format string, args ...any) {
	f.Log = append(f.Log, fmt.Sprintf(format, args...))
}

// Did reports whether an action was logged (a prefix of a log line).
func (f *Site) Did(prefix string) bool {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	return slices.ContainsFunc(f.Log, func(l string) bool { return strings.HasPrefix(l, prefix) })
}

// Order checks that the log holds the given actions in this order.
func (f *Site) Order(t testing.TB, prefixes ...string) {
	t.Helper()
	f.Mu.Lock()
	defer f.Mu.Unlock()
	i := 0
	for _, l := range f.Log {
		if i < len(prefixes) && strings.HasPrefix(l, prefixes[i]) {
			i++
		}
	}
	if i < len(prefixes) {
		t.Fatalf("want %q in this order; log:\n%s", prefixes, strings.Join(f.Log, "\n"))
	}
}

// Ledger is the site's agreed state.
func (f *Site) Ledger() Ledger { return Ledger{f} }

// Databases are the site's databases.
func (f *Site) Databases() Databases { return Databases{f} }

// Replicators are the site's replicators.
func (f *Site) Replicators() Replicators { return Replicators{f} }

type Ledger struct{ f *Site }

func (l Ledger) State() policy.State {
	l.f.Mu.Lock()
	defer l.f.Mu.Unlock()
	return l.f.St.Clone()
}

func (l Ledger) View() (policy.State, uint64) {
	l.f.Mu.Lock()
	defer l.f.Mu.Unlock()
	return l.f.St.Clone(), l.f.Changes
}

func (l Ledger) Leading() bool { return true }

func (l Ledger) Index() uint64 {
	l.f.Mu.Lock()
	defer l.f.Mu.Unlock()
	return l.f.Changes
}

func (l Ledger) Apply(changes ...policy.Change) error {
	l.f.Mu.Lock()
	defer l.f.Mu.Unlock()
	for _, c := range changes {
		if c.Op == l.f.ApplyFails {
			return fmt.Errorf("this manager stopped being the coordinator: %s refused", c.Op)
		}
		st, err := l.f.St.Apply(c)
		if err != nil {
			return err
		}
		l.f.St = st
		l.f.Changes++
		l.f.Record("apply %s %s %s", c.Op, c.Host, c.Value)
	}
	return nil
}

type Databases struct{ f *Site }

var (
	errTimeout = status.Error(codes.DeadlineExceeded, "i/o timeout")
	// errRefused is how a database that is down answers.
	errRefused = fmt.Errorf("dial tcp: %w", syscall.ECONNREFUSED)
)

func (d Databases) ReadOnly(_ context.Context, host string, _ time.Duration) (bool, error) {
	d.f.Mu.Lock()
	defer d.f.Mu.Unlock()
	db := d.f.DBs[host]
	switch {
	case db.Down:
		return false, errRefused
	case db.Cut:
		return false, errTimeout
	}
	return db.ReadOnly, nil
}

func (d Databases) SetReadOnly(_ context.Context, host string, on bool, _ time.Duration) error {
	d.f.Mu.Lock()
	defer d.f.Mu.Unlock()
	db := d.f.DBs[host]
	switch {
	case db.Down:
		return fmt.Errorf("set read_only on %s: %w", host, errRefused)
	case db.Cut:
		return fmt.Errorf("set read_only on %s: %w", host, errTimeout)
	}
	db.ReadOnly = on
	d.f.Record("read_only %s %t", host, on)
	return nil
}

func (d Databases) Fence(_ context.Context, host string, _ time.Duration) (int, error) {
	d.f.Mu.Lock()
	defer d.f.Mu.Unlock()
	db := d.f.DBs[host]
	switch {
	case db.Down:
		return 0, fmt.Errorf("fence %s: %w", host, errRefused)
	case db.Cut:
		return 0, fmt.Errorf("fence %s: %w", host, errTimeout)
	}
	db.ReadOnly = true
	d.f.Record("fence %s", host)
	return 1, nil
}

type Replicators struct{ f *Site }

func (r Replicators) Replicator(host string) (replicatorpb.ReplicatorClient, error) {
	return &ReplClient{f: r.f, host: host}, nil
}

func (r Replicators) ServiceStatus(ctx context.Context, host, service string, _ time.Duration) (*replicatorpb.ServiceStatus, error) {
	s, err := (&ReplClient{f: r.f, host: host}).Status(ctx, &replicatorpb.StatusRequest{Service: service})
	if err != nil {
		return nil, err
	}
	return s.GetStatus(), nil
}

// ReplClient is one host's replicator; the methods an operation does
// not use panic (the embedded nil interface).
type ReplClient struct {
	replicatorpb.ReplicatorClient
	f    *Site
	host string
}

func (c *ReplClient) get() (*Repl, error) {
	r := c.f.Repls[c.host]
	if r.Cut {
		return nil, status.Error(codes.Unavailable, "connection error: i/o timeout")
	}
	return r, nil
}

func (c *ReplClient) reply(r *Repl) *replicatorpb.StatusReply {
	return &replicatorpb.StatusReply{Status: &replicatorpb.ServiceStatus{Service: "east", Role: r.Role, State: r.State, StateKind: replstate.Of(r.State), MasterConnectUri: r.URI,
		AppliedLastSeqno: r.Applied, MaxStoredSeqno: r.Stored, Epoch: r.Epoch, PendingError: r.PendingError, PendingErrorKind: r.PendingKind,
		AppliedLastEventId: r.EventID, Dropped: r.Dropped}}
}

func (c *ReplClient) Status(context.Context, *replicatorpb.StatusRequest, ...grpc.CallOption) (*replicatorpb.StatusReply, error) {
	c.f.Mu.Lock()
	defer c.f.Mu.Unlock()
	r, err := c.get()
	if err != nil {
		return nil, err
	}
	return c.reply(r), nil
}

func (c *ReplClient) Offline(context.Context, *replicatorpb.OfflineRequest, ...grpc.CallOption) (*replicatorpb.StatusReply, error) {
	c.f.Mu.Lock()
	defer c.f.Mu.Unlock()
	r, err := c.get()
	if err != nil {
		return nil, err
	}
	r.State = "OFFLINE:NORMAL"
	c.f.Record("offline %s", c.host)
	return c.reply(r), nil
}

func (c *ReplClient) SetRole(_ context.Context, in *replicatorpb.SetRoleRequest, _ ...grpc.CallOption) (*replicatorpb.StatusReply, error) {
	c.f.Mu.Lock()
	defer c.f.Mu.Unlock()
	r, err := c.get()
	if err != nil {
		return nil, err
	}
	r.Role, r.URI = in.GetRole(), in.GetUri()
	c.f.Record("setrole %s %s %s", c.host, in.GetRole(), in.GetUri())
	return c.reply(r), nil
}

// Online: a master takes a new epoch; a slave fetches what its source
// stored (and applies it unless stuck).
func (c *ReplClient) Online(context.Context, *replicatorpb.OnlineRequest, ...grpc.CallOption) (*replicatorpb.StatusReply, error) {
	c.f.Mu.Lock()
	defer c.f.Mu.Unlock()
	r, err := c.get()
	if err != nil {
		return nil, err
	}
	if r.OnlineErr != nil {
		return nil, r.OnlineErr
	}
	r.State = "ONLINE"
	if r.Diverges && r.Role == policy.RoleSlave {
		r.State, r.PendingError, r.PendingKind = "OFFLINE:ERROR", "the source's history was not this replica's at seqno 101", replicatorpb.PendingErrorKind_PENDING_ERROR_KIND_DIVERGED
		return c.reply(r), nil
	}
	if r.Fails != "" && r.Role == policy.RoleSlave {
		r.State, r.PendingError, r.PendingKind = "OFFLINE:ERROR", r.Fails, replicatorpb.PendingErrorKind_PENDING_ERROR_KIND_APPLY
		return c.reply(r), nil
	}
	if r.Role == policy.RoleMaster {
		r.Epoch++
	} else if src := strings.TrimSuffix(strings.TrimPrefix(r.URI, "thl://"), ":2112/"); c.f.Repls[src] != nil && !c.f.Repls[src].Cut {
		r.Stored = max(r.Stored, c.f.Repls[src].Stored)
		if !r.Stuck {
			r.Applied = r.Stored
		}
	}
	c.f.Record("online %s %s", c.host, r.Role)
	return c.reply(r), nil
}

func (c *ReplClient) Wait(_ context.Context, in *replicatorpb.WaitRequest, _ ...grpc.CallOption) (*replicatorpb.StatusReply, error) {
	c.f.Mu.Lock()
	defer c.f.Mu.Unlock()
	r, err := c.get()
	if err != nil {
		return nil, err
	}
	if src := strings.TrimSuffix(strings.TrimPrefix(r.URI, "thl://"), ":2112/"); r.Role == policy.RoleSlave && r.State == "ONLINE" && c.f.Repls[src] != nil && !c.f.Repls[src].Cut {
		r.Stored = max(r.Stored, c.f.Repls[src].Stored) // an online slave goes on fetching
	}
	if in.GetAppliedSeqno() >= 0 {
		if !r.Stuck && r.Stored >= in.GetAppliedSeqno() {
			r.Applied = max(r.Applied, in.GetAppliedSeqno())
		}
		if r.Applied < in.GetAppliedSeqno() {
			return nil, status.Errorf(codes.DeadlineExceeded, "applied seqno %d, waited for %d", r.Applied, in.GetAppliedSeqno())
		}
	}
	if in.GetState() != "" && r.State != in.GetState() {
		return nil, status.Errorf(codes.DeadlineExceeded, "state %s, waited for %s", r.State, in.GetState())
	}
	return c.reply(r), nil
}

func (c *ReplClient) Flush(context.Context, *replicatorpb.FlushRequest, ...grpc.CallOption) (*replicatorpb.FlushReply, error) {
	c.f.Mu.Lock()
	defer c.f.Mu.Unlock()
	r, err := c.get()
	if err != nil {
		return nil, err
	}
	c.f.Record("flush %s", c.host)
	return &replicatorpb.FlushReply{Seqno: r.Stored}, nil
}

func (c *ReplClient) Heartbeat(_ context.Context, in *replicatorpb.HeartbeatRequest, _ ...grpc.CallOption) (*replicatorpb.HeartbeatReply, error) {
	c.f.Mu.Lock()
	defer c.f.Mu.Unlock()
	r, err := c.get()
	if err != nil {
		return nil, err
	}
	r.Stored++
	c.f.Record("heartbeat %s %s", c.host, in.GetName())
	return &replicatorpb.HeartbeatReply{Seqno: uint64(r.Stored)}, nil
}

// Orphans is what host's replicator says its binlog holds after eventID.
func (d Databases) Orphans(_ context.Context, host, _ string) ([]string, error) {
	d.f.Mu.Lock()
	defer d.f.Mu.Unlock()
	r := d.f.Repls[host]
	return r.Orphans, r.OrphansErr
}
