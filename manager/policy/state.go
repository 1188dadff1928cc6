package policy

import (
	"fmt"
	"slices"
	"sort"
	"time"
)

// Policies.
const (
	Automatic   = "AUTOMATIC"
	Maintenance = "MAINTENANCE"
)

// Datasource administrative states.
const (
	Online  = "ONLINE"
	Offline = "OFFLINE"
	Shunned = "SHUNNED"
	Failed  = "FAILED"
)

// Transition kinds.
const (
	Switch   = "switch"
	Failover = "failover"
)

// DS is a datasource's administrative state.
type DS struct {
	State  string `json:"state"`
	Reason string `json:"reason,omitempty"`
	// Auto marks a FAILED state set by the monitor for a replica: the
	// monitor recovers it by itself once it is healthy again.
	Auto bool `json:"auto,omitempty"`
}

func (d DS) String() string {
	if d.Reason == "" {
		return d.State
	}
	return fmt.Sprintf("%s(%s)", d.State, d.Reason)
}

// Transition is a switch or failover in progress: while one is set no
// database of the site is writable, except the old primary of a switch
// while the connectors drain it (Drain).
type Transition struct {
	Kind string `json:"kind"`
	From string `json:"from"`
	To   string `json:"to"`
	// Drain: connectors hold new connections and close their read-write
	// connections to From, which still takes writes on those until OpDrained.
	Drain bool `json:"drain,omitempty"`
}

func (t *Transition) String() string {
	if t == nil {
		return ""
	}
	return fmt.Sprintf("%s %s -> %s", t.Kind, t.From, t.To)
}

// State is what the site's managers agree on through raft.
type State struct {
	Initialized bool   `json:"initialized"`
	Policy      string `json:"policy"`
	Primary     string `json:"primary"`
	// Term counts promotions: 1 at the start, one more at every switch or
	// failover. (Its JSON name stays what the raft logs of earlier
	// releases hold.)
	Term        uint64        `json:"epoch"`
	Datasources map[string]DS `json:"datasources"`
	// Precedence is the datasources in the ini's order (members=):
	// candidates that tie are promoted in this order, the order the
	// status shows as precedence.
	Precedence []string          `json:"precedence,omitempty"`
	Routers    map[string]string `json:"routers"`
	Transition *Transition       `json:"transition,omitempty"`
	// Alerts are the last MaxAlerts things the coordinator reported
	// (failovers, refusals under MAINTENANCE, alerts raised and cleared),
	// oldest first: the history.
	Alerts []string `json:"alerts,omitempty"`
	// Active are the alerts whose condition holds now, oldest first; each
	// clears (OpClear) when its condition ends.
	Active []ActiveAlert `json:"active,omitempty"`
}

// ActiveAlert is an alert whose condition holds: Key names the condition
// (kind/host...), Text says it, Since is when it was raised.
type ActiveAlert struct {
	Key   string    `json:"key"`
	Text  string    `json:"text"`
	Since time.Time `json:"since"`
}

// ActiveAlert returns the active alert of key, if any.
func (s State) ActiveAlert(key string) (ActiveAlert, bool) {
	for _, a := range s.Active {
		if a.Key == key {
			return a, true
		}
	}
	return ActiveAlert{}, false
}

// MaxAlerts bounds State.Alerts.
const MaxAlerts = 10

// Clone returns a deep copy.
func (s State) Clone() State {
	c := s
	c.Datasources = make(map[string]DS, len(s.Datasources))
	for k, v := range s.Datasources {
		c.Datasources[k] = v
	}
	c.Precedence = slices.Clone(s.Precedence)
	c.Routers = make(map[string]string, len(s.Routers))
	for k, v := range s.Routers {
		c.Routers[k] = v
	}
	if s.Transition != nil {
		t := *s.Transition
		c.Transition = &t
	}
	c.Alerts = append([]string(nil), s.Alerts...)
	c.Active = append([]ActiveAlert(nil), s.Active...)
	return c
}

// Hosts returns the datasources' host names in precedence order (by
// name for a state written before precedence was kept).
func (s State) Hosts() []string {
	if len(s.Precedence) == len(s.Datasources) {
		return slices.Clone(s.Precedence)
	}
	out := make([]string, 0, len(s.Datasources))
	for h := range s.Datasources {
		out = append(out, h)
	}
	sort.Strings(out)
	return out
}

// Writable tells whether host's database should accept writes: it is the
// primary, ONLINE, and no switch or failover is under way (but for the
// drain that opens a switch).
func (s State) Writable(host string) bool {
	t := s.Transition
	return s.Initialized && (t == nil || t.Drain && t.From == host) && s.Primary == host && s.Datasources[host].State == Online
}

// Change operations.
const (
	OpInit       = "init"
	OpPolicy     = "policy"
	OpDatasource = "datasource"
	OpRouter     = "router"
	OpBegin      = "begin"
	OpPromote    = "promote"
	OpEnd        = "end"
	// OpDrained ends the drain of a switch: the old primary goes read-only.
	OpDrained = "drained"
	OpAlert   = "alert"
	// OpRaise makes Key's alert active with Value as its text (a new text
	// for an active one keeps its Since); OpClear ends it.
	OpRaise = "raise"
	OpClear = "clear"
)

