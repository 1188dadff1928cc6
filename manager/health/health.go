package health

import (
	"context"
	"errors"
	"os"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/carbidedb/carbide/internal/textutil"
	"github.com/carbidedb/carbide/manager/policy"
	"github.com/carbidedb/carbide/rpc/gen/replicatorpb"
)

// Database is the host's database, as health reads it.
type Database interface {
	// ReadOnly reports host's read_only, or an error when the database
	// does not answer within timeout.
	ReadOnly(ctx context.Context, host string, timeout time.Duration) (bool, error)
}

// Replicator is the host's cluster replicator, as health reads it.
type Replicator interface {
	ServiceStatus(ctx context.Context, host, service string, timeout time.Duration) (*replicatorpb.ServiceStatus, error)
}

// Config is the host a Prober probes.
type Config struct {
	Host, Site string // its name, its site's service
	Witness    bool   // a witness has no database or replicator
	// Marker is the file tprovision leaves while a copy is under way
	// (its text says which).
	Marker string
}

// Sources are what a Prober reads.
type Sources struct {
	Database   Database
	Replicator Replicator
	// Connector adds the host's connector's facts (nil: none).
	Connector func(*policy.Facts)
	// Cross reports the host's cross-site replicator (nil: it runs none).
	Cross func(context.Context) Cross
}

// Prober probes one host.
type Prober struct {
	cfg Config
	src Sources
}

// New returns the prober of cfg's host.
func New(cfg Config, src Sources) *Prober { return &Prober{cfg: cfg, src: src} }

// Probe looks at the host's database, cluster replicator, cross-site
// replicator and connector, each within a bounded time (about a second).
func (p *Prober) Probe(ctx context.Context) policy.Facts {
	f := policy.Facts{Host: p.cfg.Host, Alive: true, Witness: p.cfg.Witness, Applied: -1, MaxStored: -1}
	if p.src.Connector != nil {
		p.src.Connector(&f)
	}
	if p.cfg.Witness {
		return f
	}
	if b, err := os.ReadFile(p.cfg.Marker); err == nil {
		f.Incomplete = strings.TrimSpace(string(b))
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		ro, err := p.src.Database.ReadOnly(ctx, p.cfg.Host, time.Second)
		if err != nil {
			f.DB, f.DBError, f.DBRefused = policy.DBDown, textutil.FirstLine(err.Error()), errors.Is(err, syscall.ECONNREFUSED)
			return
		}
		f.DB, f.ReadOnly = policy.DBUp, ro
	}()
	var cross Cross
	if p.src.Cross != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cross = p.src.Cross(ctx)
			f.Cross = cross.States
		}()
	}
	s, err := p.src.Replicator.ServiceStatus(ctx, p.cfg.Host, p.cfg.Site, time.Second)
	wg.Wait()
	if err == nil {
		f.ReplRole, f.ReplState, f.ReplKind = s.GetRole(), s.GetState(), s.GetStateKind()
		f.Applied, f.MaxStored, f.Latency = s.GetAppliedLastSeqno(), s.GetMaxStoredSeqno(), s.GetAppliedLatency()
		f.MasterURI = s.GetMasterConnectUri()
		if s.GetWaitingFor() != "" {
			f.Holds = map[string]float64{s.GetService(): s.GetWaitingSeconds()}
		}
		f.Conflicts = AddConflicts(f.Conflicts, p.cfg.Site, s.GetConflicts())
	}
	for svc, secs := range cross.Holds {
		if f.Holds == nil {
			f.Holds = map[string]float64{}
		}
		f.Holds[svc] = secs
	}
	for svc, n := range cross.Conflicts {
		f.Conflicts = AddConflicts(f.Conflicts, svc, n)
	}
	return f
}

// Same compares what is worth gossiping at once: states, not the
// seqnos, latency and conflict counts that move with every transaction
// (those go out with the regular report every 500 ms).
func Same(a, b policy.Facts) bool {
	a.Seq, b.Seq = 0, 0
	a.Conflicts, b.Conflicts = nil, nil
	a.Latency, b.Latency = 0, 0
	a.Applied, b.Applied = 0, 0
	a.MaxStored, b.MaxStored = 0, 0
	return reflect.DeepEqual(a, b)
}

// AddConflicts returns m with service's n recorded conflicts (m as it is
// when n is 0: the facts name only the services that recorded some).
func AddConflicts(m map[string]uint64, service string, n uint64) map[string]uint64 {
	if n == 0 {
		return m
	}
	if m == nil {
		m = map[string]uint64{}
	}
	m[service] = n
	return m
}
