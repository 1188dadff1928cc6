package policy

import (
	"time"

	"github.com/carbidedb/carbide/rpc/gen/replicatorpb"
)

// Dataserver states as a manager sees its own database.
const (
	DBUp      = "ONLINE"
	DBDown    = "STOPPED"
	DBUnknown = "UNKNOWN"
)

// Replicator states the monitor cares about.
const (
	ReplOnline = "ONLINE"
)

// Facts are what a host's manager reports about its host (through gossip).
type Facts struct {
	Host string `json:"h"`
	// Alive: the host's manager is a live gossip member and its last
	// report is recent. When false, the other fields are the last known.
	Alive    bool   `json:"-"`
	DB       string `json:"db"`
	ReadOnly bool   `json:"ro,omitempty"`
	// Repl* describe the host's cluster replicator ("" state: unreachable).
	ReplRole  string `json:"rr,omitempty"`
	ReplState string `json:"rs,omitempty"` // the guide's text, for people
	// ReplKind is ReplState typed (unspecified: unreachable): the
	// monitor decides on it.
	ReplKind  replicatorpb.ReplicatorState `json:"rk,omitempty"`
	Applied   int64                        `json:"ap"`
	MaxStored int64                        `json:"ms"`
	Latency   float64                      `json:"lat,omitempty"`
	MasterURI string                       `json:"mu,omitempty"`
	Fenced    bool                         `json:"f,omitempty"`
	Created   int64                        `json:"cc,omitempty"` // connector counters
	Active    int64                        `json:"ca,omitempty"`
	ConnPID   int64                        `json:"cp,omitempty"`
	ConnState string                       `json:"cs,omitempty"`
	// ConnPerHost are this host's connector's connections per datasource
	// (created, active).
	ConnPerHost map[string][2]int64 `json:"ph,omitempty"`
	Witness     bool                `json:"w,omitempty"`
	Seq         uint64              `json:"n"` // report counter
	DBError     string              `json:"de,omitempty"`
	// DBRefused: the database refused the manager's connection (nothing
	// listens on its port: the server process is gone).
	DBRefused bool `json:"dr,omitempty"`
	// Incomplete: a tprovision copy into this host's database began and
	// did not finish (what its marker file says).
	Incomplete string `json:"inc,omitempty"`
	// Cross is the state of each cross-site service of this host's
	// cross-site replicator (the remote site it reads), with the pending
	// error after ": " when there is one; "" state: unreachable.
	Cross map[string]string `json:"x,omitempty"`
	// Holds are the services (the cluster service and cross-site ones)
	// whose applier holds a transaction until another stream has been
	// applied as much here (causal order), with how long it has, in
	// seconds.
	Holds map[string]float64 `json:"hd,omitempty"`
	// Conflicts are the conflicts each replicator service of this host
	// (the cluster service, named after the site, and the cross-site
	// ones) has recorded, the services with none left out.
	Conflicts map[string]uint64 `json:"cf,omitempty"`
}

// Input is one step of the monitor: the agreed state, every host's
// facts, and what the coordinator's own probe of the primary's database
// saw on this step.
type Input struct {
	Now   time.Time
	State State
	Facts map[string]Facts
	// PrimaryProbe is the coordinator's own probe of the primary's
	// database on this step: true reachable, false not, nil no probe.
	PrimaryProbe *bool
	// PrimaryRefused: that probe's connection was refused.
	PrimaryRefused bool
	// Unreachable is how long each host's manager has been out of
	// contact (absent: in contact).
	Unreachable map[string]time.Duration
}
