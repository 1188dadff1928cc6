package manager

import (
	"context"
	"time"

	"github.com/carbidedb/carbide/manager/actions"
	"github.com/carbidedb/carbide/manager/consensus"
	"github.com/carbidedb/carbide/manager/fencing"
	"github.com/carbidedb/carbide/manager/policy"
	"github.com/carbidedb/carbide/rpc/gen/managerpb"
)

// The manager's seams. Its actions (manager/actions: switch, failover,
// recover) and its own loops (the enforcement of read_only, the lease,
// the probes) act on the site through these interfaces: fencing's
// Databases is the databases, remotes the replicators and the other
// managers' views over the network, consensus's Node the ledger. Unit tests
// give fakes (fakes_test.go).

// managerViews are the other managers of the site, as each sees it.
type managerViews interface {
	// view returns host's manager's status, or an error when it does not
	// answer before ctx ends.
	view(ctx context.Context, host string) (*managerpb.StatusReply, error)
}

// ledger is the site's agreed state and the way the coordinator changes
// it.
type ledger interface {
	actions.Ledger
	// View is State with Index, read together.
	View() (policy.State, uint64)
	// Leading tells whether this manager is the coordinator.
	Leading() bool
	// Index is the version of State(): the raft index of its last change,
	// which connectors and managers confirm a command by (confirm.go).
	Index() uint64
}

var (
	_ actions.Databases   = (*fencing.Databases)(nil)
	_ actions.Replicators = (*remotes)(nil)
	_ managerViews        = (*remotes)(nil)
	_ ledger              = (*consensus.Node)(nil)
)

// agentSeams are the parts of the agent its actions use: its connectors'
// reports, the leases it grants, its alerts.
type agentSeams struct{ a *Agent }

func (s agentSeams) AwaitDrained(ctx context.Context, from, transition string, limit time.Duration) {
	s.a.waitConnectorsDrained(ctx, from, transition, limit)
}
func (s agentSeams) Granted(host string)       { s.a.granted(host) }
func (s agentSeams) End(host string) time.Time { return s.a.leaseEnd(host) }
func (s agentSeams) AwaitEnd(ctx context.Context, host string) error {
	return s.a.awaitLeaseEnd(ctx, host)
}
func (s agentSeams) Add(text string)        { s.a.addAlert(text) }
func (s agentSeams) Raise(key, text string) { s.a.raise(key, text) }
func (s agentSeams) Clear(key string)       { s.a.clearAlert(key) }
