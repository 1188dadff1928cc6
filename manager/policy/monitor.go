package policy

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/carbidedb/carbide/rpc/gen/replicatorpb"
	"github.com/carbidedb/carbide/rpc/replstate"
)

// Decision kinds.
const (
	// DecideFail marks a datasource FAILED (Reason says why).
	DecideFail = "fail"
	// DecideFailover fences From and promotes To.
	DecideFailover = "failover"
	// DecideRecover brings a FAILED replica back as a replica.
	DecideRecover = "recover"
	// DecideAlert reports a condition the monitor will not act on.
	DecideAlert = "alert"
)

// Decision is what the monitor wants done.
type Decision struct {
	Kind   string
	Host   string // the datasource concerned (failover: the failed primary)
	To     string // failover: the candidate
	Reason string
	// Key names an alert's condition (see Monitor.Conditions).
	Key string
}

func (d Decision) String() string {
	switch d.Kind {
	case DecideFailover:
		return fmt.Sprintf("failover %s -> %s (%s)", d.Host, d.To, d.Reason)
	default:
		return fmt.Sprintf("%s %s (%s)", d.Kind, d.Host, d.Reason)
	}
}

// Config bounds how quickly the monitor decides.
type Config struct {
	// ConfirmProbes failed observations in a row, spanning at least
	// ConfirmWindow, confirm that a database is down.
	ConfirmProbes int
	ConfirmWindow time.Duration
	// FenceGrace is how long a primary's manager must have been out of
	// contact before its host is taken for down: longer than a cut-off
	// manager needs to fence its database itself (see SelfFence).
	FenceGrace time.Duration
	// RefusedWindow confirms sooner that a primary's database is down
	// when it refuses connections both to its own manager and to the
	// coordinator: nothing listens on its port (the server process is
	// gone), which a slow or cut-off server never looks like. Two
	// observations this far apart confirm it.
	RefusedWindow time.Duration
	// RecoverAfter is how long a monitor-failed replica must look healthy
	// before it is recovered.
	RecoverAfter time.Duration
	// AlertEvery repeats an alert no more often than this.
	AlertEvery time.Duration
}

// DefaultConfig is what managers run with.
func DefaultConfig() Config {
	return Config{ConfirmProbes: 3, ConfirmWindow: 800 * time.Millisecond, FenceGrace: 5 * time.Second,
		RefusedWindow: 200 * time.Millisecond, RecoverAfter: 2 * time.Second, AlertEvery: 30 * time.Second}
}

// Monitor turns inputs into decisions. It remembers failed observations
// per host between steps; it is not safe for concurrent use.
type Monitor struct {
	cfg Config
	// current are the alert conditions of the last Step; assessed says
	// it looked at every host.
	current  map[string]string
	assessed bool
	down     map[string]*streak // failed observations in a row
	healthy  map[string]time.Time
	alerted  map[string]time.Time
}

type streak struct {
	n     int
	first time.Time
}

// NewMonitor returns a monitor with no memory.
func NewMonitor(cfg Config) *Monitor {
	return &Monitor{cfg: cfg, down: map[string]*streak{}, healthy: map[string]time.Time{}, alerted: map[string]time.Time{}}
}

// Reset forgets every observation (a new coordinator starts afresh).
func (m *Monitor) Reset() {
	m.down, m.healthy, m.alerted = map[string]*streak{}, map[string]time.Time{}, map[string]time.Time{}
}

// observe records whether host's database looked down on this step and
// reports whether that is now confirmed.
func (m *Monitor) observe(now time.Time, host string, down, refused bool) bool {
	if !down {
		delete(m.down, host)
		return false
	}
	s := m.down[host]
	if s == nil {
		s = &streak{first: now}
		m.down[host] = s
	}
	s.n++
	if refused && s.n >= 2 && now.Sub(s.first) >= m.cfg.RefusedWindow {
		return true
	}
	return s.n >= m.cfg.ConfirmProbes && now.Sub(s.first) >= m.cfg.ConfirmWindow
}

// looksDown tells whether host's database looks down on this step, and
// why; refused says that the primary's database refused connections to
// both its manager and the coordinator.
func looksDown(in Input, host string) (down bool, why string, refused bool) {
	f, ok := in.Facts[host]
	if !ok || !f.Alive {
		if host == in.State.Primary && in.PrimaryProbe != nil && *in.PrimaryProbe {
			// The manager is out of reach but the database answers.
			return false, "", false
		}
		return true, "host down", false
	}
	if f.DB == DBDown {
		if host == in.State.Primary && in.PrimaryProbe != nil && *in.PrimaryProbe {
			return false, "", false // the reports disagree: not confirmed
		}
		refused := host == in.State.Primary && in.PrimaryProbe != nil && f.DBRefused && in.PrimaryRefused
		return true, "dataserver down", refused
	}
	if host == in.State.Primary && in.PrimaryProbe != nil && !*in.PrimaryProbe && f.DB != DBUp {
		return true, "dataserver unreachable", false
	}
	return false, "", false
}

