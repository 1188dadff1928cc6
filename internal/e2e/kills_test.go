package e2e

import (
	"database/sql"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/carbidedb/carbide/internal/testutil"
	"github.com/carbidedb/carbide/rpc/gen/managerpb"
)

// TestRepeatedKillsLoseNothing: a writer at full rate while the
// primary's mariadbd is SIGKILLed again and again (2 kills here, 20 under
// CARBIDE_CHAOS). After each failover the new primary holds every write
// any database acknowledged, the old primary comes back as a replica with
// a plain `datasource recover` (nothing of its own left behind), and at
// the end every host holds the same rows.
func TestRepeatedKillsLoseNothing(t *testing.T) {
	kills := 2
	if os.Getenv("CARBIDE_CHAOS") != "" {
		kills = 20
	}
	s := startSandbox(t, oneSite)
	s.createApp()
	w := startAckWriter(s)
	defer w.stop()
	var gaps []time.Duration
	for k := 1; k <= kills; k++ {
		old := s.status("east2").GetPrimary()
		w.waitAcks(t, old, 50)
		mark := w.count()
		killed := time.Now()
		s.kill9(old, "mariadbd")
		r := s.waitStatus("east2", 60*time.Second, fmt.Sprintf("failover %d away from %s", k, old), func(r *managerpb.StatusReply) error {
			if r.GetPrimary() == old || r.GetTransition() != "" {
				return fmt.Errorf("primary %s, transition %q, alerts %v", r.GetPrimary(), r.GetTransition(), r.GetAlerts())
			}
			return nil
		})
		primary := r.GetPrimary()
		first := w.firstAckOn(t, primary, mark, 30*time.Second)
		gaps = append(gaps, first.Sub(killed))
		if missing := w.missingOn(t, s.db(primary)); len(missing) > 0 {
			t.Fatalf("kill %d: the new primary %s lacks %d acknowledged write(s): %v", k, primary, len(missing), head(missing, 10))
		}
		s.mustCctrl(primary, "service", old+"/mysql", "start")
		testutil.Eventually(t, 60*time.Second, func() error {
			lines, err := s.cctrl(primary, false, "datasource", old, "recover")
			if err != nil {
				if strings.Contains(err.Error(), "never reached the site") {
					t.Fatalf("kill %d: %s holds writes the site never got: %v", k, old, err)
				}
				return err
			}
			t.Logf("kill %d: %s → %s, first write %v after the kill; %s", k, old, primary, first.Sub(killed).Round(time.Millisecond), strings.Join(lines, "; "))
			return nil
		})
	}
	w.stop()
	primary := s.status("east2").GetPrimary()
	s.sameEverywhere(60*time.Second, eastHosts, "app")
	if missing := w.missingOn(t, s.db(primary)); len(missing) > 0 {
		t.Fatalf("at the end the primary %s lacks %d acknowledged write(s): %v", primary, len(missing), head(missing, 10))
	}
	sort.Slice(gaps, func(i, j int) bool { return gaps[i] < gaps[j] })
	t.Logf("%d kills, %d writes acknowledged: kill to first write p50 %v, max %v", kills, w.count(), gaps[len(gaps)/2].Round(time.Millisecond), gaps[len(gaps)-1].Round(time.Millisecond))
}

// ackWriter inserts distinct values as fast as it can into app.t, moving
// to the next host when one refuses, and remembers every value a
// database acknowledged and where. A value whose answer was lost is sent
// again to the next host: a duplicate-key answer there proves it committed.
type ackWriter struct {
	mu    sync.Mutex
	acked map[int]string // value -> host that acknowledged it
	at    []ackAt
	quit  chan struct{}
	done  sync.WaitGroup
	once  sync.Once
}

type ackAt struct {
	host string
	at   time.Time
}

func startAckWriter(s *site) *ackWriter {
	w := &ackWriter{acked: map[int]string{}, quit: make(chan struct{})}
	pools := map[string]*sql.DB{}
	for _, h := range eastHosts {
		pools[h] = s.appDB(h)
	}
	w.done.Add(1)
	go func() {
		defer w.done.Done()
		target := "east1"
		for v := 1; ; {
			select {
			case <-w.quit:
				return
			default:
			}
			_, err := pools[target].Exec("INSERT INTO app.t (v) VALUES (?)", v)
			if err == nil || strings.Contains(err.Error(), "Duplicate entry") {
				w.mu.Lock()
				w.acked[v] = target
				w.at = append(w.at, ackAt{target, time.Now()})
				w.mu.Unlock()
				v++
				continue
			}
			for i, h := range eastHosts {
				if h == target {
					target = eastHosts[(i+1)%len(eastHosts)]
					break
				}
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	return w
}

func (w *ackWriter) stop() {
	w.once.Do(func() { close(w.quit) })
	w.done.Wait()
}

func (w *ackWriter) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.at)
}

// waitAcks waits for n more acknowledgements from host.
func (w *ackWriter) waitAcks(t *testing.T, host string, n int) {
	t.Helper()
	from := w.count()
	testutil.Eventually(t, 30*time.Second, func() error {
		w.mu.Lock()
		defer w.mu.Unlock()
		got := 0
		for _, a := range w.at[from:] {
			if a.host == host {
				got++
			}
		}
		if got < n {
			return fmt.Errorf("%d of %d writes acknowledged by %s", got, n, host)
		}
		return nil
	})
}

// firstAckOn is when host first acknowledged a write after the mark-th.
func (w *ackWriter) firstAckOn(t *testing.T, host string, mark int, limit time.Duration) time.Time {
	t.Helper()
	var first time.Time
	testutil.Eventually(t, limit, func() error {
		w.mu.Lock()
		defer w.mu.Unlock()
		for _, a := range w.at[mark:] {
			if a.host == host {
				first = a.at
				return nil
			}
		}
		return fmt.Errorf("no write acknowledged by %s yet", host)
	})
	return first
}

// missingOn lists the acknowledged values db lacks.
func (w *ackWriter) missingOn(t *testing.T, db *sql.DB) []int {
	t.Helper()
	w.mu.Lock()
	want := make(map[int]bool, len(w.acked))
	for v := range w.acked {
		want[v] = true
	}
	w.mu.Unlock()
	rows, err := db.Query("SELECT v FROM app.t")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		delete(want, v)
	}
	var out []int
	for v := range want {
		out = append(out, v)
	}
	sort.Ints(out)
	return out
}

func head(v []int, n int) []int {
	if len(v) > n {
		return v[:n]
	}
	return v
}
