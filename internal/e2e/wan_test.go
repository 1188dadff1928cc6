package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/carbidedb/carbide/internal/config"
	"github.com/carbidedb/carbide/internal/mysqld"
	"github.com/carbidedb/carbide/internal/netns"
	"github.com/carbidedb/carbide/internal/sandbox"
	"github.com/carbidedb/carbide/internal/testutil"
)

// netState is what `ip netns` and `ip link` list on this machine.
func netState(t *testing.T) string {
	t.Helper()
	var parts []string
	for _, args := range [][]string{{"netns", "list"}, {"-o", "link", "show"}} {
		out, err := exec.Command("ip", args...).Output()
		if err != nil {
			t.Fatalf("ip %s: %v", strings.Join(args, " "), err)
		}
		var names []string
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			f := strings.Fields(l)
			if len(f) == 0 {
				continue
			}
			if args[0] == "netns" {
				names = append(names, f[0])
			} else if len(f) > 1 {
				names = append(names, strings.TrimSuffix(strings.SplitN(f[1], "@", 2)[0], ":"))
			}
		}
		sort.Strings(names)
		parts = append(parts, strings.Join(names, " "))
	}
	return strings.Join(parts, "\n")
}

// sameNetNS reports whether process pid runs in the named namespace.
func sameNetNS(pid int, name string) bool {
	var a, b syscall.Stat_t
	return syscall.Stat(fmt.Sprintf("/proc/%d/ns/net", pid), &a) == nil && syscall.Stat(netns.Path(name), &b) == nil && a.Ino == b.Ino && a.Dev == b.Dev
}

// dialFrom times a TCP connect from host's namespace to addr.
func (s *site) dialFrom(host, addr string, timeout time.Duration) (time.Duration, error) {
	var took time.Duration
	err := netns.Do(s.nsOf(host), func() error {
		begin := time.Now()
		c, err := net.DialTimeout("tcp", addr, timeout)
		took = time.Since(begin)
		if err == nil {
			c.Close()
		}
		return err
	})
	return took, err
}

// TestWANBed brings the guide's topology up on the WAN bed (sandbox up
// --netns, 40 ms between the sites): each host's database and agents run
// in its own namespace, a crossing between sites takes the delay, the
// sites write at once and every host ends equal with every replicator
// ONLINE (TestActiveActive's checks), a partition made inside the
// namespaces cuts what it names and nothing else, and sandbox down leaves
// `ip netns` and `ip link` as they were.
func TestWANBed(t *testing.T) {
	before := netState(t)
	s := startSandboxWAN(t, activeActiveINI(t), config.WAN{Delay: "40ms"})
	var status strings.Builder
	cfg := s.cfg
	cfg.Out = &status
	if err := sandbox.Status(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(status.String(), s.addr("west3")) || !strings.Contains(status.String(), "WAN link (delay 40ms") {
		t.Errorf("sandbox status does not show the hosts' addresses and the WAN link:\n%s", status.String())
	}

	// Every process of a host runs in the host's namespace.
	for _, h := range allHosts {
		pids := map[string]int{}
		if pid, ok := mysqld.ReadPID(filepath.Join(s.cfg.Dir, h, "mysql")); ok {
			pids["mariadbd"] = pid
		}
		for _, f := range []string{"continuent/var/run/replicator.pid", "continuent/var/run/manager.pid", "continuent/var/run/connector.pid", "replicator/var/run/replicator.pid"} {
			b, _ := os.ReadFile(filepath.Join(s.cfg.Dir, h, f))
			var pid int
			fmt.Sscanf(string(b), "%d", &pid)
			pids[f] = pid
		}
		for what, pid := range pids {
			if pid == 0 || !sameNetNS(pid, s.nsOf(h)) {
				t.Errorf("%s: %s (pid %d) does not run in namespace %s", h, what, pid, s.nsOf(h))
			}
		}
	}

	// A crossing between sites takes the delay; inside a site it does not.
	across, err := s.dialFrom("east1", s.addr("west1")+":13306", 5*time.Second)
	if err != nil || across < 75*time.Millisecond {
		t.Errorf("a connect from east1 to west1 took %s (%v), want a round trip of about 80 ms", across, err)
	}
	within, err := s.dialFrom("east1", s.addr("east2")+":13306", 5*time.Second)
	if err != nil || within > 40*time.Millisecond {
		t.Errorf("a connect from east1 to east2 took %s (%v), want well under the WAN round trip", within, err)
	}
	t.Logf("connect east1→west1 %s, east1→east2 %s", across, within)

	// Both sites write at once: every write reaches every host once, each
	// site's writes enter only its own THL, every replicator ONLINE.
	activeActive(t, s)

	// A partition inside the namespaces: west1 no longer reaches east1,
	// this machine still reaches both; healed, it reaches it again.
	heal := s.isolate("west1", "east1")
	if _, err := s.dialFrom("west1", s.addr("east1")+":13306", 500*time.Millisecond); err == nil {
		t.Error("west1 reached east1 through the partition")
	}
	for _, h := range []string{"east1", "west1"} {
		if c, err := net.DialTimeout("tcp", s.addr(h)+":13306", 2*time.Second); err != nil {
			t.Errorf("this machine no longer reaches %s: %v", h, err)
		} else {
			c.Close()
		}
	}
	heal()
	if _, err := s.dialFrom("west1", s.addr("east1")+":13306", 5*time.Second); err != nil {
		t.Errorf("west1 does not reach east1 after the partition healed: %v", err)
	}
	for _, h := range allHosts {
		for _, inst := range []string{"continuent", "replicator"} {
			out, err := s.tool(h, inst, map[string]string{"continuent": "trepctl", "replicator": "mm_trepctl"}[inst], "services")
			if err != nil || strings.Contains(out, "OFFLINE") {
				t.Errorf("%s %s: %v\n%s", h, inst, err, out)
			}
		}
	}

	s.down()
	if after := netState(t); after != before {
		t.Errorf("sandbox down left the network changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// TestWANBedNeedsRoot: without root, sandbox up --netns says so in one
// sentence and makes nothing.
func TestWANBedNeedsRoot(t *testing.T) {
	testutil.Require(t, os.Geteuid() == 0, "the test runs the sandbox as another user, which needs root")
	// The release and the ini where that user can read them.
	dir := t.TempDir()
	os.Chmod(filepath.Dir(dir), 0o755) // t.TempDir makes both 0700
	os.Chmod(dir, 0o777)
	os.MkdirAll(filepath.Join(dir, "bin"), 0o755)
	for _, f := range [][2]string{{filepath.Join(release, "bin", "sandbox"), filepath.Join(dir, "bin", "sandbox")}, {"../../examples/msaa.ini", filepath.Join(dir, "msaa.ini")}} {
		b, err := os.ReadFile(f[0])
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f[1], b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	before := netState(t)
	cmd := exec.Command(filepath.Join(dir, "bin", "sandbox"), "up", "--netns", "--wan-delay", "40ms", "--dir", filepath.Join(dir, "sb"), "--ini", filepath.Join(dir, "msaa.ini"))
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if err == nil || len(lines) != 1 || !strings.Contains(lines[0], "needs root; run it as root") {
		t.Errorf("sandbox up --netns as nobody: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "sb")); err == nil {
		t.Error("sandbox up --netns as nobody made its directory")
	}
	if after := netState(t); after != before {
		t.Errorf("sandbox up --netns as nobody changed the network:\n%s\n%s", before, after)
	}
}
