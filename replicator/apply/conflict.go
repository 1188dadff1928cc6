package apply

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// A conflict is a row change that does not find the row its source
// changed: an UPDATE or DELETE whose before-image differs from the target
// row (or finds none), an INSERT whose key exists with other values. The
// applier's fast path detects them: a locking read verifies the rows a
// block changes first (verify.go), or the WHERE matches the before-image
// and a guard checks the row count (match.go), and an INSERT of a taken
// key fails. A block that meets one is rolled back and its transactions
// applied again one at a time in conflict mode (conflictmode.go), each row
// checked against the target and resolved by the service's policy.

// Policy is what the applier does with a conflict.
type Policy string

// The policies (ini: repl-conflict-policy).
const (
	// PolicyStop stops the service before the transaction (OFFLINE:ERROR,
	// the row images in pendingError).
	PolicyStop Policy = "stop"
	// PolicyLog applies the source's change anyway (as an overwrite of the
	// row by key) and records the conflict.
	PolicyLog Policy = "log"
	// PolicySkip keeps the target's row and records the conflict.
	PolicySkip Policy = "skip"
	// PolicyConverge applies a rule every host applies the same way:
	// the change of the site ranked earlier in the site order wins.
	PolicyConverge Policy = "converge"
)

// Policies lists the policies, for messages.
var Policies = []Policy{PolicyStop, PolicyLog, PolicySkip, PolicyConverge}

// ParsePolicy returns the policy named s.
func ParsePolicy(s string) (Policy, error) {
	for _, p := range Policies {
		if string(p) == s {
			return p, nil
		}
	}
	return "", fmt.Errorf("%q is not a conflict policy; use stop, log, skip or converge", s)
}

// Conflicts configures conflict detection and resolution.
type Conflicts struct {
	// Off turns detection off: rows are found by key alone and the count
	// of rows a statement touched is not checked (what the applier did
	// before detection; for measuring its cost). An INSERT of an existing
	// key then stops the service.
	Off bool
	// WholeBlocks applies a block that met a conflict again wholly in
	// conflict mode, one transaction at a time, instead of splitting it
	// down to the transaction in conflict (split.go): what the applier
	// did before; for measuring what splitting saves.
	WholeBlocks bool
	// Policy resolves conflicts; PolicyStop when empty.
	Policy Policy
	// SiteOrder ranks the sites for PolicyConverge, the first winning.
	SiteOrder []string
	// OnConflict, when set, is called for every conflict once its
	// decision took effect: after its transaction committed (with its
	// record), or when the service stops on it.
	OnConflict func(Conflict)
}

func (c *Conflicts) validate() error {
	if c.Policy == "" {
		c.Policy = PolicyStop
	}
	if _, err := ParsePolicy(string(c.Policy)); err != nil {
		return fmt.Errorf("%w: %v", ErrConfig, err)
	}
	seen := map[string]bool{}
	for _, s := range c.SiteOrder {
		if s == "" || seen[s] {
			return fmt.Errorf("%w: the conflict site order %s must name each site once", ErrConfig, strings.Join(c.SiteOrder, ","))
		}
		seen[s] = true
	}
	if c.Policy == PolicyConverge && len(c.SiteOrder) < 2 {
		return fmt.Errorf("%w: the converge conflict policy needs the order of at least two sites", ErrConfig)
	}
	return nil
}

// Decision is what was done with a conflicting row change.
type Decision string

// The decisions.
const (
	// DecisionApplied: the source's change was applied over the target's
	// row (log, or converge when its site wins).
	DecisionApplied Decision = "applied"
	// DecisionKept: the target's row was kept (skip, or converge when the
	// other site wins).
	DecisionKept Decision = "kept"
	// DecisionStopped: the service stopped before the transaction.
	DecisionStopped Decision = "stopped"
)

// Kinds of conflict, as recorded.
const (
	KindChanged = "row differs" // the target row differs from the image
	KindMissing = "row missing" // an UPDATE or DELETE found no row
	KindExists  = "row exists"  // an INSERT found its key taken by other values
	KindUnique  = "unique key"  // the change collides with another row on a unique key
	KindParent  = "parent gone" // the change's row references a parent row this database no longer holds
)

// Conflict is one conflicting row change, as recorded in the tracking
// schema's conflicts table.
type Conflict struct {
	ID     int64
	Seqno  uint64
	Fragno uint32
	// Change and Row are the row's place in its event: the index of its
	// row change among the event's changes, and of the row in it.
	Change, Row int
	Origin      string // the site whose clients made the change
	Schema      string
	Table       string
	Key         string // the row's key, as text: id=5
	Action      string // INSERT, UPDATE or DELETE
	Kind        string // KindChanged, …
	// Before, Target and After are JSON objects by column name: the
	// source's row before and after its change, and the row this database
	// held ("" for none, or not known).
	Before, Target, After string
	Policy                Policy
	Decision              Decision
	SourceCommit          time.Time
	DetectedAt            time.Time
}