// Step looks at in and returns the decisions to carry out, in order.
// Under MAINTENANCE it only alerts. Nothing is decided while a switch or
// failover is under way, and what was observed before it is forgotten:
// a failure must be confirmed, and a recovery earned, by observations
// made after it.
func (m *Monitor) Step(in Input) []Decision {
	st := in.State
	m.current, m.assessed = map[string]string{}, false
	if !st.Initialized {
		return nil
	}
	if st.Transition != nil {
		clear(m.down)
		clear(m.healthy)
		return nil
	}
	var out []Decision
	for _, h := range st.Hosts() {
		ds := st.Datasources[h]
		if f := in.Facts[h]; f.Alive && ds.State == Online && f.ReplKind == replicatorpb.ReplicatorState_REPLICATOR_STATE_OFFLINE_ERROR {
			out = append(out, m.alert(in.Now, "replicator-error/"+h, h, fmt.Sprintf("the replicator of %s is %s; see trepctl status on %s (an apply error needs an operator)", h, f.ReplState, h))...)
		} else if f.Alive && h == st.Primary && ds.State == Online && f.ReplKind != replicatorpb.ReplicatorState_REPLICATOR_STATE_UNSPECIFIED && !replstate.Healthy(f.ReplKind) {
			out = append(out, m.alert(in.Now, "primary-replicator/"+h, h, fmt.Sprintf("the primary %s takes writes but its replicator is %s: no replica gets them; replicator %s online", h, f.ReplState, h))...)
		}
		if f := in.Facts[h]; f.Alive {
			for _, svc := range sortedHolds(f.Holds) {
				if f.Holds[svc] >= HoldAlert.Seconds() {
					out = append(out, m.alert(in.Now, "hold/"+h+"/"+svc, h, fmt.Sprintf("the replicator of %s has held the next transaction of service %s for more than %s: it waits for another stream to be applied there first; see waitingFor in the status of service %s on %s", h, svc, HoldAlert, svc, h))...)
				}
			}
			for _, svc := range sortedKeys(f.Cross) {
				if state := f.Cross[svc]; replstate.Of(state) == replicatorpb.ReplicatorState_REPLICATOR_STATE_OFFLINE_ERROR {
					out = append(out, m.alert(in.Now, "cross/"+h+"/"+svc, h, fmt.Sprintf("the cross-site service %s on %s is %s; see mm_trepctl -service %s status on %s", svc, h, state, svc, h))...)
				}
			}
		}
		down, why, refused := looksDown(in, h)
		confirmed := m.observe(in.Now, h, down, refused)
		if h == st.Primary {
			if ds.State == Failed && st.Policy == Automatic {
				// A failed primary with no failover yet (no candidate then,
				// or the promotion failed): fail over as soon as a replica
				// qualifies.
				to, err := Candidate(st, in.Facts, "")
				if err != nil {
					out = append(out, m.alert(in.Now, "no-candidate/"+h, h, fmt.Sprintf("primary %s is %s; %v", h, ds, err))...)
					continue
				}
				out = append(out, Decision{Kind: DecideFailover, Host: h, To: to, Reason: ds.Reason})
				m.Reset()
				return out
			}
			if !confirmed || ds.State != Online {
				continue
			}
			if why == "host down" && in.Unreachable[h] < m.cfg.FenceGrace {
				continue // give a cut-off primary time to fence itself
			}
			if st.Policy != Automatic {
				out = append(out, m.alert(in.Now, "primary-down/"+h, h, fmt.Sprintf("primary %s: %s; policy is MAINTENANCE, no failover", h, why))...)
				continue
			}
			to, err := Candidate(st, in.Facts, "")
			if err != nil {
				out = append(out, Decision{Kind: DecideFail, Host: h, Reason: why})
				out = append(out, m.alert(in.Now, "primary-down/"+h, h, fmt.Sprintf("primary %s: %s; %v", h, why, err))...)
				continue
			}
			out = append(out, Decision{Kind: DecideFailover, Host: h, To: to, Reason: why})
			m.Reset()
			return out
		}
		if ds.State != Failed || !ds.Auto {
			delete(m.healthy, h) // only a monitor-failed replica earns recovery
		}
		switch {
		case confirmed && ds.State == Online:
			if st.Policy != Automatic {
				out = append(out, m.alert(in.Now, "replica-down/"+h, h, fmt.Sprintf("replica %s: %s; policy is MAINTENANCE", h, why))...)
				continue
			}
			out = append(out, Decision{Kind: DecideFail, Host: h, Reason: why})
		case ds.State == Failed && ds.Auto:
			// Health is tracked under MAINTENANCE too, so that a replica
			// that went down meanwhile is not recovered on the strength of
			// an observation from before.
			f := in.Facts[h]
			if !f.Alive || f.DB != DBUp || f.ReplKind == replicatorpb.ReplicatorState_REPLICATOR_STATE_UNSPECIFIED {
				delete(m.healthy, h)
				continue
			}
			since, ok := m.healthy[h]
			if !ok {
				m.healthy[h] = in.Now
				continue
			}
			if st.Policy == Automatic && in.Now.Sub(since) >= m.cfg.RecoverAfter {
				delete(m.healthy, h)
				out = append(out, Decision{Kind: DecideRecover, Host: h, Reason: "healthy again"})
			}
		}
	}
	m.assessed = true
	return out
}

