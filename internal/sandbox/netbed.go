package sandbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/carbidedb/carbide/internal/config"
	"github.com/carbidedb/carbide/internal/netns"
	"github.com/carbidedb/carbide/internal/proc"
	"github.com/carbidedb/carbide/internal/wanlink"
)

// A --netns sandbox puts each host in a network namespace of its own,
// PREFIX-HOST, with one interface, eth0, on its site's bridge. The sites'
// bridges are joined by a WAN link (internal/wanlink) that a process of
// the sandbox runs. Addresses come from the benchmarking range
// 198.18.0.0/15, never routed off this machine: host H of site S of
// sandbox net N is 198.18.(16N+S).H/20, and this machine's namespace has
// 198.18.(16N+S).254/24 on each site's bridge, so that tools run here
// reach every host directly and no packet is forwarded between networks.

// netnsSites is the room a --netns sandbox has for sites (16 nets of 15).
const netnsSites = 15

// netnsPrefix is the namespaces' prefix of sandbox net n.
func netnsPrefix(n int) string { return "carbide" + strconv.Itoa(n) }

// netnsAddr is host hi (1-based) of site si (1-based) of net n.
func netnsAddr(n, si, hi int) string { return fmt.Sprintf("198.18.%d.%d", 16*n+si, hi) }

type bedHost struct {
	name, ns, veth, addr string
}

type bedSite struct {
	name, bridge, tap, root string
	hosts                   []bedHost
}

// bed is a --netns sandbox's network.
type bed struct {
	net   int
	sites []bedSite
	shape wanlink.Shape
}

// bed describes the network of the sandbox's ini.
func (s *Sandbox) bed() (*bed, error) {
	c := s.config
	shape, err := wanlink.ParseShape(c.SandboxWAN.Delay, c.SandboxWAN.Jitter, c.SandboxWAN.Loss)
	if err != nil {
		return nil, err
	}
	n, err := strconv.Atoi(strings.TrimPrefix(c.SandboxNetNS, "carbide"))
	if err != nil || netnsPrefix(n) != c.SandboxNetNS {
		return nil, fmt.Errorf("%s: [sandbox] netns=%s is not one the sandbox writes (carbideN)", s.iniPath(), c.SandboxNetNS)
	}
	b := &bed{net: n, shape: shape}
	for si, site := range c.Clustered() {
		bs := bedSite{
			name:   site.Name,
			bridge: fmt.Sprintf("cb%ds%d", n, si+1),
			tap:    fmt.Sprintf("cb%ds%dwan", n, si+1),
			root:   netnsAddr(n, si+1, 254) + "/24",
		}
		for hi, h := range siteHosts(site) {
			bs.hosts = append(bs.hosts, bedHost{name: h, ns: c.NetNS(h), veth: fmt.Sprintf("cb%ds%dh%d", n, si+1, hi+1), addr: c.Address(h) + "/20"})
		}
		b.sites = append(b.sites, bs)
	}
	return b, nil
}

// siteHosts are a site's hosts in address order: members, witnesses,
// then connector-only hosts.
func siteHosts(site *config.Service) []string {
	hosts := append(append([]string{}, site.Members...), site.Witnesses...)
	for _, c := range site.Connectors {
		if !contains(hosts, c) {
			hosts = append(hosts, c)
		}
	}
	return hosts
}