// sentence describes c in one sentence, for pendingError and logs (long
// values cut: the conflicts table has them).
func (c *Conflict) sentence() string {
	var b strings.Builder
	fmt.Fprintf(&b, "conflict on %s.%s %s: the %s from %s", c.Schema, c.Table, c.Key, c.Action, c.Origin)
	switch c.Action {
	case "INSERT":
		fmt.Fprintf(&b, " of %s", brief(c.After))
	default:
		fmt.Fprintf(&b, " expected %s", brief(c.Before))
		if c.Action == "UPDATE" {
			fmt.Fprintf(&b, " (to make it %s)", brief(c.After))
		}
	}
	switch {
	case c.Kind == KindParent:
		b.WriteString(" references a parent row this database no longer holds (another site deleted it)")
	case c.Kind == KindChildren:
		b.WriteString(" is refused for rows that refer to it (another site added them concurrently)")
	case c.Kind == KindUniqueCrossed:
		b.WriteString(" takes a unique value that another site's rows held concurrently")
	case c.Kind == KindUnique:
		fmt.Fprintf(&b, " collides on a unique key with another row of this database (the row at its key: %s)", brief(c.Target))
	case c.Target == "" && c.Action == "INSERT":
		b.WriteString(" collides with a row of this database")
	case c.Action == "INSERT":
		fmt.Fprintf(&b, " finds its key taken: this database holds %s", brief(c.Target))
	case c.Target == "":
		b.WriteString(" but this database holds no such row")
	default:
		fmt.Fprintf(&b, " but this database holds %s", brief(c.Target))
	}
	return b.String()
}

// briefValue is how many characters of a string value a sentence shows.
const briefValue = 40

// brief cuts the long string values of a JSON row image ("" for none).
func brief(image string) string {
	if image == "" {
		return "no row"
	}
	var b strings.Builder
	in, cut, n := false, false, 0
	var unit []rune // an escape sequence being read: written whole or not at all
	for _, r := range image {
		switch {
		case !in:
			b.WriteRune(r)
			in, cut, n = r == '"', false, 0
			continue
		case len(unit) > 0:
			unit = append(unit, r)
			if unit[1] == 'u' && len(unit) < 6 {
				continue
			}
		case r == '\\':
			unit = append(unit, r)
			continue
		case r == '"':
			if cut {
				b.WriteString("…")
			}
			b.WriteRune(r)
			in = false
			continue
		default:
			unit = append(unit, r)
		}
		if n >= briefValue {
			cut = true
		}
		if !cut {
			b.WriteString(string(unit))
			n++
		}
		unit = unit[:0]
	}
	return b.String()
}

// ConflictError is a conflict the service stops on: the policy is stop,
// or the conflict is one the policy cannot resolve.
type ConflictError struct {
	Conflict Conflict
	// Why, when set, says why the policy could not resolve it.
	Why string
}

func (e *ConflictError) Error() string {
	s := e.Conflict.sentence()
	if e.Why != "" {
		return s + "; " + e.Why
	}
	return fmt.Sprintf("%s; the conflict policy is stop: make the row what it should be with sql_log_bin=0 and put the service online, "+
		"or skip the transaction (trepctl online -skip-seqno %d)", s, e.Conflict.Seqno)
}

// Unwrap makes errors.Is(err, ErrConflict) hold.
func (e *ConflictError) Unwrap() error { return ErrConflict }

// rule decides conflicts for one applier.
type rule struct {
	policy Policy
	order  []string
}

// overwrite decides whether the change from origin overwrites the target's
// row (true) or the target's row is kept (false); an error when the
// service must stop.
func (r rule) overwrite(origin string) (bool, string, error) {
	switch r.policy {
	case PolicyLog:
		return true, "", nil
	case PolicySkip:
		return false, "", nil
	case PolicyConverge:
		other, ok := r.other(origin)
		if !ok {
			return false, "", fmt.Errorf("the converge policy cannot tell which site made the target's row: "+
				"it ranks the incoming site against the other site of a two-site order (repl-conflict-site-order=%s)", strings.Join(r.order, ","))
		}
		mine := slices.Index(r.order, origin)
		if mine < 0 {
			return false, "", fmt.Errorf("the converge policy cannot rank site %s: it is not in repl-conflict-site-order=%s", origin, strings.Join(r.order, ","))
		}
		return mine < slices.Index(r.order, other), other, nil
	}
	return false, "", errStop
}

// errStop: the policy is stop.
var errStop = errors.New("the conflict policy is stop")

// other is the site that made the target's row when a change from origin
// meets a conflict. With two sites it is the one that is not origin (what
// else the row holds came from the other site's stream: each stream is
// applied in order, after what its source had applied). With more sites
// the site is not known from the row: this is where a rule would read it
// (from the causal positions the events carry, or a column the
// application keeps); until then converge stops there.
func (r rule) other(origin string) (string, bool) {
	if len(r.order) != 2 {
		return "", false
	}
	switch origin {
	case r.order[0]:
		return r.order[1], true
	case r.order[1]:
		return r.order[0], true
	}
	return "", false
}
