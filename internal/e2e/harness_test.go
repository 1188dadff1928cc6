package e2e

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/carbidedb/carbide/internal/config"
	"github.com/carbidedb/carbide/internal/mysqld"
	"github.com/carbidedb/carbide/internal/sandbox"
	"github.com/carbidedb/carbide/internal/testutil"
)

// release is a directory with bin/ holding every program, built once.
var release string

func TestMain(m *testing.M) {
	code := func() int {
		if _, err := mysqld.LookPath(); err != nil && os.Getenv(testutil.RequireDBEnv) == "" {
			// Tests skip themselves through testutil.RequireDB.
			return m.Run()
		}
		dir, err := os.MkdirTemp("", "carbide-release-")
		if err == nil {
			err = testutil.ClaimDir(dir)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, "bin")+"/", "github.com/carbidedb/carbide/cmd/...")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "build the programs:", err)
			return 1
		}
		// tools/tpm, as in a release directory (the guide's cd $(tpm query staging) && tools/tpm update).
		b, err := os.ReadFile("../../tools/tpm")
		if err == nil {
			err = os.MkdirAll(filepath.Join(dir, "tools"), 0o755)
		}
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, "tools", "tpm"), b, 0o755)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "tools/tpm in the release directory:", err)
			return 1
		}
		release = dir
		return m.Run()
	}()
	os.Exit(code)
}

// oneSite is a site of three hosts, no cross-site service.
const oneSite = `[defaults]
install-directory=/opt/continuent
replication-user=tungsten
replication-password=secret
application-user=app_user
application-password=secret
replicator-rest-api=false
channels=4
property=replicator.prometheus.exporter.enabled=false

[east]
topology=clustered
members=east1,east2,east3
master=east1
`

// site is a running sandbox.
type site struct {
	t     *testing.T
	cfg   sandbox.Config
	net   int
	netns bool // on the WAN bed: each host in a network namespace
	out   *strings.Builder
	dbs   map[string]*sql.DB
	hosts map[string]string // host → address, from the sandbox's ini
}

var netCounter = 0

// WANEnv runs every e2e test on the WAN bed: each host of a sandbox in a
// network namespace of its own (sandbox up --netns), the sites joined by a
// link of DELAY[/JITTER[/LOSS]] (for example 40ms/5ms/0.1%). make chaos
// runs the guide's scenarios, the cross-site and the partition tests so.
const WANEnv = "CARBIDE_E2E_WAN"

// wanOf reads a WANEnv value.
func wanOf(v string) config.WAN {
	parts := strings.SplitN(v, "/", 3)
	for len(parts) < 3 {
		parts = append(parts, "")
	}
	return config.WAN{Delay: parts[0], Jitter: parts[1], Loss: parts[2]}
}

// startSandbox brings up ini in a fresh sandbox on its own addresses: on
// loopback, or on the WAN bed when WANEnv is set.
func startSandbox(t *testing.T, ini string) *site {
	t.Helper()
	if v, ok := os.LookupEnv(WANEnv); ok {
		return startSandboxWAN(t, ini, wanOf(v))
	}
	return startSandboxOn(t, ini, nil)
}

// startSandboxWAN brings up ini on the WAN bed with the link shaped so.
func startSandboxWAN(t *testing.T, ini string, wan config.WAN) *site {
	t.Helper()
	testutil.Require(t, os.Geteuid() == 0, "the WAN bed needs root (network namespaces)")
	return startSandboxOn(t, ini, &wan)
}

