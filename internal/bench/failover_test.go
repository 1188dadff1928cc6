package bench

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/carbidedb/carbide/internal/mysqld"
	"github.com/carbidedb/carbide/internal/sandbox"
	"github.com/carbidedb/carbide/rpc/gen/managerpb"
)

// failoverReps is how many kills BenchmarkManagerFailover measures.
var failoverReps = envInt("CARBIDE_BENCH_FAILOVER_REPS", 20)

// BenchmarkManagerFailover measures automatic failover under the same
// writer as BenchmarkManagerSwitch. failoverReps times, the primary's
// mariadbd is SIGKILLed and the time taken from the kill to the writer's
// first acknowledged INSERT on another host; then the old primary's
// mariadbd is started again, `datasource OLD recover` makes it a replica
// and the next repetition waits until all three datasources are ONLINE.
// At the end the rows on every host are compared with the acknowledged
// ones; writes the old primary acknowledged but had not yet replicated
// when it died are logged and reported as lost-writes.
func BenchmarkManagerFailover(b *testing.B) {
	requireEnabled(b)
	runFailovers(b, startManagerSite(b), failoverReps)
}

// runFailovers is BenchmarkManagerFailover's work on m: reps kills of
// east's primary.
func runFailovers(b *testing.B, m *managerSite, failoverReps int) {
	w := m.startWriter(b)
	var times []float64
	var reps, notes []string
	// fail ends the benchmark, first logging the repetitions done.
	fail := func(format string, args ...any) {
		b.Helper()
		if len(reps) > 0 {
			b.Logf("failovers before this one: %s", strings.Join(reps, ", "))
		}
		b.Fatalf(format, args...)
	}
	for rep := 1; rep <= failoverReps; rep++ {
		from := m.settle(b, w)
		asker := m.replicaOf(from)
		pid, running := mysqld.ReadPID(filepath.Join(m.cfg.Dir, from, "mysql"))
		if !running {
			fail("failover %d: no mariadbd running on the primary %s", rep, from)
		}
		mark := w.mark()
		killed := time.Now()
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			fail("kill -9 mariadbd of %s: %v", from, err)
		}
		first, _, err := w.waitAck(mark, time.Minute, func(a ack) bool { return a.host != from && a.at.After(killed) })
		if err != nil {
			m.logManagers(b, killed.Add(-time.Second), time.Now())
			fail("failover %d from %s: %v (writer: %s)", rep, from, err, w.describe())
		}
		gap := first.at.Sub(killed)
		r := m.waitStatus(b, asker, 30*time.Second, "failover complete", func(r *managerpb.StatusReply) error {
			if r.GetPrimary() == from || r.GetTransition() != "" {
				return fmt.Errorf("primary %s, transition %q", r.GetPrimary(), r.GetTransition())
			}
			return nil
		})
		to := r.GetPrimary()
		if to != first.host {
			b.Errorf("failover %d: the writer's first write after the kill went to %s, but the primary is %s", rep, first.host, to)
		}
		times = append(times, ms(gap))

		// The old primary comes back as a replica.
		back := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		err = sandbox.MySQL(ctx, m.cfg, "start", from)
		cancel()
		if err != nil {
			fail("failover %d: start mariadbd of %s again: %v", rep, from, err)
		}
		m.waitStatus(b, asker, time.Minute, from+"'s dataserver ONLINE", func(r *managerpb.StatusReply) error {
			if d := dsOf(r, from).GetDataserver(); d != "ONLINE" {
				return fmt.Errorf("%s's dataserver is %s", from, d)
			}
			return nil
		})
		lines, attempts, err := m.recover(asker, from)
		if err != nil && strings.Contains(err.Error(), "never reached the site") {
			// The old primary committed INSERTs whose answers were lost and
			// which it never replicated; the writer retried those ids on
			// the new primary. Do what a DBA would: remove them from the
			// old primary, outside the binlog, and recover with force.
			n, ferr := m.dropOrphans(b, w, from, to)
			if ferr != nil {
				fail("failover %d: remove %s's unreplicated rows: %v", rep, from, ferr)
			}
			notes = append(notes, fmt.Sprintf("failover %d: %s held %d unreplicated row(s), removed before a forced recover", rep, from, n))
			lines, err = m.commandForce(asker, time.Minute, "datasource", from, "recover")
		}
		if err == nil {
			err = m.caughtUp(asker, from, time.Minute)
		}
		if err != nil {
			out, _ := m.tool(from, "continuent", "trepctl", "status")
			m.logManagers(b, back.Add(-time.Second), time.Now())
			fail("failover %d (%s -> %s, first write after %v): datasource %s recover: %s %v\nwriter: %s\n%s\n%s's trepctl status:\n%s",
				rep, from, to, gap.Round(time.Millisecond), from, strings.Join(lines, "; "), err, w.describe(), m.unanswered(w, from, to), from, out)
		}
		if reply := strings.Join(lines, "; "); !strings.Contains(reply, "RECOVERED") {
			notes = append(notes, fmt.Sprintf("failover %d: recover answered %q", rep, reply))
		}
		m.checkOneWritable(b, fmt.Sprintf("after failover %d", rep))
		reps = append(reps, fmt.Sprintf("%s→%s %.0f/%.1f/%d", from, to, ms(gap), time.Since(back).Seconds(), attempts))
	}
	// go test keeps only the first 10 lines a benchmark logs: one line
	// for all repetitions.
	b.Logf("failovers (kill -9 to first write ms / old primary back as a caught-up replica s / recover attempts): %s", strings.Join(reps, ", "))
	if len(notes) > 0 {
		b.Logf("%s", strings.Join(notes, "; "))
	}
	m.settle(b, w)
	w.stop()
	b.Logf("writer: %s", w.describe())
	lost := m.compareRows(b, w)

	t := sortedCopy(times)
	b.Logf("failover over %d kills: p50 %.0f ms, max %.0f ms (target p50 ≤ %v, max ≤ %v); %d acknowledged writes lost",
		len(t), percentile(t, 50), t[len(t)-1], failoverTarget, failoverMaxTarget, lost)
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(percentile(t, 50), "failover-p50-ms")
	b.ReportMetric(t[len(t)-1], "failover-max-ms")
	b.ReportMetric(float64(lost), "lost-writes")
	b.ReportMetric(float64(len(t)), "ops")
}

