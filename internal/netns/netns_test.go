package netns_test

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"github.com/carbidedb/carbide/internal/netns"
	"github.com/carbidedb/carbide/internal/testutil"
)

// scratch makes a namespace for one test, removed at its end.
func scratch(t *testing.T) string {
	t.Helper()
	testutil.Require(t, os.Geteuid() == 0, "network namespaces need root")
	_, err := exec.LookPath("ip")
	testutil.Require(t, err == nil, "network namespaces need iproute2's ip (make deps installs it)")
	name := fmt.Sprintf("carbide-test-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	return name
}

// TestDo: code run by Do sees the namespace's interfaces (a new one has
// only lo), and the caller's thread is not moved.
func TestDo(t *testing.T) {
	name := scratch(t)
	var names []string
	err := netns.Do(name, func() error {
		ifs, err := net.Interfaces()
		for _, i := range ifs {
			names = append(names, i.Name)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(names, ",") != "lo" {
		t.Errorf("interfaces inside: %v, want lo alone", names)
	}
	if in, err := netns.Inside(name); err != nil || in {
		t.Errorf("the caller is inside the namespace after Do (%v, %v)", in, err)
	}
	if err := netns.Do("carbide-no-such-namespace", func() error { return nil }); err == nil {
		t.Error("Do of a missing namespace succeeded")
	}
}

// TestStart: a process Start starts runs in the namespace; the caller
// does not.
func TestStart(t *testing.T) {
	name := scratch(t)
	var ns syscall.Stat_t
	if err := syscall.Stat(netns.Path(name), &ns); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("stat", "-L", "-c", "%i", "/proc/self/ns/net")
	var out strings.Builder
	cmd.Stdout = &out
	if err := netns.Start(name, cmd); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(out.String()); got != fmt.Sprint(ns.Ino) {
		t.Errorf("the child's namespace is inode %s, the namespace's %d", got, ns.Ino)
	}
	for range 20 { // whichever thread runs this goroutine now
		if in, err := netns.Inside(name); err != nil || in {
			t.Fatalf("a goroutine runs inside the namespace after Start (%v, %v)", in, err)
		}
		runtime.Gosched()
	}
}

// TestEnter: a program that calls Enter runs again inside the namespace.
func TestEnter(t *testing.T) {
	if name := os.Getenv("CARBIDE_NETNS_ENTER"); name != "" {
		if err := netns.Enter(name); err != nil {
			fmt.Println("enter:", err)
			os.Exit(1)
		}
		ifs, _ := net.Interfaces()
		fmt.Printf("interfaces %d, args %s\n", len(ifs), strings.Join(os.Args[1:], " "))
		os.Exit(0)
	}
	name := scratch(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestEnter$")
	cmd.Env = append(os.Environ(), "CARBIDE_NETNS_ENTER="+name)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "interfaces 1, args -test.run=^TestEnter$") {
		t.Errorf("the re-executed program printed %q (%v), want one interface and its arguments", out, err)
	}
}