// checkNetNS says in one sentence why this machine cannot run a --netns
// sandbox, or nil.
func checkNetNS() error {
	if os.Geteuid() != 0 {
		return errors.New("sandbox: --netns makes network namespaces, bridges and a TAP device, which needs root; run it as root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return errors.New("sandbox: --netns needs iproute2's ip command; install iproute2 (make deps does)")
	}
	return nil
}

// ip runs one iproute2 command.
func ip(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func linkExists(name string) bool {
	return exec.Command("ip", "link", "show", "dev", name).Run() == nil
}

// inUse fails when a new sandbox's namespaces or bridges exist already.
func (b *bed) inUse() error {
	for _, st := range b.sites {
		if linkExists(st.bridge) {
			return fmt.Errorf("bridge %s of --net %d exists already (another sandbox? stop it, or give this one --net N)", st.bridge, b.net)
		}
		for _, h := range st.hosts {
			if netns.Exists(h.ns) {
				return fmt.Errorf("network namespace %s exists already (another sandbox? stop it, or give this one --net N)", h.ns)
			}
		}
	}
	return nil
}

// up makes what is missing of the network: bridges, namespaces and their
// links, and the WAN link's process.
func (s *Sandbox) bedUp(ctx context.Context, b *bed) error {
	made := 0
	for _, st := range b.sites {
		if !linkExists(st.bridge) {
			steps := [][]string{
				{"link", "add", st.bridge, "type", "bridge"},
				{"addr", "add", st.root, "dev", st.bridge},
				{"link", "set", st.bridge, "up"},
			}
			for _, a := range steps {
				if err := ip(a...); err != nil {
					return err
				}
			}
			// The bridge does not pass its frames to this machine's
			// firewall (a FORWARD policy of DROP would cut the sites);
			// an iproute2 or kernel without the setting has no such call.
			_ = ip("link", "set", st.bridge, "type", "bridge", "nf_call_iptables", "0", "nf_call_ip6tables", "0", "nf_call_arptables", "0")
			made++
		}
		for _, h := range st.hosts {
			if netns.Exists(h.ns) && linkExists(h.veth) {
				continue
			}
			if netns.Exists(h.ns) {
				ip("netns", "del", h.ns)
			}
			steps := [][]string{
				{"netns", "add", h.ns},
				{"link", "add", h.veth, "type", "veth", "peer", "name", h.veth + "p", "netns", h.ns},
				{"-n", h.ns, "link", "set", h.veth + "p", "name", "eth0"},
				{"-n", h.ns, "addr", "add", h.addr, "dev", "eth0"},
				{"-n", h.ns, "link", "set", "eth0", "up"},
				{"-n", h.ns, "link", "set", "lo", "up"},
				{"link", "set", h.veth, "master", st.bridge, "up"},
			}
			for _, a := range steps {
				if err := ip(a...); err != nil {
					return fmt.Errorf("%s: %w", h.name, err)
				}
			}
			made++
		}
	}
	if made > 0 {
		s.say("network: %d namespaces and bridges made (host H of site S is 198.18.%d+S.H; this machine is .254 on each site's bridge %s)", made, 16*b.net, b.sites[0].bridge)
	}
	return s.wanUp(ctx, b)
}

// wanDir holds the WAN link process's pid file and log.
func (s *Sandbox) wanDir() string { return filepath.Join(s.cfg.Dir, ".wan") }

func (s *Sandbox) wanPIDFile() string { return filepath.Join(s.wanDir(), "wanlink.pid") }

// wanPID is the running WAN link process, or 0.
func (s *Sandbox) wanPID() int {
	data, err := os.ReadFile(s.wanPIDFile())
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || !proc.Alive(pid) {
		return 0
	}
	// A pid file that outlived its process (a reboot) may name another
	// process now: only ours counts.
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !strings.Contains(string(cmdline), "wanlink\x00--dir\x00"+s.cfg.Dir+"\x00") {
		return 0
	}
	return pid
}

// wanUp starts the WAN link process unless it runs with every site's
// port; it waits until the ports are on their bridges.
func (s *Sandbox) wanUp(ctx context.Context, b *bed) error {
	if len(b.sites) < 2 {
		return nil
	}
	if pid := s.wanPID(); pid != 0 {
		all := true
		for _, st := range b.sites {
			all = all && linkExists(st.tap)
		}
		if all {
			return nil
		}
		s.wanStop() // a site was added: start it again with every port
	}
	if err := os.MkdirAll(s.wanDir(), 0o755); err != nil {
		return err
	}
	logPath := filepath.Join(s.wanDir(), "wanlink.log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	os.Remove(s.wanPIDFile())
	cmd := exec.Command(filepath.Join(s.cfg.Staging, "bin", "sandbox"), "wanlink", "--dir", s.cfg.Dir)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start the WAN link: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	for deadline := time.Now().Add(10 * time.Second); s.wanPID() == 0; time.Sleep(20 * time.Millisecond) {
		select {
		case err := <-exited:
			data, _ := os.ReadFile(logPath)
			return fmt.Errorf("the WAN link exited at start (%v): %s", err, lastLine(string(data)))
		default:
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("the WAN link did not come up within 10s; see %s", logPath)
		}
	}
	s.say("network: sites joined by the WAN link (%s), pid %d", b.shape, cmd.Process.Pid)
	return nil
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// wanStop stops the WAN link process; its ports go with it.
func (s *Sandbox) wanStop() {
	pid := s.wanPID()
	if pid == 0 {
		return
	}
	syscall.Kill(pid, syscall.SIGTERM)
	for deadline := time.Now().Add(5 * time.Second); proc.Alive(pid); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			break
		}
	}
	os.Remove(s.wanPIDFile())
}

// bedDown removes every namespace, link and bridge the sandbox made.
func (s *Sandbox) bedDown(b *bed) error {
	s.wanStop()
	var errs []error
	removed := 0
	for _, st := range b.sites {
		for _, h := range st.hosts {
			if linkExists(h.veth) {
				if err := ip("link", "del", h.veth); err != nil {
					errs = append(errs, err)
				}
			}
			if netns.Exists(h.ns) {
				if err := ip("netns", "del", h.ns); err != nil {
					errs = append(errs, err)
				}
				removed++
			}
		}
		if linkExists(st.bridge) {
			if err := ip("link", "del", st.bridge); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if removed > 0 {
		s.say("network: %d namespaces, their links and the sites' bridges removed", removed)
	}
	return errors.Join(errs...)
}

// RunWANLink is the WAN link process of a --netns sandbox (sandbox
// wanlink, started by up): it makes one TAP port per site, puts each on
// its site's bridge, writes its pid file and carries frames until SIGTERM.
func RunWANLink(ctx context.Context, cfg Config) error {
	s, err := openUnlocked(cfg)
	if err != nil {
		return err
	}
	b, err := s.bed()
	if err != nil {
		return err
	}
	var ports []wanlink.Port
	for _, st := range b.sites {
		f, err := wanlink.OpenTap(st.tap)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := ip("link", "set", st.tap, "master", st.bridge, "up"); err != nil {
			return err
		}
		ports = append(ports, f)
	}
	l := wanlink.New(b.shape, ports...)
	if err := os.WriteFile(s.wanPIDFile(), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		return err
	}
	fmt.Printf("%s wanlink: %d sites joined, %s\n", time.Now().Format(time.RFC3339), len(ports), b.shape)
	stop := make(chan struct{})
	go func() {
		t := time.NewTicker(time.Minute)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				fmt.Printf("%s wanlink: %+v\n", time.Now().Format(time.RFC3339), l.Counters())
			}
		}
	}()
	err = l.Run(ctx)
	close(stop)
	fmt.Printf("%s wanlink: stopped: %+v\n", time.Now().Format(time.RFC3339), l.Counters())
	return err
}