// lagHold is how long the lagging-candidate benchmark keeps the
// candidate's applier locked out before the kill: the backlog the
// candidate must apply before it may take writes.
const lagHold = 2 * time.Second

// BenchmarkManagerFailoverLagging measures a failover whose only
// candidate lags: the third host is shunned, a session on the candidate
// holds LOCK TABLES app.t WRITE for lagHold under the writer (so the
// candidate stores transactions it cannot apply), the primary's mariadbd
// is SIGKILLed and the lock released at once. The failover must have the
// candidate apply its backlog before it takes writes; the figure is the
// time from the kill to the writer's first write on it (a complete
// primary), beside the backlog. No acknowledged write may be lost.
func BenchmarkManagerFailoverLagging(b *testing.B) {
	requireEnabled(b)
	m := startManagerSite(b)
	w := m.startWriter(b)
	reps := envInt("CARBIDE_BENCH_LAG_REPS", 3)
	var times []float64
	var notes []string
	for rep := 1; rep <= reps; rep++ {
		from := m.settle(b, w)
		cand := m.replicaOf(from)
		var third string
		for _, h := range managerHosts {
			if h != from && h != cand {
				third = h
			}
		}
		if _, err := m.command(cand, time.Minute, "datasource", third, "shun"); err != nil {
			b.Fatalf("shun %s: %v", third, err)
		}
		conn, err := m.dbs[cand].Conn(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		if _, err := conn.ExecContext(context.Background(), "LOCK TABLES app.t WRITE"); err != nil {
			b.Fatal(err)
		}
		time.Sleep(lagHold)
		d := dsOf(m.status(b, cand), cand)
		pid, running := mysqld.ReadPID(filepath.Join(m.cfg.Dir, from, "mysql"))
		if !running {
			b.Fatalf("no mariadbd running on the primary %s", from)
		}
		mark := w.mark()
		killed := time.Now()
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			b.Fatal(err)
		}
		_, _ = conn.ExecContext(context.Background(), "UNLOCK TABLES")
		conn.Close()
		first, _, err := w.waitAck(mark, 2*time.Minute, func(a ack) bool { return a.host == cand && a.at.After(killed) })
		if err != nil {
			m.logManagers(b, killed.Add(-time.Second), time.Now())
			b.Fatalf("lagging failover %d to %s: %v (writer: %s)", rep, cand, err, w.describe())
		}
		gap := first.at.Sub(killed)
		times = append(times, ms(gap))
		notes = append(notes, fmt.Sprintf("%s→%s %.0f ms (backlog about %d transactions)", from, cand, ms(gap), d.GetMaxStoredSeqno()-d.GetAppliedSeqno()))

		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		err = sandbox.MySQL(ctx, m.cfg, "start", from)
		cancel()
		if err != nil {
			b.Fatalf("start mariadbd of %s again: %v", from, err)
		}
		m.waitStatus(b, cand, time.Minute, from+"'s dataserver ONLINE", func(r *managerpb.StatusReply) error {
			if d := dsOf(r, from).GetDataserver(); d != "ONLINE" {
				return fmt.Errorf("%s's dataserver is %s", from, d)
			}
			return nil
		})
		if _, err := m.command(cand, time.Minute, "datasource", third, "welcome"); err != nil {
			b.Fatalf("welcome %s: %v", third, err)
		}
		if _, _, err := m.recover(cand, from); err != nil {
			b.Fatalf("recover %s: %v", from, err)
		}
	}
	b.Logf("lagging-candidate failovers (kill -9 to the first write on a complete primary): %s", strings.Join(notes, ", "))
	m.settle(b, w)
	w.stop()
	lost := m.compareRows(b, w)
	t := sortedCopy(times)
	b.Logf("lagging-candidate failover over %d kills: p50 %.0f ms, max %.0f ms; %d acknowledged writes lost", len(t), percentile(t, 50), t[len(t)-1], lost)
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(percentile(t, 50), "lagging-failover-p50-ms")
	b.ReportMetric(t[len(t)-1], "lagging-failover-max-ms")
	b.ReportMetric(float64(lost), "lost-writes")
}
