package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"google.golang.org/grpc"

	"github.com/carbidedb/carbide/internal/install"
	"github.com/carbidedb/carbide/internal/mysqld"
	"github.com/carbidedb/carbide/internal/security"
	"github.com/carbidedb/carbide/internal/testutil"
	"github.com/carbidedb/carbide/rpc/command"
	"github.com/carbidedb/carbide/rpc/gen/managerpb"
)

// manager returns a client of host's manager.
func (s *site) manager(host string) managerpb.ManagerClient {
	s.t.Helper()
	// As the host's own tools would: with its install's TLS settings once
	// it has SSL (and control-tls-only), plaintext before.
	sec := security.Insecure("secret")
	if b, err := install.Open(filepath.Join(s.cfg.Dir, host, "continuent")); err == nil {
		if c, err := security.ForInstall(b); err == nil {
			sec = c
		}
	}
	conn, err := grpc.NewClient(s.addr(host)+":9997", sec.ControlDialOptions(nil)...)
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { conn.Close() })
	return managerpb.NewManagerClient(conn)
}

// status asks host's manager for its view, failing the test on error.
func (s *site) status(host string) *managerpb.StatusReply {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r, err := s.manager(host).Status(ctx, &managerpb.StatusRequest{})
	if err != nil {
		s.t.Fatalf("status from %s: %v", host, err)
	}
	return r
}

// cctrl runs a command on host's manager (forwarded to the coordinator).
func (s *site) cctrl(host string, force bool, args ...string) ([]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req, err := command.Parse(args)
	if err != nil {
		return nil, err
	}
	req.Force = force
	r, err := s.manager(host).Command(ctx, req)
	if err != nil {
		return nil, err
	}
	return r.GetLines(), nil
}

func (s *site) mustCctrl(host string, args ...string) []string {
	s.t.Helper()
	lines, err := s.cctrl(host, false, args...)
	if err != nil {
		s.t.Fatalf("%s: %s: %v", host, strings.Join(args, " "), err)
	}
	return lines
}

