package policy

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/carbidedb/carbide/rpc/gen/replicatorpb"
	"github.com/carbidedb/carbide/rpc/replstate"
)

// TestScripts runs every testdata/*.txt script. A script is a list of
// commands, one per line (# starts a comment):
//
//	config confirm=3 window=800ms grace=3s recover=2s alert=30s
//	init primary=east1 hosts=east1,east2,east3 [policy=MAINTENANCE]
//	facts HOST [alive=true|false] [db=ONLINE|STOPPED|UNKNOWN] [refused=true|false] [repl=ROLE/STATE] [applied=N] [stored=N] [cross=SERVICE/STATE] [hold=SERVICE/SECONDS]
//	unreachable HOST DURATION   out of contact for DURATION, growing with each tick (0 clears)
//	probe up|down|refused|none  the coordinator's probe of the primary
//	change OP HOST VALUE [REASON]   apply a State change (datasource, router)
//	change policy VALUE
//	begin switch|failover FROM TO   a transition starts (as the executor's begin change)
//	promote HOST                the transition's target becomes primary (ends it)
//	end                         the transition ends without a promotion (aborted)
//	tick DURATION               advance the clock, step, apply the decisions
//	expect TEXT                 the decisions of the last tick, joined by "; ", or "none"
//	state TEXT                  the state: "policy=P primary=H term=N H=STATE ... [transition=KIND:FROM->TO]"
//	candidate [PREFER] => TEXT  Candidate's answer (host or "error: " and the message)
//	selffence QUORUM_AGO AFTER => true|false
//	repeat N                    run the lines up to the matching "done" N times
//	done
//
// init gives every host alive=true db=ONLINE repl=master|slave/ONLINE.
// A config line, even a bare "config", starts a fresh monitor, as a newly
// elected coordinator has. A change that does not apply fails the script.
// Decisions are applied as the executor would on success: fail → FAILED
// (auto for a replica), failover → begin, old primary FAILED, candidate
// promoted; recover → ONLINE.
func TestScripts(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.txt")
	if len(files) == 0 {
		t.Fatal("no scripts under testdata")
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) { runScript(t, f) })
	}
}

type env struct {
	cfg     Config
	mon     *Monitor
	state   State
	facts   map[string]Facts
	unreach map[string]time.Duration
	probe   *bool
	refused bool // the probe's connection was refused
	now     time.Time
	last    []Decision
}

