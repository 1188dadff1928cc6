package bench

import (
	"bufio"
	"context"
	"database/sql"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/carbidedb/carbide/internal/config"
	"github.com/carbidedb/carbide/internal/sandbox"
	"github.com/carbidedb/carbide/internal/testutil"
)

// crossSite is the running sandbox.
type crossSite struct {
	cfg   sandbox.Config
	out   *strings.Builder
	dbs   map[string]*sql.DB
	hosts map[string]string // host → address, from the sandbox's ini
}

// startCrossSite builds the programs into a release directory and brings
// the sample topology up, on loopback or with wan on the WAN bed; a
// cleanup takes it down.
func startCrossSite(b *testing.B, wan *config.WAN) *crossSite {
	b.Helper()
	ini, err := os.ReadFile("../../examples/msaa.ini")
	if err != nil {
		b.Fatal(err)
	}
	x := upSandboxOn(b, "examples/msaa.ini", ini, crossNet, wan)
	for _, h := range crossHosts {
		x.dbs[h] = x.open(b, h)
	}
	return x
}

// logsEnv names a directory the agents' logs are copied to when a
// sandbox goes down (to see what a benchmark's run did).
const logsEnv = "CARBIDE_BENCH_LOGS_DIR"

// upSandbox builds the programs into a release directory and brings ini
// up in a sandbox on 127.<net>.x.y; a cleanup closes the pools in x.dbs
// and takes the sandbox down, logging the agents' logs when b failed.
func upSandbox(b *testing.B, name string, ini []byte, net int) *crossSite {
	b.Helper()
	return upSandboxOn(b, name, ini, net, nil)
}

// upSandboxOn is upSandbox, on the WAN bed (sandbox up --netns, a free
// net of the bed's 0 to 15) when wan is not nil.
func upSandboxOn(b *testing.B, name string, ini []byte, net int, wan *config.WAN) *crossSite {
	b.Helper()
	if wan != nil {
		net = wanNet(b)
	}
	dir := b.TempDir()
	testutil.Claim(b, dir)
	release := filepath.Join(dir, "release")
	cmd := exec.Command("go", "build", "-o", filepath.Join(release, "bin")+"/", "github.com/carbidedb/carbide/cmd/...")
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("build the programs: %v\n%s", err, out)
	}
	iniPath := filepath.Join(dir, "topology.ini")
	if err := os.WriteFile(iniPath, ini, 0o644); err != nil {
		b.Fatal(err)
	}
	out := &strings.Builder{}
	x := &crossSite{
		cfg: sandbox.Config{Dir: filepath.Join(dir, "sb"), INI: iniPath, Staging: release, Out: out, Net: net, StopTimeout: 30 * time.Second},
		out: out,
		dbs: map[string]*sql.DB{},
	}
	if wan != nil {
		x.cfg.NetNS, x.cfg.WAN = true, *wan
	}
	b.Cleanup(func() {
		for _, db := range x.dbs {
			db.Close()
		}
		if _, err := os.Stat(filepath.Join(x.cfg.Dir, sandbox.ININame)); err == nil {
			if err := sandbox.Down(context.Background(), x.cfg); err != nil {
				b.Errorf("sandbox down: %v", err)
			}
		}
		if keep := os.Getenv(logsEnv); keep != "" {
			logs, _ := filepath.Glob(filepath.Join(x.cfg.Dir, "*", "*", "var", "log", "*.log"))
			for _, l := range logs {
				rel, _ := filepath.Rel(x.cfg.Dir, l)
				if data, err := os.ReadFile(l); err == nil {
					_ = os.WriteFile(filepath.Join(keep, strings.ReplaceAll(rel, string(filepath.Separator), "_")), data, 0o644)
				}
			}
		}
		if b.Failed() {
			b.Logf("sandbox output:\n%s", out.String())
			logs, _ := filepath.Glob(filepath.Join(x.cfg.Dir, "*", "*", "var", "log", "*.log"))
			for _, l := range logs {
				data, _ := os.ReadFile(l)
				lines := strings.Split(strings.TrimSpace(string(data)), "\n")
				if len(lines) > 60 {
					lines = lines[len(lines)-60:]
				}
				b.Logf("--- %s\n%s", l, strings.Join(lines, "\n"))
			}
		}
	})
	begin := time.Now()
	if err := sandbox.Up(context.Background(), x.cfg); err != nil {
		b.Fatalf("sandbox up: %v\n%s", err, out.String())
	}
	b.Logf("sandbox of %s up in %s", name, time.Since(begin).Round(time.Millisecond))
	c, err := config.Load(filepath.Join(x.cfg.Dir, sandbox.ININame))
	if err != nil {
		b.Fatal(err)
	}
	x.hosts = c.Hosts
	return x
}

