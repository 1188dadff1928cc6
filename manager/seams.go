package manager

import (
	"context"
	"time"

	"github.com/carbidedb/carbide/manager/policy"
	"github.com/carbidedb/carbide/rpc/gen/managerpb"
	"github.com/carbidedb/carbide/rpc/gen/replicatorpb"
)

// The manager's seams. Its operations (switch, failover, recover, the
// fencing of a primary) act on the site through these interfaces, which
// the manager declares for what it uses: remotes implements databases,
// replicators and managerViews over the network, raftLedger the ledger. Unit tests give fakes
// (ops_test.go).

// databases are the site's database servers. It is the only way the
// manager writes read_only, on any host.
type databases interface {
	// readOnly reports host's read_only, or an error when the database
	// does not answer within timeout.
	readOnly(ctx context.Context, host string, timeout time.Duration) (bool, error)
	// setReadOnly sets host's read_only and checks it took.
	setReadOnly(ctx context.Context, host string, on bool, timeout time.Duration) error
	// fence kills host's application sessions and sets read_only,
	// retrying for at most limit; errDatabaseDown when the database
	// refuses connections (fenced by being down).
	fence(ctx context.Context, host string, limit time.Duration) (killed int, err error)
}

// replicators are the site's cluster replicators.
type replicators interface {
	replicator(host string) (replicatorpb.ReplicatorClient, error)
	serviceStatus(ctx context.Context, host, service string, timeout time.Duration) (*replicatorpb.ServiceStatus, error)
}

// managerViews are the other managers of the site, as each sees it.
type managerViews interface {
	// view returns host's manager's status, or an error when it does not
	// answer before ctx ends.
	view(ctx context.Context, host string) (*managerpb.StatusReply, error)
}

// ledger is the site's agreed state and the way the coordinator changes
// it.
type ledger interface {
	state() policy.State
	// apply commits changes in order; it fails when this manager is not
	// (or stops being) the coordinator.
	apply(changes ...policy.Change) error
	// leading tells whether this manager is the coordinator.
	leading() bool
	// index is the version of state(): the raft index of its last change,
	// which connectors and managers confirm a command by (confirm.go).
	index() uint64
}

var (
	_ databases    = (*remotes)(nil)
	_ replicators  = (*remotes)(nil)
	_ managerViews = (*remotes)(nil)
	_ ledger       = raftLedger{}
)
