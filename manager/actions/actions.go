package actions

import (
	"context"
	"log/slog"
	"strconv"
	"time"

	"github.com/carbidedb/carbide/manager/policy"
	"github.com/carbidedb/carbide/rpc/gen/replicatorpb"
)

// FailoverBlocked is the key of the alert of a failover that waits for
// its candidate (cleared by the next promotion).
const FailoverBlocked = "failover-blocked"

// Timeouts of the steps of a switch or failover.
const (
	// StepTimeout bounds one step on one host.
	StepTimeout  = 5 * time.Second
	catchUpLimit = 30 * time.Second // a switch's candidate
)

// Ledger is the site's agreed state and the way the coordinator changes
// it.
type Ledger interface {
	State() policy.State
	// Apply commits changes in order; it fails when this manager is not
	// (or stops being) the coordinator.
	Apply(changes ...policy.Change) error
}

// Databases are the site's database servers (manager/fencing).
type Databases interface {
	// ReadOnly reports host's read_only, or an error when the database
	// does not answer within timeout.
	ReadOnly(ctx context.Context, host string, timeout time.Duration) (bool, error)
	// SetReadOnly sets host's read_only.
	SetReadOnly(ctx context.Context, host string, on bool, timeout time.Duration) error
	// Fence kills host's application sessions and sets read_only,
	// retrying for at most limit; an error wrapping
	// syscall.ECONNREFUSED when the database refuses connections (it is
	// fenced by being down).
	Fence(ctx context.Context, host string, limit time.Duration) (killed int, err error)
	// Orphans lists the transactions host's binlog holds after eventID.
	Orphans(ctx context.Context, host, eventID string) ([]string, error)
}

// Replicators are the site's cluster replicators.
type Replicators interface {
	Replicator(host string) (replicatorpb.ReplicatorClient, error)
	ServiceStatus(ctx context.Context, host, service string, timeout time.Duration) (*replicatorpb.ServiceStatus, error)
}

// Connectors are the site's connectors, as their reports say.
type Connectors interface {
	// AwaitDrained waits (at most limit) until every running connector
	// holds new connections for transition and has no read-write
	// connection to from left.
	AwaitDrained(ctx context.Context, from, transition string, limit time.Duration)
}

// Leases are the primaries' leases, as the coordinator grants them.
type Leases interface {
	// Granted records a lease given to host now (a promotion gives one).
	Granted(host string)
	// End is when any lease host may hold has run out.
	End(host string) time.Time
	// AwaitEnd waits until End(host).
	AwaitEnd(ctx context.Context, host string) error
}

// Alerts are the site's alerts.
type Alerts interface {
	// Add records an event in the alert history.
	Add(text string)
	// Raise makes key's alert active with text.
	Raise(key, text string)
	// Clear ends key's alert.
	Clear(key string)
}

// Config is the site the actions act on.
type Config struct {
	Site    string   // the service name
	Hosts   []string // its datasources, in precedence order
	THLPort int
	// CatchUp is manager-failover-catchup-timeout: how long a failover's
	// candidate may take to apply what others stored (0: 60 s).
	CatchUp time.Duration
	// DisconnectTimeout is how long a switch lets the connectors drain.
	DisconnectTimeout time.Duration
	// SwitchCatchUp is how long a switch waits, writes still flowing,
	// for its candidate to come within a second of the primary before it
	// blocks them (0: 30 s).
	SwitchCatchUp time.Duration
}

// Seams are what the actions act through.
type Seams struct {
	Ledger      Ledger
	Databases   Databases
	Replicators Replicators
	Connectors  Connectors
	Leases      Leases
	Alerts      Alerts
	// Facts returns every host's facts as the manager knows them now.
	Facts func() map[string]policy.Facts
	Log   *slog.Logger
}

// Actions carries out switch, failover and recover on one site.
type Actions struct {
	cfg    Config
	ledger Ledger
	dbs    Databases
	repls  Replicators
	conns  Connectors
	leases Leases
	alerts Alerts
	facts  func() map[string]policy.Facts
	log    *slog.Logger
}

// New returns the actions of cfg's site through s.
func New(cfg Config, s Seams) *Actions {
	log := s.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Actions{cfg: cfg, ledger: s.Ledger, dbs: s.Databases, repls: s.Replicators, conns: s.Connectors,
		leases: s.Leases, alerts: s.Alerts, facts: s.Facts, log: log}
}

// THLURI is host's THL server.
func (x *Actions) THLURI(host string) string {
	return "thl://" + host + ":" + strconv.Itoa(x.cfg.THLPort) + "/"
}

// Others lists the datasources other than the excluded hosts.
func (x *Actions) Others(exclude ...string) []string {
	var out []string
	for _, h := range x.cfg.Hosts {
		skip := false
		for _, e := range exclude {
			if h == e {
				skip = true
			}
		}
		if !skip {
			out = append(out, h)
		}
	}
	return out
}