// addr is host's database address: its sandbox address, port 13306.
func (x *crossSite) addr(host string) string {
	return x.hosts[host] + ":13306"
}

func (x *crossSite) open(b *testing.B, host string) *sql.DB {
	b.Helper()
	mc := mysql.NewConfig()
	mc.User, mc.Passwd, mc.Net, mc.Addr = dbUser, dbPassword, "tcp", x.addr(host)
	mc.Timeout = 5 * time.Second
	conn, err := mysql.NewConnector(mc)
	if err != nil {
		b.Fatal(err)
	}
	db := sql.OpenDB(conn)
	db.SetMaxIdleConns(8)
	return db
}

func (x *crossSite) exec(b *testing.B, host string, stmts ...string) {
	b.Helper()
	for _, q := range stmts {
		if _, err := x.dbs[host].Exec(q); err != nil {
			b.Fatalf("%s: %s: %v", host, q, err)
		}
	}
}

// tool runs a program of host's install (continuent: the cluster
// replicator; replicator: the cross-site one) through its wrapper.
func (x *crossSite) tool(host, install, program string, args ...string) (string, error) {
	cmd := exec.Command(filepath.Join(x.cfg.Dir, host, install, "bin", program), args...)
	cmd.Env = append(os.Environ(), "CARBIDE_HOME=")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// field reads one field of a trepctl status output.
func field(out, name string) string {
	for _, l := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == name {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// seqno reads a seqno field of a status (-2 when unreadable).
func (x *crossSite) seqno(host, install, program, name string, args ...string) int64 {
	out, err := x.tool(host, install, program, append(args, "status")...)
	if err != nil {
		return -2
	}
	n, err := strconv.ParseInt(field(out, name), 10, 64)
	if err != nil {
		return -2
	}
	return n
}

// causalTotals are the replicators' causal-order holds, summed.
type causalTotals struct{ holds, held float64 }

// causal sums carbide_replicator_causal_holds_total and
// carbide_replicator_causal_held_seconds_total over the metrics of every
// replicator of the sandbox (the cluster install's on :8091, the
// cross-site install's on :28091, as examples/msaa.ini sets them).
func (x *crossSite) causal(b *testing.B) causalTotals {
	b.Helper()
	var t causalTotals
	client := http.Client{Timeout: 5 * time.Second}
	for _, h := range crossHosts {
		ip, _, _ := strings.Cut(x.addr(h), ":")
		for _, port := range []string{"8091", "28091"} {
			resp, err := client.Get("http://" + ip + ":" + port + "/metrics")
			if err != nil {
				b.Fatalf("metrics of %s:%s: %v", h, port, err)
			}
			sc := bufio.NewScanner(resp.Body)
			for sc.Scan() {
				name, val, ok := strings.Cut(sc.Text(), " ")
				if !ok {
					continue
				}
				v, err := strconv.ParseFloat(val, 64)
				switch {
				case err != nil:
				case strings.HasPrefix(name, "carbide_replicator_causal_holds_total{"):
					t.holds += v
				case strings.HasPrefix(name, "carbide_replicator_causal_held_seconds_total{"):
					t.held += v
				}
			}
			resp.Body.Close()
		}
	}
	return t
}