// startSandboxOn brings up ini in a fresh sandbox: on loopback, or with
// wan on the WAN bed.
func startSandboxOn(t *testing.T, ini string, wan *config.WAN) *site {
	t.Helper()
	testutil.RequireDB(t)
	dir := t.TempDir()
	testutil.Claim(t, dir)
	iniPath := filepath.Join(dir, "topology.ini")
	if err := os.WriteFile(iniPath, []byte(ini), 0o644); err != nil {
		t.Fatal(err)
	}
	// A net whose first address is taken (another sandbox of this machine,
	// or one just stopped) is passed over.
	var n int
	for try := 0; try < 40; try++ {
		netCounter++
		if wan != nil {
			// The bed's nets are 0 to 15; one whose first bridge or a
			// namespace exists belongs to another sandbox.
			n = (os.Getpid() + netCounter) % 16
			if _, err := os.Stat(fmt.Sprintf("/sys/class/net/cb%ds1", n)); err != nil && !netnsExists(fmt.Sprintf("carbide%d-", n)) {
				break
			}
			continue
		}
		n = 150 + (os.Getpid()+netCounter*7)%40
		if l, err := net.Listen("tcp", fmt.Sprintf("127.%d.1.1:13306", n)); err == nil {
			l.Close()
			break
		}
	}
	out := &strings.Builder{}
	cfg := sandbox.Config{Dir: filepath.Join(dir, "sb"), INI: iniPath, Staging: release, Out: out, Net: n, StopTimeout: 30 * time.Second}
	if wan != nil {
		cfg.NetNS, cfg.WAN = true, *wan
	}
	s := &site{t: t, cfg: cfg, net: n, netns: wan != nil, out: out}
	t.Cleanup(func() {
		if _, err := os.Stat(filepath.Join(cfg.Dir, sandbox.ININame)); err == nil {
			if err := sandbox.Down(context.Background(), cfg); err != nil {
				t.Errorf("sandbox down: %v", err)
			}
		}
		if t.Failed() {
			t.Logf("sandbox output:\n%s", out.String())
			logs, _ := filepath.Glob(filepath.Join(cfg.Dir, "*", "*", "var", "log", "*.log"))
			if keep := os.Getenv("CARBIDE_E2E_KEEP"); keep != "" {
				// Whole logs, for a failure to be read after the run.
				dir := filepath.Join(keep, strings.ReplaceAll(t.Name(), "/", "_"))
				for _, l := range logs {
					rel, _ := filepath.Rel(cfg.Dir, l)
					dst := filepath.Join(dir, strings.ReplaceAll(rel, string(filepath.Separator), "_"))
					b, _ := os.ReadFile(l)
					_ = os.MkdirAll(dir, 0o755)
					_ = os.WriteFile(dst, b, 0o644)
				}
				t.Logf("logs kept in %s", dir)
			}
			for _, l := range logs {
				b, _ := os.ReadFile(l)
				lines := strings.Split(strings.TrimSpace(string(b)), "\n")
				if len(lines) > 60 {
					lines = lines[len(lines)-60:]
				}
				t.Logf("--- %s\n%s", l, strings.Join(lines, "\n"))
			}
		}
	})
	if err := sandbox.Up(context.Background(), cfg); err != nil {
		t.Fatalf("sandbox up: %v\n%s", err, out.String())
	}
	return s
}

// netnsExists reports whether a network namespace's name starts so.
func netnsExists(prefix string) bool {
	names, _ := filepath.Glob("/run/netns/" + prefix + "*")
	return len(names) > 0
}

// addrs maps the sandbox's hosts to their addresses (its ini's [hosts]).
func (s *site) addrs() map[string]string {
	s.t.Helper()
	if s.hosts == nil {
		c, err := config.Load(filepath.Join(s.cfg.Dir, sandbox.ININame))
		if err != nil {
			return nil // not up yet: addr computes the address
		}
		s.hosts = c.Hosts
	}
	return s.hosts
}

// hostOf is the host at address a, or "".
func (s *site) hostOf(a string) string {
	for h, ha := range s.addrs() {
		if ha == a {
			return h
		}
	}
	return ""
}

// nsOf is a host's network namespace on the WAN bed.
func (s *site) nsOf(host string) string { return fmt.Sprintf("carbide%d-%s", s.net, host) }

// addr is a host's sandbox address: its [hosts] entry, or for a host the
// sandbox does not have yet (a site a test is about to add), the address
// the sandbox will give it.
func (s *site) addr(host string) string {
	if a, ok := s.addrs()[host]; ok {
		return a
	}
	s.hosts = nil // the ini may have grown since
	if a, ok := s.addrs()[host]; ok {
		return a
	}
	var si, hi int
	fmt.Sscanf(strings.TrimLeft(host, "abcdefghijklmnopqrstuvwxyz"), "%d", &hi)
	switch {
	case strings.HasPrefix(host, "east"):
		si = 1
	case strings.HasPrefix(host, "west"):
		si = 2
	case strings.HasPrefix(host, "north"):
		si = 3
	}
	if s.netns {
		return fmt.Sprintf("198.18.%d.%d", 16*s.net+si, hi)
	}
	return fmt.Sprintf("127.%d.%d.%d", s.net, si, hi)
}

