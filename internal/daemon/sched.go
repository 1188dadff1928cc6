package daemon

import (
	"os"
	"runtime"
	"strings"
)

// A lean scheduler is how the replicator and the manager run. Their work
// is a stream of small messages (a THL event every few milliseconds, a
// probe, a heartbeat) handed from goroutine to goroutine, each taking
// microseconds, on a host they share with the database. Go's defaults cost
// them more in scheduling than in work there; two settings remove most of
// it (measured on the cross-site benchmark, 12 replicators on 2 cores at
// 500 tx/s per site: replicator CPU 0.77 → 0.60 cores, context switches
// 52k → 30k a second, cross-site p99 68-111 ms → 25-31 ms;
// docs/architecture.md, "Agent scheduling"):
//
//   - One P (GOMAXPROCS=1). With more, a goroutine made ready while the
//     only busy P runs wakes an idle thread to run it elsewhere (a futex
//     wake and a context switch per hand-off); with one, the hand-off
//     stays on the running thread. An agent needs a fraction of a core.
//   - sysmon kept out of deep sleep (GODEBUG=schedtrace=N). When every P
//     is idle sysmon sleeps until woken, and the next system call wakes it
//     and resets its poll interval to 20 µs: an agent that idles between
//     two events (every event, at these rates) then pays about fifty
//     sysmon wake-ups a millisecond after each. Without deep sleep sysmon
//     backs off to one wake-up in 10 ms while nothing needs it. The only
//     documented switch that keeps it from deep sleep is schedtrace; N is
//     the largest interval it takes (about 23 days), so the trace line it
//     exists for is written to the agent's log at most that often.
//
// An operator's own GOMAXPROCS or GODEBUG schedtrace in the environment
// wins over either.

// schedtrace is the GODEBUG setting the started process gets: the largest
// interval (ms, an int32) between two scheduler trace lines.
const schedtrace = "schedtrace=2000000000"

// leanEnv returns env with the lean scheduler's GODEBUG setting added,
// unless the operator set schedtrace.
func leanEnv(env []string) []string {
	out := make([]string, 0, len(env)+1)
	found := false
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "GODEBUG="); ok {
			found = true
			if !hasSetting(v, "schedtrace") {
				if v != "" {
					v += ","
				}
				kv = "GODEBUG=" + v + schedtrace
			}
		}
		out = append(out, kv)
	}
	if !found {
		out = append(out, "GODEBUG="+schedtrace)
	}
	return out
}

// hasSetting reports whether the GODEBUG value godebug sets key.
func hasSetting(godebug, key string) bool {
	for f := range strings.SplitSeq(godebug, ",") {
		if k, _, _ := strings.Cut(f, "="); strings.TrimSpace(k) == key {
			return true
		}
	}
	return false
}

// leanProcs gives the running process one P unless the environment sets
// GOMAXPROCS.
func leanProcs() {
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
}
