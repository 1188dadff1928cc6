package router

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/carbidedb/carbide/internal/testutil"
)

// startProxy serves a proxy on a free loopback port.
func startProxy(t *testing.T, cfg ProxyConfig) (*Proxy, string) {
	t.Helper()
	p := NewProxy(cfg)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Serve(ctx, l, false); close(done) }()
	t.Cleanup(func() { cancel(); <-done; p.Close() })
	return p, l.Addr().String()
}

// echoServer greets every connection (as a MySQL server does) with greet,
// "hello" when empty, then answers with what it reads, closing its side
// after the client's EOF.
func echoServer(t *testing.T, greet []byte) string {
	t.Helper()
	if len(greet) == 0 {
		greet = []byte("hello")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.Write(greet)
				io.Copy(c, c)
			}()
		}
	}()
	return l.Addr().String()
}

func onlineTo(addr string) Table {
	return Table{State: StateOnline, Primary: Target{Host: "db", Addr: addr}, ReadOnly: Target{Host: "db", Addr: addr}}
}

// waitActive waits until the proxy counts n active connections.
func waitActive(t *testing.T, p *Proxy, n int64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for p.Counters().Active != n {
		if time.Now().After(deadline) {
			t.Fatalf("active connections %d, want %d", p.Counters().Active, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func openVia(t *testing.T, addr string) *sql.DB {
	t.Helper()
	c := mysql.NewConfig()
	c.User, c.Net, c.Addr = "root", "tcp", addr
	c.Timeout = 10 * time.Second
	conn, err := mysql.NewConnector(c)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(conn)
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	return db
}

// TestProxy: a connection through the proxy reaches the routed server
// (MySQL authentication passes through) and is counted; an OFFLINE
// connector and a hold that times out answer with an error packet the
// client shows; a FAILED datasource's connections are closed at once.
func TestProxy(t *testing.T) {
	srv := testutil.StartMariaDB(t, testutil.WithServerID(4242))
	p, addr := startProxy(t, ProxyConfig{HoldTimeout: 300 * time.Millisecond})
	online := Table{State: StateOnline, Primary: Target{Host: "east1", Addr: srv.Addr()}, ReadOnly: Target{Host: "east1", Addr: srv.Addr()}}

	// Held, then released by a table.
	go func() { time.Sleep(100 * time.Millisecond); p.SetTable(online) }()
	db := openVia(t, addr)
	var id int
	if err := db.QueryRow("SELECT @@server_id").Scan(&id); err != nil || id != 4242 {
		t.Fatalf("through the proxy: server_id %d, %v", id, err)
	}
	if c := p.Counters(); c.Created != 1 || c.Active != 1 || c.PerHost["east1"] != [2]int64{1, 1} {
		t.Errorf("counters with one connection open: %+v", c)
	}

	p.SetTable(Table{State: StateOffline, Why: "connector east1 is OFFLINE (router east1 online brings it back)"})
	var me *mysql.MySQLError
	err := openVia(t, addr).Ping()
	if !errors.As(err, &me) || me.Number != ErrConnectorOffline || !strings.Contains(me.Message, "OFFLINE") {
		t.Errorf("offline connector: %v", err)
	}
	// The open connection finishes its work.
	if err := db.QueryRow("SELECT 1").Scan(&id); err != nil {
		t.Errorf("an existing connection after router offline: %v", err)
	}

	p.SetTable(Table{State: StateOnHold, Why: "a switch east1 -> east2 is under way"})
	begin := time.Now()
	err = openVia(t, addr).Ping()
	if !errors.As(err, &me) || me.Number != ErrNoPrimary || !strings.Contains(me.Message, "switch east1 -> east2") {
		t.Errorf("hold timeout: %v", err)
	}
	if d := time.Since(begin); d < 250*time.Millisecond {
		t.Errorf("the hold ended after %v, before the hold timeout", d)
	}

	p.SetTable(Table{State: StateOnHold, Why: "the primary east1 is not ONLINE", Failed: map[string]bool{"east1": true}})
	testutil.Eventually(t, 5*time.Second, func() error {
		if c := p.Counters(); c.Active != 0 {
			return errors.New("the connection to the failed datasource is still open")
		}
		return nil
	})
	if err := db.QueryRow("SELECT 1").Scan(&id); err == nil {
		t.Errorf("a connection to a FAILED datasource still works")
	}
}

// TestProxyClosesDemotedPrimaryAfterTimeout: after a switch, read-write
// connections to the old primary close once DisconnectTimeout passed.
func TestProxyClosesDemotedPrimaryAfterTimeout(t *testing.T) {
	srv := testutil.StartMariaDB(t)
	p, addr := startProxy(t, ProxyConfig{DisconnectTimeout: 200 * time.Millisecond})
	p.SetTable(Table{State: StateOnline, Primary: Target{Host: "east1", Addr: srv.Addr()}})
	db := openVia(t, addr)
	if err := db.Ping(); err != nil {
		t.Fatal(err)
	}
	p.SetTable(Table{State: StateOnline, Primary: Target{Host: "east2", Addr: "127.0.0.1:1"}})
	if c := p.Counters(); c.Active != 1 {
		t.Fatalf("closed before the disconnect timeout: %+v", c)
	}
	testutil.Eventually(t, 5*time.Second, func() error {
		if c := p.Counters(); c.Active != 0 {
			return errors.New("still open")
		}
		return nil
	})
}

// TestOfflineErrorInMariaDBClient: the operator's own client prints the
// connector's refusal as a MySQL error.
func TestOfflineErrorInMariaDBClient(t *testing.T) {
	testutil.RequireDB(t)
	client, err := exec.LookPath("mariadb")
	testutil.Require(t, err == nil, "the mariadb client is missing (make deps installs it)")
	p, addr := startProxy(t, ProxyConfig{})
	p.SetTable(Table{State: StateOffline, Why: "connector east1 is OFFLINE (router east1 online brings it back)"})
	host, port, _ := net.SplitHostPort(addr)
	out, err := exec.Command(client, "-h"+host, "-P"+port, "-uapp", "-psecret", "-e", "select 1").CombinedOutput()
	// The client (which tries TLS first) prints the refusal as "1040 -
	// Carbide connector: …" after a note that it came before TLS.
	if err == nil || !strings.Contains(string(out), "1040") || !strings.Contains(string(out), "connector east1 is OFFLINE") {
		t.Errorf("mariadb client against an offline connector: %v\n%s", err, out)
	}
}

// TestProxyDrainCatchesConnectionBeingMade: a connection routed to the
// primary just before a switch's drain, but connected after it, does not
// reach the draining primary: it waits for the new one.
func TestProxyDrainCatchesConnectionBeingMade(t *testing.T) {
	a, b := echoServer(t, []byte("A")), echoServer(t, []byte("B"))
	dialing, gate := make(chan struct{}), make(chan struct{})
	var d net.Dialer
	var first atomic.Bool
	p, addr := startProxy(t, ProxyConfig{HoldTimeout: 10 * time.Second, Dial: func(ctx context.Context, to string) (net.Conn, error) {
		if to == a && first.CompareAndSwap(false, true) {
			close(dialing)
			<-gate
		}
		return d.DialContext(ctx, "tcp", to)
	}})
	p.SetTable(Table{State: StateOnline, Primary: Target{Host: "east1", Addr: a}})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	<-dialing
	p.SetTable(Table{State: StateOnHold, Why: "a switch east1 -> east2 is under way", Drain: "east1", Transition: "switch east1 -> east2"})
	close(gate)
	time.Sleep(100 * time.Millisecond)
	if host, n := p.Draining(); host != "east1" || n != 0 {
		t.Errorf("draining %s with %d connections left; want east1 with none", host, n)
	}
	p.SetTable(Table{State: StateOnline, Primary: Target{Host: "east2", Addr: b}})
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 1)
	if _, err := c.Read(buf); err != nil || string(buf) != "B" {
		t.Errorf("greeted by %q (%v); want the new primary B", buf, err)
	}
	if cs := p.Counters(); cs.PerHost["east1"] != [2]int64{} || cs.PerHost["east2"] != [2]int64{1, 1} {
		t.Errorf("counters: %+v", cs)
	}
}

// TestProxyDrainWaitsForServer: a drained connection counts until its
// server ended the session (it reads the commands sent before the drain
// first), while the application sees its connection end at once.
func TestProxyDrainWaitsForServer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ended := make(chan time.Time, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		c.Write([]byte("G"))
		io.Copy(io.Discard, c) // until the connector's half-close
		time.Sleep(400 * time.Millisecond)
		ended <- time.Now()
		c.Close()
	}()
	p, addr := startProxy(t, ProxyConfig{DisconnectTimeout: 50 * time.Millisecond})
	p.SetTable(Table{State: StateOnline, Primary: Target{Host: "east1", Addr: l.Addr().String()}})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Read(make([]byte, 1))
	c.Write([]byte("a command"))
	p.SetTable(Table{State: StateOnHold, Drain: "east1", Transition: "switch east1 -> east2"})
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := c.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("the application's connection after the drain: %d bytes, %v; want EOF", n, err)
	}
	if _, n := p.Draining(); n != 1 {
		t.Errorf("%d connections draining while the server still runs the session; want 1", n)
	}
	at := <-ended
	testutil.Eventually(t, 5*time.Second, func() error {
		if _, n := p.Draining(); n != 0 {
			return errors.New("still draining")
		}
		return nil
	})
	if d := time.Since(at); d > time.Second {
		t.Errorf("released %v after the server ended the session", d)
	}
}

// TestPumpClose: a FAILED datasource's connections and every connection
// of a closed proxy end at once, whether idle or in the middle of a
// transfer the client stopped reading.
func TestPumpClose(t *testing.T) {
	p, addr := startProxy(t, ProxyConfig{})
	p.SetTable(onlineTo(echoServer(t, nil)))
	var cs []net.Conn
	for i := 0; i < 4; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		cs = append(cs, c)
	}
	// One stalls with data pending in both directions.
	go cs[0].Write(make([]byte, 8<<20))
	waitActive(t, p, 4)
	time.Sleep(100 * time.Millisecond)
	p.SetTable(Table{State: StateOnHold, Failed: map[string]bool{"db": true}})
	for i, c := range cs {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.Copy(io.Discard, c); err != nil && !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("connection %d: %v (want EOF or reset, not a timeout)", i, err)
		}
	}
	waitActive(t, p, 0)
}

