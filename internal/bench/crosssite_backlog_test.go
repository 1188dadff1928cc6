package bench

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// backlogRun is a backlog run: site src's primary writes it while the other
// site's cross-site replicators are stopped, then they are started again
// and timed until each has applied it. stmt is one transaction's
// statement, given a number from 1 to crossBacklog; count counts on a
// host what the backlog made there.
type backlogRun struct {
	src, dst []string // src's hosts (its primary first), the other site's
	stmt     string
	count    string
}

// insertBacklog is east's backlog of new rows; updateBacklog is west's
// UPDATEs of those rows (the losing site's changes, each asked about where
// the winner changed the table concurrently: docs/replicator.md).
var (
	insertBacklog = backlogRun{src: crossHosts[:3], dst: crossHosts[3:],
		stmt:  "INSERT INTO app.t VALUES (? + " + fmt.Sprint(backlogBase) + ", 'east', NOW(6))",
		count: "SELECT COUNT(*) FROM app.t WHERE site = 'east'"}
	updateBacklog = backlogRun{src: crossHosts[3:], dst: crossHosts[:3],
		stmt:  "UPDATE app.t SET site = 'west-b', at = NOW(6) WHERE id = ? + " + fmt.Sprint(backlogBase),
		count: "SELECT COUNT(*) FROM app.t WHERE site = 'west-b'"}
)

// measureBacklog stops the cross-site replicators of bl's other site,
// writes the backlog on its source's primary, starts them again and times
// the catch-up.
func (x *crossSite) measureBacklog(b *testing.B, bl backlogRun) result {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	west := bl.dst // the hosts that catch up
	srcSite, primary := x.site(bl.src[0]), bl.src[0]
	// What the runs before wrote is applied everywhere first: the backlog
	// counts its own rows there.
	settled := time.Now().Add(5 * time.Minute)
	for stored := x.seqno(primary, "continuent", "trepctl", "maximumStoredSeqNo"); ; time.Sleep(200 * time.Millisecond) {
		behind := 0
		for _, h := range west {
			if x.seqno(h, "replicator", "mm_trepctl", "appliedLastSeqno", "-service", srcSite) < stored {
				behind++
			}
		}
		if behind == 0 {
			break
		}
		if time.Now().After(settled) {
			b.Fatalf("%d hosts had not applied %s's seqno %d 5 minutes after the runs before", behind, srcSite, stored)
		}
	}
	for _, h := range west {
		if out, err := x.tool(h, "replicator", "mm_replicator", "stop"); err != nil {
			b.Fatalf("%s: mm_replicator stop: %v\n%s", h, err, out)
		}
	}
	before := map[string]int64{}
	for _, h := range west {
		var n int64
		if err := x.dbs[h].QueryRow(bl.count).Scan(&n); err != nil {
			b.Fatal(err)
		}
		before[h] = n
	}

	// The backlog: 4 clients, single-row autocommit statements.
	const clients = 4
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, clients)
	loadBegin := time.Now()
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := x.dbs[primary].Conn(ctx)
			if err != nil {
				errs[c] = err
				return
			}
			defer conn.Close()
			for {
				i := next.Add(1)
				if i > int64(crossBacklog) {
					return
				}
				if _, err := conn.ExecContext(ctx, bl.stmt, i); err != nil {
					errs[c] = err
					return
				}
			}
		}()
	}
	wg.Wait()
	load := time.Since(loadBegin)
	if err := errors.Join(errs...); err != nil {
		b.Fatalf("backlog on %s: %v", primary, err)
	}
	b.Logf("backlog: %d transactions on %s in %s (%.0f tx/s, %d clients)", crossBacklog, primary, load.Round(time.Millisecond), float64(crossBacklog)/load.Seconds(), clients)

	// The source's last seqno: once its third host has applied the whole
	// backlog, the primary's THL holds it all; its highest stored seqno
	// is then the one to reach.
	if err := x.waitCount(ctx, bl.src[2], bl.count, before[bl.dst[0]]+int64(crossBacklog), 5*time.Minute); err != nil {
		b.Fatal(err)
	}
	var last int64 = -2
	for range 50 {
		last = x.seqno(primary, "continuent", "trepctl", "maximumStoredSeqNo")
		if last >= 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if last < 0 {
		out, _ := x.tool(primary, "continuent", "trepctl", "status")
		b.Fatalf("%s: no maximumStoredSeqNo in trepctl status:\n%s", primary, out)
	}
	startFrom := map[string]int64{}

	begin := time.Now()
	for _, h := range west {
		if out, err := x.tool(h, "replicator", "mm_replicator", "start"); err != nil {
			b.Fatalf("%s: mm_replicator start: %v\n%s", h, err, out)
		}
	}
	started := time.Since(begin)
	done := map[string]time.Duration{}
	deadline := time.Now().Add(10 * time.Minute)
	for len(done) < len(west) {
		for _, h := range west {
			if _, ok := done[h]; ok {
				continue
			}
			s := x.seqno(h, "replicator", "mm_trepctl", "appliedLastSeqno", "-service", srcSite)
			if _, ok := startFrom[h]; !ok && s >= 0 {
				startFrom[h] = s
			}
			if s >= last {
				done[h] = time.Since(begin)
			}
		}
		if time.Now().After(deadline) {
			for _, h := range west {
				out, _ := x.tool(h, "replicator", "mm_trepctl", "-service", srcSite, "status")
				b.Logf("%s:\n%s", h, out)
			}
			b.Fatalf("the other site did not apply %s's seqno %d within 10 minutes (done: %v)", srcSite, last, done)
		}
		time.Sleep(100 * time.Millisecond)
	}
	elapsed := time.Since(begin)
	// Every host of the other site has the whole backlog.
	for _, h := range west {
		var n int64
		if err := x.dbs[h].QueryRow(bl.count).Scan(&n); err != nil {
			b.Fatal(err)
		}
		if n-before[h] != int64(crossBacklog) {
			b.Errorf("%s counts %d more rows of %s's backlog after the catch-up, want %d", h, n-before[h], srcSite, crossBacklog)
		}
	}
	var slowest time.Duration
	for _, h := range west {
		slowest = max(slowest, done[h])
		b.Logf("%s: service %s applied seqno %d (%d at its first poll) %s after mm_replicator start (%.0f tx/s)",
			h, srcSite, last, startFrom[h], done[h].Round(time.Millisecond), float64(crossBacklog)/done[h].Seconds())
	}
	b.Logf("mm_replicator start (3 hosts, one after another) took %s; %s's last seqno %d", started.Round(time.Millisecond), primary, last)
	return result{elapsed: elapsed, metrics: map[string]float64{
		"tx/s":       float64(crossBacklog) / slowest.Seconds(),
		"load-tx/s":  float64(crossBacklog) / load.Seconds(),
		"start-ms":   float64(started.Milliseconds()),
		"backlog-tx": float64(crossBacklog),
		"last-seq":   float64(last),
	}}
}

// waitCount waits until query counts at least n on host.
func (x *crossSite) waitCount(ctx context.Context, host, query string, n int64, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		var got int64
		if err := x.dbs[host].QueryRowContext(ctx, query).Scan(&got); err != nil {
			return err
		}
		if got >= n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: %s counts %d after %s, want %d", host, query, got, timeout, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// site names a host's site: east1 is east's.
func (x *crossSite) site(host string) string {
	if slices.Contains(crossHosts[:3], host) {
		return "east"
	}
	return "west"
}
