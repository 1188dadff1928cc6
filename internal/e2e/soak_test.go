package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/carbidedb/carbide/internal/mysqld"
	"github.com/carbidedb/carbide/internal/testutil"
	"github.com/carbidedb/carbide/router"
)

// soakLimit is how long any one answer may take before it counts as an
// unresolved stall (the slowest, a 64 MB result on a loaded machine, takes
// a few seconds).
const soakLimit = 90 * time.Second

// connSoak is a connector with the kernel path in front of a real mariadbd,
// and the pools that reach the server through it and directly.
type connSoak struct {
	t      *testing.T
	srv    *mysqld.Server // replaced when it restarts (by serverFault only)
	proxy  *router.Proxy
	table  router.Table
	addr   string // the connector's
	logs   *logCounter
	qs     *querySet
	direct *sql.DB
	c      tally
}

// pool opens a pool to addr as root, with the same settings through the
// connector and directly (no client-side interpolation); the caller
// closes it.
func (s *connSoak) pool(addr string, open int) *sql.DB {
	c := mysql.NewConfig()
	c.User, c.Net, c.Addr, c.DBName = "root", "tcp", addr, "mysql" // any database: the Sequence engine's tables are in all
	c.Timeout = 10 * time.Second
	c.MaxAllowedPacket = 256 << 20
	c.InterpolateParams = false
	c.Logger = driverLog{&s.c}
	conn, err := mysql.NewConnector(c)
	if err != nil {
		s.t.Fatal(err)
	}
	db := sql.OpenDB(conn)
	db.SetMaxOpenConns(open)
	return db
}