// db opens a pool to host's database as the replication user.
func (s *site) db(host string) *sql.DB {
	s.t.Helper()
	if db, ok := s.dbs[host]; ok {
		return db
	}
	mc := mysql.NewConfig()
	mc.User, mc.Passwd, mc.Net, mc.Addr = "tungsten", "secret", "tcp", s.addr(host)+":13306"
	mc.Timeout = 5 * time.Second
	mc.MultiStatements = true
	conn, err := mysql.NewConnector(mc)
	if err != nil {
		s.t.Fatal(err)
	}
	db := sql.OpenDB(conn)
	db.SetMaxIdleConns(4)
	s.t.Cleanup(func() { db.Close() })
	if s.dbs == nil {
		s.dbs = map[string]*sql.DB{}
	}
	s.dbs[host] = db
	return db
}

// exec runs statements on host.
func (s *site) exec(host string, stmts ...string) {
	s.t.Helper()
	db := s.db(host)
	for _, q := range stmts {
		if _, err := db.Exec(q); err != nil {
			s.t.Fatalf("%s: %s: %v", host, q, err)
		}
	}
}

// tool runs an install's program (trepctl, replicator, …) as an operator
// would, through the host's wrapper.
func (s *site) tool(host, install, program string, args ...string) (string, error) {
	cmd := exec.Command(filepath.Join(s.cfg.Dir, host, install, "bin", program), args...)
	cmd.Env = append(os.Environ(), "CARBIDE_HOME=")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// trepctl runs trepctl of host's cluster install.
func (s *site) trepctl(host string, args ...string) string {
	s.t.Helper()
	out, err := s.tool(host, "continuent", "trepctl", args...)
	if err != nil {
		s.t.Fatalf("%s: trepctl %s: %v\n%s", host, strings.Join(args, " "), err, out)
	}
	return out
}

// field reads one field of trepctl status.
func (s *site) field(host, name string, args ...string) string {
	out := s.trepctl(host, append(args, "status")...)
	for _, l := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == name {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// checksums returns CHECKSUM TABLE of every table of the given schemas.
func (s *site) checksums(host string, schemas ...string) map[string]string {
	s.t.Helper()
	db := s.db(host)
	out := map[string]string{}
	for _, schema := range schemas {
		rows, err := db.Query("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?", schema)
		if errors.Is(err, mysql.ErrInvalidConn) {
			// A pooled connection the host's restart closed: the pool
			// drops it, the next query opens another.
			rows, err = db.Query("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?", schema)
		}
		if err != nil {
			s.t.Fatal(err)
		}
		var tables []string
		for rows.Next() {
			var n string
			rows.Scan(&n)
			tables = append(tables, n)
		}
		rows.Close()
		for _, tb := range tables {
			var name string
			var sum sql.NullString
			q := "CHECKSUM TABLE `" + schema + "`.`" + tb + "`"
			err := db.QueryRow(q).Scan(&name, &sum)
			if errors.Is(err, mysql.ErrInvalidConn) { // as above
				err = db.QueryRow(q).Scan(&name, &sum)
			}
			if err != nil {
				s.t.Fatal(err)
			}
			out[schema+"."+tb] = sum.String
		}
	}
	return out
}

// sameEverywhere waits until every host has the same checksums as the
// first, then returns them.
func (s *site) sameEverywhere(timeout time.Duration, hosts []string, schemas ...string) map[string]string {
	s.t.Helper()
	var want map[string]string
	testutil.Eventually(s.t, timeout, func() error {
		want = s.checksums(hosts[0], schemas...)
		for _, h := range hosts[1:] {
			got := s.checksums(h, schemas...)
			if d := diff(want, got); d != "" {
				return fmt.Errorf("%s differs from %s: %s", h, hosts[0], d)
			}
		}
		return nil
	})
	return want
}

func diff(a, b map[string]string) string {
	var out []string
	for k, v := range a {
		if b[k] != v {
			out = append(out, fmt.Sprintf("%s %s≠%s", k, v, b[k]))
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			out = append(out, k+" only on the second")
		}
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}
