package tpm

import (
	"database/sql"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/carbidedb/carbide/internal/testutil"
)

// dbSite is two sites of two hosts, each host a real mariadbd.
type dbSite struct {
	t     *testing.T
	f     *fixture
	port  int
	addr  map[string]string // host -> address
	db    map[string]*sql.DB
	ids   map[string]uint32
	hosts []string
}

// startSites starts e1, e2 (site east, auto-increment offset 1) and w1, w2
// (site west, offset 2), all with increment 4 and their own server ids.
func startSites(t *testing.T) *dbSite {
	t.Helper()
	testutil.RequireDB(t)
	s := &dbSite{t: t, f: newFixture(t), addr: map[string]string{}, db: map[string]*sql.DB{}, ids: map[string]uint32{},
		hosts: []string{"e1", "e2", "w1", "w2"}}
	for i, h := range s.hosts {
		site := 1 + i/2
		id := uint32(10*site + i%2 + 1)
		srv := testutil.StartMariaDB(t, testutil.WithServerID(id), testutil.WithAutoIncrement(4, site))
		host, p, err := net.SplitHostPort(srv.Addr())
		if err != nil {
			t.Fatal(err)
		}
		port, _ := strconv.Atoi(p)
		if s.port != 0 && port != s.port {
			t.Fatalf("servers listen on ports %d and %d; replication-port needs one", s.port, port)
		}
		s.port, s.addr[h], s.ids[h] = port, host, id
		s.db[h] = testutil.DB(t, srv)
	}
	s.writeINI(s.addr, nil)
	return s
}

// writeINI writes the two-site ini with the hosts at addr; extra adds lines
// to the sections it names (defaults, east, west).
func (s *dbSite) writeINI(addr map[string]string, extra map[string]string) {
	s.t.Helper()
	var hosts strings.Builder
	for _, h := range s.hosts {
		fmt.Fprintf(&hosts, "%s=%s\n", h, addr[h])
	}
	s.f.writeINI(fmt.Sprintf(`[defaults]
replication-user=tungsten
replication-password=secret
replication-port=%d
application-user=app_user
application-password=secret
application-port=3306
%s
[defaults.replicator]
home-directory=/opt/replicator
thl-port=2113
rmi-port=10002
executable-prefix=mm
replicator-rest-api-port=28097
property=replicator.prometheus.exporter.port=28091

[hosts]
%s
[sandbox]
root=%s

[east]
%s
topology=clustered
members=e1,e2
master=e1
connectors=e1,e2

[west]
%s
topology=clustered
members=w1,w2
master=w1
connectors=w1,w2

[east_west]
topology=cluster-slave
master-dataservice=east
slave-dataservice=west

[west_east]
topology=cluster-slave
master-dataservice=west
slave-dataservice=east
`, s.port, extra["defaults"], hosts.String(), s.f.root, extra["east"], extra["west"]))
}

// check runs validate --check-db and returns its result.
func (s *dbSite) check() result {
	s.t.Helper()
	return s.f.run("validate", "--ini", s.f.ini, "--check-db", "--timeout", "2s")
}

// set runs SET GLOBAL on host and restores the old value when t ends.
func (s *dbSite) set(t *testing.T, host, variable, value string) {
	t.Helper()
	db := s.db[host]
	old := testutil.QueryString(t, db, "SELECT @@GLOBAL."+variable)
	if _, err := strconv.Atoi(old); err != nil {
		old = "'" + old + "'"
	}
	testutil.Exec(t, db, "SET GLOBAL "+variable+" = "+value)
	t.Cleanup(func() { testutil.Exec(t, db, "SET GLOBAL "+variable+" = "+old) })
}

const allGood = "OK: the databases of 4 hosts meet every check"

// requireFindings checks the exit code, that every wanted line is printed
// and that no other ERROR or WARNING line is.
func requireFindings(t *testing.T, r result, code int, want ...string) {
	t.Helper()
	if r.code != code {
		t.Fatalf("want exit %d:\n%s", code, r)
	}
	got := map[string]bool{}
	for _, l := range lines(r.out) {
		if strings.HasPrefix(l, "ERROR: ") || strings.HasPrefix(l, "WARNING: ") {
			got[l] = true
		}
	}
	for _, w := range want {
		found := false
		for l := range got {
			if strings.HasPrefix(l, w) {
				found = true
				delete(got, l)
				break
			}
		}
		if !found {
			t.Errorf("no line starting with\n  %s\nin:\n%s", w, r.out)
		}
	}
	for l := range got {
		t.Errorf("unexpected finding: %s", l)
	}
	out := lines(r.out)
	final := len(out) > 0 && (out[len(out)-1] == allGood || strings.HasPrefix(out[len(out)-1], "OK: the databases of 4 hosts pass every check, with "))
	if final != (code == ExitOK) {
		t.Errorf("final %q line printed=%v with exit %d:\n%s", allGood, final, code, r.out)
	}
}