// Change is one mutation of the State, as carried by the raft log.
type Change struct {
	Op         string      `json:"op"`
	Host       string      `json:"host,omitempty"`
	Value      string      `json:"value,omitempty"` // policy, state
	Reason     string      `json:"reason,omitempty"`
	Auto       bool        `json:"auto,omitempty"`
	Hosts      []string    `json:"hosts,omitempty"`   // init: datasources
	Routers    []string    `json:"routers,omitempty"` // init: connectors
	Transition *Transition `json:"transition,omitempty"`
	At         time.Time   `json:"at,omitempty"`
	Key        string      `json:"key,omitempty"` // raise, clear: the alert's condition
}

// Apply returns the state after c, or an error (and s unchanged) when c
// does not apply to s.
func (s State) Apply(c Change) (State, error) {
	if !s.Initialized && c.Op != OpInit {
		return s, fmt.Errorf("policy: %s before the site state is initialized", c.Op)
	}
	n := s.Clone()
	switch c.Op {
	case OpInit:
		if s.Initialized {
			return s, fmt.Errorf("policy: the site state is already initialized")
		}
		if !slices.Contains(c.Hosts, c.Host) {
			return s, fmt.Errorf("policy: init: primary %s is not among %v", c.Host, c.Hosts)
		}
		if c.Value != "" && c.Value != Automatic && c.Value != Maintenance {
			return s, fmt.Errorf("policy: init: unknown policy %q", c.Value)
		}
		n = State{Initialized: true, Policy: Automatic, Primary: c.Host, Term: 1,
			Datasources: map[string]DS{}, Routers: map[string]string{}}
		if c.Value != "" {
			n.Policy = c.Value
		}
		for _, h := range c.Hosts {
			n.Datasources[h] = DS{State: Online}
		}
		n.Precedence = slices.Clone(c.Hosts)
		for _, r := range c.Routers {
			n.Routers[r] = Online
		}
	case OpPolicy:
		if c.Value != Automatic && c.Value != Maintenance {
			return s, fmt.Errorf("policy: unknown policy %q", c.Value)
		}
		n.Policy = c.Value
	case OpDatasource:
		if _, ok := s.Datasources[c.Host]; !ok {
			return s, fmt.Errorf("policy: %s is not a datasource", c.Host)
		}
		switch c.Value {
		case Online, Offline, Shunned, Failed:
		default:
			return s, fmt.Errorf("policy: unknown datasource state %q", c.Value)
		}
		n.Datasources[c.Host] = DS{State: c.Value, Reason: c.Reason, Auto: c.Auto}
	case OpRouter:
		if c.Value != Online && c.Value != Offline {
			return s, fmt.Errorf("policy: unknown router state %q", c.Value)
		}
		if c.Host == "*" {
			for r := range n.Routers {
				n.Routers[r] = c.Value
			}
			break
		}
		if _, ok := s.Routers[c.Host]; !ok {
			return s, fmt.Errorf("policy: %s runs no connector", c.Host)
		}
		n.Routers[c.Host] = c.Value
	case OpBegin:
		if s.Transition != nil {
			return s, fmt.Errorf("policy: a %s is already under way", s.Transition)
		}
		if c.Transition == nil {
			return s, fmt.Errorf("policy: begin without a transition")
		}
		t := *c.Transition
		if t.Kind != Switch && t.Kind != Failover {
			return s, fmt.Errorf("policy: begin: unknown transition %q", t.Kind)
		}
		if t.From != s.Primary {
			return s, fmt.Errorf("policy: begin %s: %s is not the primary (the primary is %s)", &t, t.From, s.Primary)
		}
		if _, ok := s.Datasources[t.To]; !ok || t.To == t.From {
			return s, fmt.Errorf("policy: begin %s: %s is not a replica of the site", &t, t.To)
		}
		if t.Drain && t.Kind != Switch {
			return s, fmt.Errorf("policy: begin %s: only a switch drains", &t)
		}
		n.Transition = &t
	case OpDrained:
		if s.Transition == nil {
			return s, fmt.Errorf("policy: drained without a transition")
		}
		t := *s.Transition
		t.Drain = false
		n.Transition = &t
	case OpPromote:
		if _, ok := s.Datasources[c.Host]; !ok {
			return s, fmt.Errorf("policy: %s is not a datasource", c.Host)
		}
		if s.Transition != nil && s.Transition.To != c.Host {
			return s, fmt.Errorf("policy: promote %s during %s", c.Host, s.Transition)
		}
		n.Primary = c.Host
		n.Term++
		n.Datasources[c.Host] = DS{State: Online}
		n.Transition = nil
	case OpAlert:
		if c.Value == "" {
			return s, fmt.Errorf("policy: an alert needs a text")
		}
		n.Alerts = append(n.Alerts, c.Value)
		if len(n.Alerts) > MaxAlerts {
			n.Alerts = n.Alerts[len(n.Alerts)-MaxAlerts:]
		}
	case OpRaise:
		if c.Key == "" || c.Value == "" {
			return s, fmt.Errorf("policy: raising an alert needs a key and a text")
		}
		i := slices.IndexFunc(n.Active, func(a ActiveAlert) bool { return a.Key == c.Key })
		if i >= 0 {
			n.Active[i].Text = c.Value
		} else {
			n.Active = append(n.Active, ActiveAlert{Key: c.Key, Text: c.Value, Since: c.At})
		}
	case OpClear:
		n.Active = slices.DeleteFunc(n.Active, func(a ActiveAlert) bool { return a.Key == c.Key })
	case OpEnd:
		n.Transition = nil
	default:
		return s, fmt.Errorf("policy: unknown change %q", c.Op)
	}
	return n, nil
}