// alert records that the condition kind (a key under MonitorAlerts)
// holds on this step, and decides to raise it when it is new or its
// text changed, or every AlertEvery.
func (m *Monitor) alert(now time.Time, kind, host, text string) []Decision {
	key := MonitorAlerts + kind
	m.current[key] = text
	if t, ok := m.alerted[text]; ok && now.Sub(t) < m.cfg.AlertEvery {
		return nil
	}
	m.alerted[text] = now
	return []Decision{{Kind: DecideAlert, Host: host, Reason: text, Key: key}}
}

// MonitorAlerts prefixes the keys of the alerts the monitor raises.
const MonitorAlerts = "monitor/"

// Conditions are the alert conditions the last Step found, by key, and
// whether that step looked at every host (it does not while a switch or
// failover is under way, nor on the step that decides a failover): only
// then does a monitor alert missing from it clear.
func (m *Monitor) Conditions() (map[string]string, bool) {
	return m.current, m.assessed
}

// Candidate picks the replica to promote: ONLINE datasource, manager
// alive, database up, replicator ONLINE, highest stored seqno (the host
// holding the most of the old primary's writes: what it stored it applies
// before it is promoted), then highest applied seqno (the least left to
// apply), then host order. prefer, when set, must itself qualify; the
// failover has it fetch what others stored beyond it first.
func Candidate(st State, facts map[string]Facts, prefer string) (string, error) {
	type cand struct {
		host           string
		applied, store int64
	}
	var cs []cand
	var why []string
	for _, h := range st.Hosts() {
		if h == st.Primary {
			continue
		}
		f := facts[h]
		reason := ""
		switch {
		case st.Datasources[h].State != Online:
			reason = "is " + st.Datasources[h].String()
		case !f.Alive:
			reason = "has no live manager"
		case f.DB != DBUp:
			reason = "has its dataserver " + f.DB
		case f.ReplKind != replicatorpb.ReplicatorState_REPLICATOR_STATE_ONLINE:
			reason = "has its replicator " + orUnknown(f.ReplState)
		}
		if reason != "" {
			why = append(why, h+" "+reason)
			if h == prefer {
				return "", fmt.Errorf("%s cannot be promoted: it %s", h, reason)
			}
			continue
		}
		cs = append(cs, cand{h, f.Applied, f.MaxStored})
	}
	if prefer != "" {
		if _, ok := st.Datasources[prefer]; !ok {
			return "", fmt.Errorf("%s is not a datasource of this site (datasources: %s)", prefer, strings.Join(st.Hosts(), ", "))
		}
		if prefer == st.Primary {
			return "", fmt.Errorf("%s is already the primary", prefer)
		}
		return prefer, nil
	}
	if len(cs) == 0 {
		if len(why) == 0 {
			return "", fmt.Errorf("no replica to promote")
		}
		return "", fmt.Errorf("no eligible replica: %s", joinAnd(why))
	}
	sort.SliceStable(cs, func(i, j int) bool {
		if cs[i].store != cs[j].store {
			return cs[i].store > cs[j].store
		}
		return cs[i].applied > cs[j].applied
	})
	return cs[0].host, nil
}

// HoldAlert is how long an applier may hold a transaction for another
// stream (causal order) before the site's status says so.
const HoldAlert = 30 * time.Second

func sortedHolds(m map[string]float64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func orUnknown(s string) string {
	if s == "" {
		return "unreachable"
	}
	return s
}

func joinAnd(xs []string) string {
	switch len(xs) {
	case 0:
		return ""
	case 1:
		return xs[0]
	}
	out := ""
	for i, x := range xs {
		switch {
		case i == 0:
		case i == len(xs)-1:
			out += " and "
		default:
			out += ", "
		}
		out += x
	}
	return out
}

// SelfFence tells a manager whose host is the primary whether to make its
// database read-only: it has been without a quorum (no coordinator it can
// reach) for at least after.
func SelfFence(now, lastQuorum time.Time, after time.Duration) bool {
	return now.Sub(lastQuorum) >= after
}