func runScript(t *testing.T, path string) {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []scriptLine
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		text := sc.Text()
		if i := strings.Index(text, "#"); i >= 0 {
			text = text[:i]
		}
		if text = strings.TrimSpace(text); text != "" {
			lines = append(lines, scriptLine{n, text})
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	e := &env{cfg: DefaultConfig(), facts: map[string]Facts{}, unreach: map[string]time.Duration{},
		now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	e.mon = NewMonitor(e.cfg)
	if err := e.exec(lines); err != nil {
		t.Fatalf("%s:%v", path, err)
	}
}

type scriptLine struct {
	n    int
	text string
}

// exec runs lines, expanding repeat blocks; errors are "LINE: TEXT: why".
func (e *env) exec(lines []scriptLine) error {
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		verb, rest, _ := strings.Cut(l.text, " ")
		switch verb {
		case "repeat":
			times, err := strconv.Atoi(strings.TrimSpace(rest))
			if err != nil || times < 1 {
				return fmt.Errorf("%d: %s: repeat N, N a positive count", l.n, l.text)
			}
			end, depth := -1, 0
			for j := i + 1; j < len(lines) && end < 0; j++ {
				switch v, _, _ := strings.Cut(lines[j].text, " "); v {
				case "repeat":
					depth++
				case "done":
					if depth == 0 {
						end = j
					}
					depth--
				}
			}
			if end < 0 {
				return fmt.Errorf("%d: %s: no matching done", l.n, l.text)
			}
			for k := 1; k <= times; k++ {
				if err := e.exec(lines[i+1 : end]); err != nil {
					return fmt.Errorf("%w (repeat from line %d, round %d)", err, l.n, k)
				}
			}
			i = end
		case "done":
			return fmt.Errorf("%d: done without repeat", l.n)
		default:
			if err := e.run(l.text); err != nil {
				return fmt.Errorf("%d: %s: %v", l.n, l.text, err)
			}
		}
	}
	return nil
}

func kv(args []string) map[string]string {
	m := map[string]string{}
	for _, a := range args {
		k, v, _ := strings.Cut(a, "=")
		m[k] = v
	}
	return m
}

func (e *env) run(text string) error {
	verb, rest, _ := strings.Cut(text, " ")
	args := strings.Fields(rest)
	switch verb {
	case "config":
		for k, v := range kv(args) {
			var err error
			switch k {
			case "confirm":
				e.cfg.ConfirmProbes, err = strconv.Atoi(v)
			case "window":
				e.cfg.ConfirmWindow, err = time.ParseDuration(v)
			case "grace":
				e.cfg.FenceGrace, err = time.ParseDuration(v)
			case "recover":
				e.cfg.RecoverAfter, err = time.ParseDuration(v)
			case "alert":
				e.cfg.AlertEvery, err = time.ParseDuration(v)
			default:
				return fmt.Errorf("unknown config %s", k)
			}
			if err != nil {
				return err
			}
		}
		e.mon = NewMonitor(e.cfg)
	case "init":
		m := kv(args)
		hosts := strings.Split(m["hosts"], ",")
		st, err := State{}.Apply(Change{Op: OpInit, Host: m["primary"], Hosts: hosts, Value: m["policy"]})
		if err != nil {
			return err
		}
		e.state = st
		for _, h := range hosts {
			role := "slave"
			if h == m["primary"] {
				role = "master"
			}
			e.facts[h] = Facts{Host: h, Alive: true, DB: DBUp, ReplRole: role, ReplState: ReplOnline, ReplKind: replicatorpb.ReplicatorState_REPLICATOR_STATE_ONLINE}
		}
	case "facts":
		if len(args) == 0 {
			return fmt.Errorf("facts needs a host")
		}
		f := e.facts[args[0]]
		f.Host = args[0]
		for k, v := range kv(args[1:]) {
			var err error
			switch k {
			case "alive":
				f.Alive, err = strconv.ParseBool(v)
			case "db":
				f.DB = v
			case "refused":
				f.DBRefused, err = strconv.ParseBool(v)
			case "repl":
				f.ReplRole, f.ReplState, _ = strings.Cut(v, "/")
				f.ReplKind = replstate.Of(f.ReplState)
			case "applied":
				f.Applied, err = strconv.ParseInt(v, 10, 64)
			case "stored":
				f.MaxStored, err = strconv.ParseInt(v, 10, 64)
			case "cross":
				svc, state, _ := strings.Cut(v, "/")
				f.Cross = map[string]string{svc: state}
			case "hold":
				svc, secs, _ := strings.Cut(v, "/")
				var n float64
				n, err = strconv.ParseFloat(secs, 64)
				f.Holds = map[string]float64{svc: n}
			default:
				return fmt.Errorf("unknown fact %s", k)
			}
			if err != nil {
				return fmt.Errorf("fact %s: %w", k, err)
			}
		}
		e.facts[args[0]] = f
	case "unreachable":
		if len(args) != 2 {
			return fmt.Errorf("unreachable HOST DURATION")
		}
		d, err := time.ParseDuration(args[1])
		if err != nil {
			return err
		}
		if d == 0 {
			delete(e.unreach, args[0])
		} else {
			e.unreach[args[0]] = d
		}
	case "probe":
		switch rest {
		case "up", "down", "refused":
			v := rest == "up"
			e.probe, e.refused = &v, rest == "refused"
		case "none":
			e.probe, e.refused = nil, false
		default:
			return fmt.Errorf("probe up|down|refused|none")
		}
	case "change":
		if len(args) == 2 && args[0] == OpPolicy {
			return e.apply(Change{Op: OpPolicy, Value: args[1]})
		}
		if len(args) < 3 {
			return fmt.Errorf("change OP HOST VALUE [REASON] or change policy VALUE")
		}
		c := Change{Op: args[0], Host: args[1], Value: args[2]}
		if len(args) > 3 {
			c.Reason = strings.Join(args[3:], " ")
		}
		return e.apply(c)
	case "begin":
		if len(args) != 3 {
			return fmt.Errorf("begin switch|failover FROM TO")
		}
		return e.apply(Change{Op: OpBegin, Transition: &Transition{Kind: args[0], From: args[1], To: args[2]}})
	case "promote":
		if len(args) != 1 {
			return fmt.Errorf("promote HOST")
		}
		return e.apply(Change{Op: OpPromote, Host: args[0]})
	case "end":
		if rest != "" {
			return fmt.Errorf("end takes no arguments")
		}
		return e.apply(Change{Op: OpEnd})
	case "tick":
		d, err := time.ParseDuration(rest)
		if err != nil {
			return err
		}
		e.now = e.now.Add(d)
		for h, u := range e.unreach {
			if u > 0 {
				e.unreach[h] = u + d
			}
		}
		e.last = e.mon.Step(Input{Now: e.now, State: e.state, Facts: e.facts, PrimaryProbe: e.probe, PrimaryRefused: e.refused, Unreachable: e.unreach})
		for _, dec := range e.last {
			if err := e.applyDecision(dec); err != nil {
				return err
			}
		}
	case "expect":
		got := "none"
		if len(e.last) > 0 {
			var parts []string
			for _, d := range e.last {
				parts = append(parts, d.String())
			}
			got = strings.Join(parts, "; ")
		}
		if got != rest {
			return fmt.Errorf("decisions are %q", got)
		}
	case "state":
		if got := e.describe(); got != rest {
			return fmt.Errorf("state is %q", got)
		}
	case "candidate":
		prefer, want, ok := strings.Cut(rest, "=>")
		if !ok {
			return fmt.Errorf("candidate [PREFER] => WANT")
		}
		got, err := Candidate(e.state, e.facts, strings.TrimSpace(prefer))
		if err != nil {
			got = "error: " + err.Error()
		}
		if got != strings.TrimSpace(want) {
			return fmt.Errorf("candidate is %q", got)
		}
	case "selffence":
		lhs, want, ok := strings.Cut(rest, "=>")
		fs := strings.Fields(lhs)
		if !ok || len(fs) != 2 {
			return fmt.Errorf("selffence QUORUM_AGO AFTER => BOOL")
		}
		ago, err1 := time.ParseDuration(fs[0])
		after, err2 := time.ParseDuration(fs[1])
		if err1 != nil || err2 != nil {
			return fmt.Errorf("bad durations")
		}
		if got := strconv.FormatBool(SelfFence(e.now, e.now.Add(-ago), after)); got != strings.TrimSpace(want) {
			return fmt.Errorf("selffence is %s", got)
		}
	default:
		return fmt.Errorf("unknown command %q", verb)
	}
	return nil
}

func (e *env) applyDecision(d Decision) error {
	var changes []Change
	switch d.Kind {
	case DecideFail:
		changes = []Change{{Op: OpDatasource, Host: d.Host, Value: Failed, Reason: d.Reason, Auto: d.Host != e.state.Primary}}
	case DecideFailover:
		changes = []Change{
			{Op: OpBegin, Transition: &Transition{Kind: Failover, From: d.Host, To: d.To}},
			{Op: OpDatasource, Host: d.Host, Value: Failed, Reason: d.Reason},
			{Op: OpPromote, Host: d.To},
		}
	case DecideRecover:
		changes = []Change{{Op: OpDatasource, Host: d.Host, Value: Online}}
	case DecideAlert:
		return nil
	}
	for _, c := range changes {
		if err := e.apply(c); err != nil {
			return err
		}
	}
	return nil
}

func (e *env) apply(c Change) error {
	st, err := e.state.Apply(c)
	if err != nil {
		return err
	}
	e.state = st
	return nil
}

func (e *env) describe() string {
	parts := []string{"policy=" + e.state.Policy, "primary=" + e.state.Primary, "term=" + strconv.FormatUint(e.state.Term, 10)}
	for _, h := range e.state.Hosts() {
		parts = append(parts, h+"="+e.state.Datasources[h].String())
	}
	if t := e.state.Transition; t != nil {
		parts = append(parts, "transition="+t.Kind+":"+t.From+"->"+t.To)
	}
	return strings.Join(parts, " ")
}
