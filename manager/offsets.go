package manager

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
)

// offsetEvery is how often a manager checks the sites' auto-increment
// offsets.
const offsetEvery = 5 * time.Second

// offsetLoop keeps the warnings status carries (cctrl ls shows them): two
// sites taking writes with one auto_increment_offset generate the same
// keys, and their inserts collide when they cross (the guide's Prepare
// section).
func (a *Agent) offsetLoop(ctx context.Context) {
	every(ctx, offsetEvery, func() {
		w := a.offsetWarnings(ctx)
		a.mu.Lock()
		a.warnings = w
		a.mu.Unlock()
	})
}

// offsetWarnings reads read_only and auto_increment_offset of every
// database of every site and names offsets shared by writable databases
// of different sites.
func (a *Agent) offsetWarnings(ctx context.Context) []string {
	sites := a.bound.Config.Clustered()
	if len(sites) < 2 {
		return nil
	}
	type writable struct{ site, host string }
	var mu sync.Mutex
	byOffset := map[int64][]writable{}
	var wg sync.WaitGroup
	for _, s := range sites {
		for _, h := range s.Members {
			wg.Add(1)
			go func() {
				defer wg.Done()
				db, err := a.fences.DB(h)
				if err != nil {
					return
				}
				qctx, cancel := context.WithTimeout(ctx, time.Second)
				defer cancel()
				var ro bool
				var off int64
				if err := db.QueryRowContext(qctx, "SELECT @@global.read_only, @@global.auto_increment_offset").Scan(&ro, &off); err != nil || ro {
					return
				}
				mu.Lock()
				byOffset[off] = append(byOffset[off], writable{s.Name, h})
				mu.Unlock()
			}()
		}
	}
	wg.Wait()
	var out []string
	for off, ws := range byOffset {
		sitesOf := map[string]bool{}
		var hosts []string
		for _, w := range ws {
			sitesOf[w.site] = true
			hosts = append(hosts, w.host)
		}
		if len(sitesOf) < 2 {
			continue
		}
		names := make([]string, 0, len(sitesOf))
		for s := range sitesOf {
			names = append(names, s)
		}
		sort.Strings(names)
		sort.Strings(hosts)
		out = append(out, fmt.Sprintf("sites %s take writes with the same auto_increment_offset %d (%s): their generated keys collide; give each site its own auto-increment-offset",
			strings.Join(names, " and "), off, strings.Join(hosts, ", ")))
	}
	sort.Strings(out)
	return out
}