// pidOf reads the pid file of host's agent program.
func (s *site) pidOf(host, program string) int {
	s.t.Helper()
	var path string
	if program == "mariadbd" {
		pid, _ := mysqld.ReadPID(filepath.Join(s.cfg.Dir, host, "mysql"))
		return pid
	}
	path = filepath.Join(s.cfg.Dir, host, "continuent", "var", "run", program+".pid")
	b, err := os.ReadFile(path)
	if err != nil {
		s.t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// kill9 SIGKILLs host's program.
func (s *site) kill9(host, program string) {
	s.t.Helper()
	pid := s.pidOf(host, program)
	if pid <= 0 {
		s.t.Fatalf("%s: no pid for %s", host, program)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		s.t.Fatalf("kill -9 %s of %s: %v", program, host, err)
	}
}

// appDB opens a pool to host's database as the application user.
func (s *site) appDB(host string) *sql.DB {
	s.t.Helper()
	return s.appPool(s.addr(host) + ":13306")
}

// appPool opens a one-connection pool to addr as the application user.
func (s *site) appPool(addr string) *sql.DB {
	s.t.Helper()
	mc := mysql.NewConfig()
	mc.User, mc.Passwd, mc.Net, mc.Addr = "app_user", "secret", "tcp", addr
	mc.Timeout, mc.ReadTimeout, mc.WriteTimeout = 2*time.Second, 5*time.Second, 5*time.Second
	conn, err := mysql.NewConnector(mc)
	if err != nil {
		s.t.Fatal(err)
	}
	db := sql.OpenDB(conn)
	db.SetMaxOpenConns(1)
	s.t.Cleanup(func() { db.Close() })
	return db
}

// waitStatus polls host's manager until cond holds.
func (s *site) waitStatus(host string, timeout time.Duration, what string, cond func(*managerpb.StatusReply) error) *managerpb.StatusReply {
	s.t.Helper()
	var last *managerpb.StatusReply
	testutil.Eventually(s.t, timeout, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		r, err := s.manager(host).Status(ctx, &managerpb.StatusRequest{})
		if err != nil {
			return err
		}
		last = r
		if err := cond(r); err != nil {
			return fmt.Errorf("%s: %v", what, err)
		}
		return nil
	})
	return last
}

func dsOf(r *managerpb.StatusReply, host string) *managerpb.Datasource {
	for _, d := range r.GetDatasources() {
		if d.GetHost() == host {
			return d
		}
	}
	return &managerpb.Datasource{}
}

// writable lists the hosts whose database has read_only off.
func (s *site) writable(hosts []string) []string {
	var out []string
	for _, h := range hosts {
		var ro int
		if err := s.db(h).QueryRow("SELECT @@global.read_only").Scan(&ro); err == nil && ro == 0 {
			out = append(out, h)
		}
	}
	return out
}

// TestManagerCoordinatorAndFailover: a coordinator is elected at start and
// again after the coordinator is SIGKILLed; killing the primary's
// mariadbd makes a replica the primary (the old one FAILED), replicas
// follow it, and applications write to it.
func TestManagerCoordinatorAndFailover(t *testing.T) {
	s := startSandbox(t, oneSite)
	r := s.status("east2")
	if r.GetCoordinator() == "" || r.GetPrimary() != "east1" || r.GetPolicy() != "AUTOMATIC" {
		t.Fatalf("after up: coordinator %q primary %q policy %q", r.GetCoordinator(), r.GetPrimary(), r.GetPolicy())
	}
	if w := s.writable(eastHosts); len(w) != 1 || w[0] != "east1" {
		t.Fatalf("writable databases after up: %v, want [east1]", w)
	}
	// The coordinator dies: another is elected within 5 s.
	old := r.GetCoordinator()
	s.kill9(old, "manager")
	asker := "east3"
	if old == "east3" {
		asker = "east2"
	}
	begin := time.Now()
	s.waitStatus(asker, 5*time.Second, "a new coordinator", func(r *managerpb.StatusReply) error {
		if c := r.GetCoordinator(); c == "" || c == old {
			return fmt.Errorf("coordinator %q", c)
		}
		return nil
	})
	t.Logf("new coordinator after SIGKILL of %s in %v", old, time.Since(begin).Round(time.Millisecond))
	if out, err := s.tool(old, "continuent", "manager", "start"); err != nil {
		t.Fatalf("manager start on %s: %v\n%s", old, err, out)
	}
	s.waitStatus(old, 10*time.Second, "every manager alive", func(r *managerpb.StatusReply) error {
		for _, m := range r.GetMembers() {
			if m.GetState() != "alive" {
				return fmt.Errorf("%s is %s", m.GetHost(), m.GetState())
			}
		}
		return nil
	})

	app := s.appDB("east1")
	if _, err := app.Exec("CREATE DATABASE app"); err != nil {
		t.Fatal(err)
	}
	if _, err := app.Exec("CREATE TABLE app.t (id INT PRIMARY KEY AUTO_INCREMENT, v INT)"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 50; i++ {
		if _, err := app.Exec("INSERT INTO app.t (v) VALUES (?)", i); err != nil {
			t.Fatal(err)
		}
	}
	s.sameEverywhere(20*time.Second, eastHosts, "app")

	// A replica refuses the application's writes.
	if _, err := s.appDB("east2").Exec("INSERT INTO app.t (v) VALUES (-1)"); err == nil {
		t.Fatal("a replica took an application write")
	}

	s.kill9("east1", "mariadbd")
	killed := time.Now()
	r = s.waitStatus("east2", 20*time.Second, "failover", func(r *managerpb.StatusReply) error {
		if r.GetPrimary() == "east1" || r.GetTransition() != "" {
			return fmt.Errorf("primary %s %s", r.GetPrimary(), r.GetTransition())
		}
		if d := dsOf(r, "east1"); d.GetState() != "FAILED" {
			return fmt.Errorf("east1 is %s", d.GetState())
		}
		return nil
	})
	primary := r.GetPrimary()
	var other string
	for _, h := range []string{"east2", "east3"} {
		if h != primary {
			other = h
		}
	}
	var writeTime time.Duration
	testutil.Eventually(t, 10*time.Second, func() error {
		_, err := s.appDB(primary).Exec("INSERT INTO app.t (v) VALUES (1000)")
		writeTime = time.Since(killed)
		return err
	})
	t.Logf("failover east1 -> %s: first write %v after kill -9; east1 %s", primary, writeTime.Round(time.Millisecond), dsOf(r, "east1").GetReason())
	s.sameEverywhere(20*time.Second, []string{primary, other}, "app")
	if got := s.field(other, "masterConnectUri"); got != "thl://"+primary+":2112/" {
		t.Errorf("%s reads from %s, want the new primary", other, got)
	}
	if w := s.writable([]string{"east2", "east3"}); len(w) != 1 || w[0] != primary {
		t.Errorf("writable: %v, want [%s]", w, primary)
	}
}
