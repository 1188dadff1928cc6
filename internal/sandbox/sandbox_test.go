package sandbox

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/carbidedb/carbide/internal/config"
	"github.com/carbidedb/carbide/internal/mysqld"
	"github.com/carbidedb/carbide/internal/testutil"
)

const smallINI = `[defaults]
install-directory=/opt/continuent
replication-user=tungsten
replication-password=secret
application-user=app_user
application-password=secret

[defaults.replicator]
home-directory=/opt/replicator
thl-port=2113
rmi-port=10002
executable-prefix=mm
replicator-rest-api-port=28097
property=replicator.prometheus.exporter.port=28091

[east]
topology=clustered
members=east1,east2
master=east1
connectors=east1,east2

[west]
topology=clustered
members=west1,west2
master=west1

[east_west]
topology=cluster-slave
master-dataservice=east
slave-dataservice=west

[west_east]
topology=cluster-slave
master-dataservice=west
slave-dataservice=east
`

// testNet picks a second octet unlikely to clash with a demo sandbox (0)
// or another test binary running at the same time.
func testNet() int { return 200 + os.Getpid()%50 }

func newConfig(t *testing.T) Config {
	t.Helper()
	dir := t.TempDir()
	ini := filepath.Join(dir, "topology.ini")
	if err := os.WriteFile(ini, []byte(smallINI), 0o644); err != nil {
		t.Fatal(err)
	}
	staging := filepath.Join(dir, "release")
	if err := os.MkdirAll(filepath.Join(staging, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	cfg := Config{Dir: filepath.Join(dir, "sb"), INI: ini, Staging: staging, Out: &out, Net: testNet(), StopTimeout: 20 * time.Second, Logger: testutil.Logger(t)}
	t.Cleanup(func() {
		// Leave nothing running whatever the test did.
		if _, err := os.Stat(filepath.Join(cfg.Dir, ININame)); err == nil {
			_ = Down(context.Background(), cfg)
		}
		if t.Failed() {
			t.Logf("sandbox output:\n%s", out.String())
		}
	})
	return cfg
}

func connect(t *testing.T, addr, user, password string) *sql.DB {
	t.Helper()
	mc := mysql.NewConfig()
	mc.User, mc.Passwd, mc.Net, mc.Addr = user, password, "tcp", addr+":13306"
	mc.Timeout = 3 * time.Second
	conn, err := mysql.NewConnector(mc)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(conn)
	t.Cleanup(func() { db.Close() })
	return db
}

func TestUpDownAndRestartAfterCrash(t *testing.T) {
	testutil.RequireDB(t)
	ctx := context.Background()
	cfg := newConfig(t)
	if err := Up(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	n := testNet()
	want := map[string]struct {
		addr      string
		serverID  int
		autoIncOf int
	}{
		"east1": {fmt.Sprintf("127.%d.1.1", n), 101, 1},
		"east2": {fmt.Sprintf("127.%d.1.2", n), 102, 1},
		"west1": {fmt.Sprintf("127.%d.2.1", n), 201, 2},
		"west2": {fmt.Sprintf("127.%d.2.2", n), 202, 2},
	}
	for host, w := range want {
		db := connect(t, w.addr, "tungsten", "secret")
		var format, image, metadata, hostname string
		var id, inc, off, logBin int
		err := db.QueryRow("SELECT @@binlog_format, @@binlog_row_image, @@binlog_row_metadata, @@server_id, @@auto_increment_increment, @@auto_increment_offset, @@log_bin, @@hostname").Scan(&format, &image, &metadata, &id, &inc, &off, &logBin, &hostname)
		if err != nil {
			t.Fatalf("%s: %v", host, err)
		}
		if os.Geteuid() == 0 && hostname != host {
			t.Errorf("%s: @@hostname = %s, want the sandbox host's name", host, hostname)
		}
		if format != "ROW" || image != "FULL" || metadata != "FULL" || id != w.serverID || inc != 4 || off != w.autoIncOf || logBin != 1 {
			t.Errorf("%s: format=%s image=%s metadata=%s server_id=%d increment=%d offset=%d log_bin=%d", host, format, image, metadata, id, inc, off, logBin)
		}
		if err := connect(t, w.addr, "app_user", "secret").Ping(); err != nil {
			t.Errorf("%s: application user: %v", host, err)
		}
	}
	// A second sandbox on the same addresses is refused before it creates
	// anything.
	other := newConfig(t)
	if err := Up(ctx, other); err == nil || !strings.Contains(err.Error(), "is already in use by another process") {
		t.Fatalf("second sandbox on the same addresses: %v", err)
	}
	if _, err := os.Stat(other.Dir); !os.IsNotExist(err) {
		t.Fatalf("a refused up created %s", other.Dir)
	}

	// The installed config carries the host map, and the installs are
	// re-rooted under DIR/<host>/.
	installed, err := config.Load(filepath.Join(cfg.Dir, "east1", "continuent", "conf", "tungsten.ini"))
	if err != nil {
		t.Fatal(err)
	}
	if installed.Hosts["west2"] != want["west2"].addr || installed.SandboxRoot != cfg.Dir {
		t.Fatalf("installed hosts = %v root = %s", installed.Hosts, installed.SandboxRoot)
	}
	for _, f := range []string{"east1/continuent/bin/trepctl", "east1/replicator/bin/mm_trepctl", "west2/replicator/share/env.sh"} {
		if _, err := os.Stat(filepath.Join(cfg.Dir, f)); err != nil {
			t.Errorf("missing %s", f)
		}
	}

	// Data written before a crash is there after up restarts the server.
	east2 := connect(t, want["east2"].addr, "tungsten", "secret")
	if _, err := east2.Exec("CREATE DATABASE app"); err != nil {
		t.Fatal(err)
	}
	if _, err := east2.Exec("CREATE TABLE app.t (id INT PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	if _, err := east2.Exec("INSERT INTO app.t VALUES (7)"); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(cfg.Dir, "east2", "mysql")
	pid, running := mysqld.ReadPID(dir)
	if !running {
		t.Fatal("east2's mariadbd is not running")
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, func() error {
		if _, running := mysqld.ReadPID(dir); running {
			return fmt.Errorf("pid %d still running", pid)
		}
		return nil
	})
	if err := Up(ctx, cfg); err != nil {
		t.Fatalf("second up: %v", err)
	}
	var id int
	if err := connect(t, want["east2"].addr, "tungsten", "secret").QueryRow("SELECT id FROM app.t").Scan(&id); err != nil || id != 7 {
		t.Fatalf("row after crash and up: id=%d err=%v", id, err)
	}
	line, err := EnvLine(cfg, "west1")
	if err != nil || line != "source "+cfg.Dir+"/west1/continuent/share/env.sh; source "+cfg.Dir+"/west1/replicator/share/env.sh" {
		t.Fatalf("EnvLine = %q, %v", line, err)
	}

	if err := Down(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	for host := range want {
		if pid, running := mysqld.ReadPID(filepath.Join(cfg.Dir, host, "mysql")); running {
			t.Errorf("%s: mariadbd pid %d still runs after down", host, pid)
		}
	}
	if err := Destroy(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(cfg.Dir); !os.IsNotExist(err) {
		t.Fatalf("destroy left %s", cfg.Dir)
	}
}

func TestBadInputChangesNothing(t *testing.T) {
	cfg := newConfig(t)
	cfg.INI = filepath.Join(t.TempDir(), "broken.ini")
	os.WriteFile(cfg.INI, []byte("[east]\ntopology=clustered\nmembers=e1\nmaster=e9\n"), 0o644)
	err := Up(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "master e9 is not a member of east") {
		t.Fatalf("err = %v", err)
	}
	if _, err := os.Stat(cfg.Dir); !os.IsNotExist(err) {
		t.Fatalf("a refused up created %s", cfg.Dir)
	}
	if err := Down(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "holds no sandbox") {
		t.Fatalf("down of nothing: %v", err)
	}
	if err := MySQL(context.Background(), cfg, "bounce", "east1"); err == nil || !strings.Contains(err.Error(), "takes start, stop, restart or status") {
		t.Fatalf("mysql bounce: %v", err)
	}
}

// TestAddresses: host H of site S is 127.N.S.H on loopback and
// 198.18.16N+S.H in a --netns sandbox.
func TestAddresses(t *testing.T) {
	data, err := os.ReadFile("../../examples/msaa.ini")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(config.Source{Name: "msaa.ini", Data: data})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		net   int
		netns bool
		want  map[string]string
	}{
		{0, false, map[string]string{"east1": "127.0.1.1", "east2": "127.0.1.2", "east3": "127.0.1.3", "west1": "127.0.2.1", "west2": "127.0.2.2", "west3": "127.0.2.3"}},
		{2, true, map[string]string{"east1": "198.18.33.1", "west3": "198.18.34.3"}},
	} {
		got, err := Addresses(cfg, tc.net, tc.netns)
		if err != nil {
			t.Fatal(err)
		}
		for h, a := range tc.want {
			if got[h] != a {
				t.Errorf("net %d, netns %v: %s = %s, want %s", tc.net, tc.netns, h, got[h], a)
			}
		}
	}
}

// TestNetNSFlags: the WAN flags need --netns, --netns a net from 0 to
// 15, and a shape that parses; each refusal is one sentence and nothing
// is made.
func TestNetNSFlags(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{WAN: config.WAN{Delay: "40ms"}}, "add --netns"},
		{Config{NetNS: true, Net: 16}, "from 0 to 15"},
		{Config{NetNS: true, WAN: config.WAN{Delay: "forty"}}, "not a duration"},
		{Config{NetNS: true, WAN: config.WAN{Delay: "10ms", Loss: "150%"}}, "not a percentage"},
	} {
		tc.cfg.Dir, tc.cfg.INI = filepath.Join(dir, "sb"), "../../examples/msaa.ini"
		err := Up(context.Background(), tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%+v: %v, want one sentence saying %q", tc.cfg, err, tc.want)
		}
		if _, err := os.Stat(tc.cfg.Dir); err == nil {
			t.Errorf("%+v made %s", tc.cfg, tc.cfg.Dir)
		}
	}
}

// TestNetNSINI: the ini a --netns sandbox writes names its namespaces and
// the WAN link's shape, and the config reads them back.
func TestNetNSINI(t *testing.T) {
	dir := t.TempDir()
	s := &Sandbox{cfg: Config{Dir: dir, INI: "../../examples/msaa.ini", Net: 3, NetNS: true, WAN: config.WAN{Delay: "40ms", Loss: "0.1%"}, Out: io.Discard}}
	if err := s.cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := s.writeINI(); err != nil {
		t.Fatal(err)
	}
	if err := s.load(); err != nil {
		t.Fatal(err)
	}
	c := s.config
	if c.SandboxNetNS != "carbide3" || c.NetNS("east2") != "carbide3-east2" || c.SandboxWAN != (config.WAN{Delay: "40ms", Loss: "0.1%"}) || c.Address("west1") != "198.18.50.1" {
		t.Errorf("netns %q, east2 in %q, WAN %+v, west1 at %s", c.SandboxNetNS, c.NetNS("east2"), c.SandboxWAN, c.Address("west1"))
	}
	b, err := s.bed()
	if err != nil {
		t.Fatal(err)
	}
	if len(b.sites) != 2 || b.sites[1].bridge != "cb3s2" || b.sites[1].root != "198.18.50.254/24" || b.sites[0].hosts[2].veth != "cb3s1h3" || b.shape.Delay != 40*time.Millisecond {
		t.Errorf("bed %+v", b)
	}
	if _, err := config.Parse(config.Source{Name: "x.ini", Data: []byte("[sandbox]\nroot=/x\nnetns=Bad/Name\n")}); err == nil || !strings.Contains(err.Error(), "[sandbox] netns must be") {
		t.Errorf("a bad netns name: %v", err)
	}
}