func TestCheckDB(t *testing.T) {
	s := startSites(t)

	t.Run("all good", func(t *testing.T) {
		r := s.check()
		requireFindings(t, r, ExitOK)
		if out := lines(r.out); len(out) != 2 || !strings.HasPrefix(out[0], "OK: "+s.f.ini+": 2 site(s)") {
			t.Fatalf("want the ini's OK line and the databases' OK line:\n%s", r)
		}
	})

	t.Run("binlog format", func(t *testing.T) {
		s.set(t, "w2", "binlog_format", "'STATEMENT'")
		requireFindings(t, s.check(), ExitProblems, "ERROR: w2: binlog_format is STATEMENT; set binlog-format=ROW in my.cnf")

		defer s.writeINI(s.addr, nil)
		s.writeINI(s.addr, map[string]string{"defaults": "skip-validation-check=MySQLBinlogFormatCheck"})
		requireFindings(t, s.check(), ExitOK)
	})

	t.Run("auto-increment offset shared across sites", func(t *testing.T) {
		s.set(t, "w1", "auto_increment_offset", "1")
		requireFindings(t, s.check(), ExitProblems, "ERROR: sites east and west share auto_increment_offset 1; give each site that takes writes its own auto-increment-offset")
	})

	t.Run("auto-increment increment too small", func(t *testing.T) {
		s.set(t, "e2", "auto_increment_increment", "1")
		requireFindings(t, s.check(), ExitProblems, "ERROR: e2: auto_increment_increment is 1 but 2 sites take writes; set auto-increment-increment to 2 or more")
	})

	t.Run("server id shared", func(t *testing.T) {
		s.set(t, "w1", "server_id", strconv.Itoa(int(s.ids["e2"])))
		requireFindings(t, s.check(), ExitProblems, fmt.Sprintf("ERROR: hosts e2, w1 share server_id %d; give every database its own server-id", s.ids["e2"]))
	})

	t.Run("max_allowed_packet smaller on one host", func(t *testing.T) {
		s.set(t, "w2", "max_allowed_packet", "16777216")
		requireFindings(t, s.check(), ExitOK, "WARNING: w2: max_allowed_packet is 16777216, 1073741824 on ")
	})

	t.Run("trigger", func(t *testing.T) {
		db := s.db["e1"]
		testutil.Exec(t, db, "CREATE DATABASE tpm_trig")
		t.Cleanup(func() { testutil.Exec(t, db, "DROP DATABASE tpm_trig") })
		testutil.Exec(t, db, "CREATE TABLE tpm_trig.t (id INT PRIMARY KEY, n INT)")
		testutil.Exec(t, db, "CREATE TRIGGER tpm_trig.t_bi BEFORE INSERT ON tpm_trig.t FOR EACH ROW SET NEW.n = 1")
		// Applied with BINLOG, which the replication user (ALL) may run.
		requireFindings(t, s.check(), ExitOK)
	})

	t.Run("read-only bypass", func(t *testing.T) {
		for _, h := range []string{"e2", "w1"} {
			db := s.db[h]
			testutil.Exec(t, db, "CREATE USER writer@'%' IDENTIFIED BY 'pw'")
			testutil.Exec(t, db, "GRANT INSERT, UPDATE, DELETE, READ_ONLY ADMIN ON *.* TO writer@'%'")
			testutil.Exec(t, db, "CREATE USER app_user@'10.%' IDENTIFIED BY 'pw'")
			testutil.Exec(t, db, "GRANT SELECT, READ_ONLY ADMIN ON *.* TO app_user@'10.%'")
			// SUPER lets no write through read_only from MariaDB 10.11 on.
			testutil.Exec(t, db, "CREATE USER old_admin@'%' IDENTIFIED BY 'pw'")
			testutil.Exec(t, db, "GRANT INSERT, SUPER ON *.* TO old_admin@'%'")
			t.Cleanup(func() { testutil.Exec(t, db, "DROP USER writer@'%', app_user@'10.%', old_admin@'%'") })
		}
		requireFindings(t, s.check(), ExitProblems,
			"ERROR: e2: 'app_user'@'10.%' can write on a read-only database (READ_ONLY ADMIN)",
			"ERROR: e2: 'writer'@'%' can write on a read-only database (READ_ONLY ADMIN), so a demoted primary keeps taking its writes after a switch or failover; REVOKE READ_ONLY ADMIN ON *.* FROM 'writer'@'%'",
			"ERROR: w1: 'app_user'@'10.%' can write on a read-only database (READ_ONLY ADMIN)",
			"ERROR: w1: 'writer'@'%' can write on a read-only database (READ_ONLY ADMIN)")
	})

	t.Run("default engine", func(t *testing.T) {
		s.set(t, "e2", "default_storage_engine", "'MyISAM'")
		requireFindings(t, s.check(), ExitOK, "WARNING: default_storage_engine differs (InnoDB on ")
	})

	t.Run("durability", func(t *testing.T) {
		s.set(t, "e1", "sync_binlog", "0")
		s.set(t, "w2", "innodb_flush_log_at_trx_commit", "2")
		requireFindings(t, s.check(), ExitOK,
			"WARNING: e1: sync_binlog is 0; a crash of the host can lose transactions its clients saw committed; set sync-binlog=1 in my.cnf",
			"WARNING: w2: innodb_flush_log_at_trx_commit is 2; a crash can lose transactions its clients saw committed")
	})

	t.Run("replication user privileges", func(t *testing.T) {
		for _, h := range s.hosts {
			db := s.db[h]
			testutil.Exec(t, db, "CREATE USER weak@'%' IDENTIFIED BY 'pw'")
			testutil.Exec(t, db, "GRANT SELECT ON *.* TO weak@'%'")
			testutil.Exec(t, db, "CREATE USER enough@'%' IDENTIFIED BY 'pw'")
			testutil.Exec(t, db, "GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO enough@'%'")
			t.Cleanup(func() { testutil.Exec(t, db, "DROP USER weak@'%', enough@'%'") })
		}
		defer s.writeINI(s.addr, nil)
		s.writeINI(s.addr, map[string]string{
			"east": "replication-user=enough\nreplication-password=pw",
			"west": "replication-user=weak\nreplication-password=pw",
		})
		requireFindings(t, s.check(), ExitProblems,
			"ERROR: w1: the replication user lacks privileges (has: GRANT SELECT ON *.* TO `weak`@`%`",
			"ERROR: w2: the replication user lacks privileges (has: GRANT SELECT ON *.* TO `weak`@`%`",
			// tungsten is now just another account that writes past read_only.
			"ERROR: e1: 'tungsten'@'%' can write on a read-only database (READ_ONLY ADMIN)",
			"ERROR: e2: 'tungsten'@'%' can write on a read-only database (READ_ONLY ADMIN)",
			"ERROR: w1: 'tungsten'@'%' can write on a read-only database (READ_ONLY ADMIN)",
			"ERROR: w2: 'tungsten'@'%' can write on a read-only database (READ_ONLY ADMIN)")
	})

	t.Run("wrong password", func(t *testing.T) {
		defer s.writeINI(s.addr, nil)
		s.writeINI(s.addr, map[string]string{"east": "replication-password=wrong", "west": "replication-password=wrong"})
		var want []string
		for _, h := range s.hosts {
			want = append(want, fmt.Sprintf("ERROR: %s: cannot connect to the database at %s as tungsten: ", h, net.JoinHostPort(s.addr[h], strconv.Itoa(s.port))))
		}
		requireFindings(t, s.check(), ExitProblems, want...)
	})

	t.Run("database down", func(t *testing.T) {
		addr := map[string]string{}
		for h, a := range s.addr {
			addr[h] = a
		}
		addr["w2"] = testutil.FreeAddress(s.port) // nothing listens there
		defer s.writeINI(s.addr, nil)
		s.writeINI(addr, nil)
		begin := time.Now()
		r := s.check()
		elapsed := time.Since(begin)
		requireFindings(t, r, ExitProblems, "ERROR: w2: cannot connect to the database at "+net.JoinHostPort(addr["w2"], strconv.Itoa(s.port)))
		if elapsed > 8*time.Second {
			t.Fatalf("validate --check-db --timeout 2s took %s with one database down", elapsed.Round(time.Millisecond))
		}
	})

	t.Run("database hangs", func(t *testing.T) {
		// A listener that accepts and never speaks: only the timeout
		// ends the handshake.
		l, err := net.Listen("tcp", net.JoinHostPort(testutil.FreeAddress(s.port), strconv.Itoa(s.port)))
		if err != nil {
			t.Fatal(err)
		}
		held := make(chan net.Conn, 16)
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				held <- c
			}
		}()
		t.Cleanup(func() {
			l.Close()
			for {
				select {
				case c := <-held:
					c.Close()
				default:
					return
				}
			}
		})
		addr := map[string]string{}
		for h, a := range s.addr {
			addr[h] = a
		}
		addr["e2"], _, _ = net.SplitHostPort(l.Addr().String())
		defer s.writeINI(s.addr, nil)
		s.writeINI(addr, nil)
		begin := time.Now()
		r := s.check()
		elapsed := time.Since(begin)
		requireFindings(t, r, ExitProblems, "ERROR: e2: cannot connect to the database at "+l.Addr().String())
		if elapsed < time.Second || elapsed > 8*time.Second {
			t.Fatalf("validate --check-db --timeout 2s took %s with one database hanging, want about 2s", elapsed.Round(time.Millisecond))
		}
	})
}