// TestConnectorSoak: every answer through a connector on the kernel path
// (an in-process router.Proxy, the code the connector runs, in front of
// a real mariadbd) is the answer a direct connection gets, byte for byte,
// under results of 1 byte to 64 MB, slow readers and readers that stop
// for longer than the stall detector's window, KILL QUERY and KILL
// CONNECTION mid-result, clients that drop their socket mid-result,
// mariadbd killed (-9) and shut down mid-result and restarted, and a
// burst of short connections. It fails on any wrong answer, any answer
// cut short without an error, and any answer that did not come within
// soakLimit (an unresolved stall); it reports the stalls the watcher
// moved to the event loops. 20,000 queries; 5 million under CARBIDE_CHAOS;
// SOAK_QUERIES sets the number.
func TestConnectorSoak(t *testing.T) {
	target, faults, burstFor := 20_000, 2, 3*time.Second
	if os.Getenv("CARBIDE_CHAOS") != "" {
		target, faults, burstFor = 5_000_000, 10, 5*time.Second
	}
	if v := os.Getenv("SOAK_QUERIES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("SOAK_QUERIES is %q: use a number of queries", v)
		}
		target = n
	}
	s := &connSoak{t: t, srv: testutil.StartMariaDB(t, testutil.WithOptions("max_allowed_packet=256M", "max_connections=1000"))}
	s.logs = &logCounter{next: testutil.Logger(t).Handler()}
	// A short hold: connections made while mariadbd restarts are refused
	// after it, and their clients try again.
	s.proxy = router.NewProxy(router.ProxyConfig{Logger: slog.New(s.logs), HoldTimeout: 3 * time.Second})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() { s.proxy.Serve(ctx, l, false); close(served) }()
	t.Cleanup(func() { cancel(); <-served; s.proxy.Close() })
	testutil.Require(t, s.logs.count("data path: kernel") == 1, "the connector's kernel path is not available here (it needs root and kernel 5.13)")
	s.addr = l.Addr().String()
	db := router.Target{Host: "db", Addr: s.srv.Addr()}
	s.table = router.Table{State: router.StateOnline, Primary: db, ReadOnly: db}
	s.proxy.SetTable(s.table)

	s.direct = s.pool(s.srv.Addr(), 4)
	t.Cleanup(func() { s.direct.Close() })
	begin := time.Now()
	s.qs = loadQueries(t, s.direct)
	t.Logf("soak: %d queries' direct answers read in %v", len(s.qs.small)+len(s.qs.medium)+len(s.qs.large)+len(s.qs.huge)+1, time.Since(begin).Round(time.Millisecond))

	begin = time.Now()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	workers := map[string]func(r *rand.Rand, stop <-chan struct{}){"query": s.queries, "slow": s.slowReader, "abort": s.aborter, "kill": s.killer}
	for name, n := range map[string]int{"query": 4, "slow": 1, "abort": 1, "kill": 1} {
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func(seed uint64) {
				defer wg.Done()
				workers[name](rand.New(rand.NewPCG(seed, uint64(i))), stop)
			}(uint64(time.Now().UnixNano()))
		}
	}
	next, last, moved := 1, int64(0), time.Now()
	for q := int64(0); q < int64(target); q = s.c.queries.Load() {
		if next <= faults && q >= int64(target*next/(faults+1)) {
			s.serverFault(next%2 == 1)
			next++
		}
		if q != last {
			last, moved = q, time.Now()
		}
		if time.Since(moved) > 2*soakLimit {
			t.Errorf("soak: no answer for %v after %d queries", 2*soakLimit, q)
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	soaked := time.Since(begin)
	conns, rate := s.burst(burstFor)

	// Every connection through the connector is closed: nothing is left.
	testutil.Eventually(t, 30*time.Second, func() error {
		if n := s.proxy.Counters().Active; n != 0 {
			return fmt.Errorf("%d connections still open through the connector", n)
		}
		return nil
	})
	c := &s.c
	giveUps := s.logs.count("made no progress; closed")
	t.Logf("soak: %d queries (%d answered in full, %d errors) and %.1f MB of answers in %v (%.0f/s); %d slow or paused reads, %d client aborts, %d KILLs (%d answered with an error), %d server faults; %d short connections at %.0f/s",
		c.queries.Load(), c.ok.Load(), c.errors.Load(), float64(c.bytes.Load())/1e6, soaked.Round(time.Millisecond), float64(c.queries.Load())/soaked.Seconds(),
		c.slow.Load(), c.aborts.Load(), c.kills.Load(), c.killErrors.Load(), min(faults, next-1), conns, rate)
	t.Logf("soak: %d wrong, %d truncated, %d garbled (protocol errors), %d unresolved; %d stalls detected and moved to the event loops (carbide_connector_kernel_stalls_total), %d connections the kernel path gave up on",
		c.wrong.Load(), c.truncated.Load(), c.garbled.Load(), c.unresolved.Load(), s.proxy.Stalls(), giveUps)
	for _, m := range c.samples {
		t.Errorf("soak: %s", m)
	}
	if c.wrong.Load()+c.truncated.Load()+c.garbled.Load()+c.unresolved.Load() > 0 || giveUps > 0 {
		t.Errorf("soak: %d wrong, %d truncated, %d garbled, %d unresolved answers, %d connections given up",
			c.wrong.Load(), c.truncated.Load(), c.garbled.Load(), c.unresolved.Load(), giveUps)
	}
	if c.ok.Load() < c.queries.Load()*9/10 {
		t.Errorf("soak: only %d of %d answers came in full", c.ok.Load(), c.queries.Load())
	}
}

// driverLog keeps the driver's log lines out of the test's output, and
// counts those that say a packet was malformed (the driver then reports
// only a bad connection).
type driverLog struct{ c *tally }

func (l driverLog) Print(v ...any) {
	if strings.Contains(fmt.Sprint(v...), mysql.ErrMalformPkt.Error()) {
		l.c.garbled.Add(1)
	}
}

// timed runs q on db for the worker who and judges its answer.
func (s *connSoak) timed(who string, db querier, q soakQuery, row func(int) bool) (answer, error) {
	ctx, cancel := context.WithTimeout(context.Background(), soakLimit)
	defer cancel()
	start := time.Now()
	a, err := run(ctx, db, q.text, row)
	s.c.judge(who, q, a, err, time.Since(start), soakLimit)
	return a, err
}

// queries runs drawn queries through the connector until stop.
func (s *connSoak) queries(r *rand.Rand, stop <-chan struct{}) {
	db := s.pool(s.addr, 2)
	defer db.Close()
	for !stopped(stop) {
		if _, err := s.timed("query", db, s.qs.pick(r), nil); err != nil {
			time.Sleep(10 * time.Millisecond) // the server may be down
		}
	}
}

// slowReader reads an 8 MB answer of 16,000 rows, or one of 450 KB in
// 5,000 rows, sleeping a millisecond every 200 rows, and stops reading
// once for 300 to 800 ms: longer than the stall window. The first runs
// out of credit (its pair moves to the event loops as paused), the second
// does not (its pair stays in the kernel, holding bytes the client does
// not take): neither is a stall.
func (s *connSoak) slowReader(r *rand.Rand, stop <-chan struct{}) {
	db := s.pool(s.addr, 1)
	defer db.Close()
	for i := 0; !stopped(stop); i++ {
		q := s.qs.slow
		if i%2 == 1 {
			q = s.qs.medium[len(s.qs.medium)-1]
		}
		pause := 1 + r.IntN(q.want.rows)
		_, err := s.timed("slow", db, q, func(n int) bool {
			if n%200 == 0 {
				time.Sleep(time.Millisecond)
			}
			if n == pause {
				time.Sleep(time.Duration(300+r.IntN(500)) * time.Millisecond)
			}
			return true
		})
		s.c.slow.Add(1)
		if err != nil {
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// aborter reads part of an answer up to 16 MB, to a row or for up to
// 20 ms, and drops its connection (the driver closes the socket when the
// context ends).
func (s *connSoak) aborter(r *rand.Rand, stop <-chan struct{}) {
	db := s.pool(s.addr, 1)
	defer db.Close()
	for !stopped(stop) {
		q := s.qs.medium[r.IntN(len(s.qs.medium))]
		if r.IntN(8) == 0 {
			q = s.qs.large[r.IntN(len(s.qs.large))]
		}
		ctx, cancel := context.WithTimeout(context.Background(), soakLimit)
		at := r.IntN(q.want.rows + 1)
		if r.IntN(2) == 0 { // within a row, if it is long
			at = q.want.rows + 1
			time.AfterFunc(time.Duration(r.IntN(20_000))*time.Microsecond, cancel)
		}
		_, err := run(ctx, db, q.text, func(n int) bool {
			if n >= at {
				cancel()
				return false
			}
			return true
		})
		cancel()
		s.c.aborts.Add(1)
		if err != nil && err != errAborted {
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// killer starts an answer of 1 to 64 MB and KILLs its query or its
// connection from a direct connection after 0 to 30 ms: the answer must
// be an error or whole.
func (s *connSoak) killer(r *rand.Rand, stop <-chan struct{}) {
	db := s.pool(s.addr, 1)
	defer db.Close()
	for !stopped(stop) {
		q := s.qs.medium[r.IntN(len(s.qs.medium))]
		switch r.IntN(30) {
		case 0:
			q = s.qs.huge[r.IntN(len(s.qs.huge))]
		case 1, 2, 3, 4, 5:
			q = s.qs.large[r.IntN(len(s.qs.large))]
		}
		c, err := db.Conn(context.Background())
		var id int64
		if err == nil {
			err = c.QueryRowContext(context.Background(), "SELECT CONNECTION_ID()").Scan(&id)
		}
		if err != nil {
			if c != nil {
				c.Close()
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		kill := "KILL QUERY "
		if r.IntN(2) == 0 {
			kill = "KILL "
		}
		done := make(chan error, 1)
		go func() {
			_, err := s.timed(strings.TrimSpace(kill), c, q, nil)
			done <- err
		}()
		time.Sleep(time.Duration(r.IntN(30)) * time.Millisecond)
		s.direct.Exec(kill + strconv.FormatInt(id, 10))
		s.c.kills.Add(1)
		if <-done != nil {
			s.c.killErrors.Add(1)
		}
		c.Close()
	}
}

// serverFault kills mariadbd (-9) or shuts it down while a 64 MB answer
// is on its way through the connector, and starts it again; the answer
// must be an error or whole (timed judges it).
func (s *connSoak) serverFault(kill bool) {
	db := s.pool(s.addr, 1)
	defer db.Close()
	q := s.qs.huge[len(s.qs.huge)-1]
	what := "shut down"
	if kill {
		what = "killed (-9)"
	}
	fault := make(chan struct{})
	start := time.Now()
	_, err := s.timed("server "+what, db, q, func(n int) bool {
		if n == 1 {
			go func() {
				defer close(fault)
				if kill {
					s.srv.Kill()
				} else {
					s.srv.Stop(context.Background())
				}
			}()
		}
		return true
	})
	<-fault
	s.srv = testutil.RestartMariaDB(s.t, s.srv)
	// As a manager's next table would: connections held while the
	// server was down try it again now.
	s.proxy.SetTable(s.table)
	s.t.Logf("soak: mariadbd %s mid-result; the client got %v after %v", what, err, time.Since(start).Round(time.Millisecond))
}

// burst opens short connections through the connector (connect, SELECT
// 1, quit) from 16 clients for d, and says how many and at what rate.
func (s *connSoak) burst(d time.Duration) (int64, float64) {
	db := s.pool(s.addr, 16)
	defer db.Close()
	db.SetMaxIdleConns(-1) // every query on a new connection
	q := s.qs.small[len(s.qs.small)-3]
	var wg sync.WaitGroup
	var mu sync.Mutex
	var n int64
	begin := time.Now()
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Since(begin) < d {
				if _, err := s.timed("burst", db, q, nil); err == nil {
					mu.Lock()
					n++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	return n, float64(n) / time.Since(begin).Seconds()
}

func stopped(stop <-chan struct{}) bool {
	select {
	case <-stop:
		return true
	default:
		return false
	}
}