// TestHoldThroughDeadTarget: a primary that does not answer (died, not yet
// failed over) holds the connection until a table names another; with no
// new table the client gets the connector's error once the hold ends.
func TestHoldThroughDeadTarget(t *testing.T) {
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.Addr().String()
	dead.Close()
	p, addr := startProxy(t, ProxyConfig{HoldTimeout: 2 * time.Second})
	p.SetTable(onlineTo(deadAddr))
	live := echoServer(t, nil)
	go func() { time.Sleep(300 * time.Millisecond); p.SetTable(onlineTo(live)) }()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 5)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "hello" {
		t.Fatalf("held connection after the new table: %q, %v", buf, err)
	}

	p2, addr2 := startProxy(t, ProxyConfig{HoldTimeout: 300 * time.Millisecond})
	p2.SetTable(onlineTo(deadAddr))
	c2, err := net.Dial("tcp", addr2)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	c2.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, _ := io.ReadAll(c2)
	if !bytes.Contains(got, []byte("cannot reach db")) {
		t.Fatalf("after the hold: %q, want the connector's error", got)
	}
}

// TestKernelOff: a CARBIDE_CONNECTOR_KERNEL that is neither on nor off
// stops the connector before it opens its install, with one sentence;
// with off, the proxy's connections go through the event loops
// (router/datapath tests the setting itself).
func TestKernelOff(t *testing.T) {
	t.Setenv("CARBIDE_CONNECTOR_KERNEL", "maybe")
	home := t.TempDir()
	_, err := New(Config{Home: home})
	if err == nil || err.Error() != `CARBIDE_CONNECTOR_KERNEL is "maybe": use on or off` {
		t.Errorf("New with CARBIDE_CONNECTOR_KERNEL=maybe: %v", err)
	}
	if ents, _ := os.ReadDir(home); len(ents) != 0 {
		t.Errorf("the refused start wrote %d entries into the install", len(ents))
	}
	t.Setenv("CARBIDE_CONNECTOR_KERNEL", "off")
	p, addr := startProxy(t, ProxyConfig{})
	p.SetTable(onlineTo(echoServer(t, nil)))
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	hello := make([]byte, 5)
	if _, err := io.ReadFull(c, hello); err != nil || string(hello) != "hello" {
		t.Fatalf("%q %v", hello, err)
	}
}
