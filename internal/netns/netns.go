// Package netns runs code and processes inside named network namespaces,
// the ones `ip netns add NAME` binds under /run/netns. A network
// namespace belongs to an OS thread, not to a process, so each entry
// happens on a thread of its own that is thrown away afterwards: no other
// goroutine ever runs in the namespace by accident.
//
// It imports only the standard library and golang.org/x/sys/unix.
package netns

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// Dir is where iproute2 binds named namespaces.
const Dir = "/run/netns"

// Path is the file that names the namespace.
func Path(name string) string { return filepath.Join(Dir, name) }

// Exists reports whether the named namespace exists.
func Exists(name string) bool {
	_, err := os.Stat(Path(name))
	return err == nil
}

// Do runs fn on an OS thread that has joined the named namespace:
// sockets fn opens and processes it starts belong to the namespace. The
// thread returns to its own namespace afterwards (or, if it cannot, is
// never used again).
func Do(name string, fn func() error) error {
	f, err := os.Open(Path(name))
	if err != nil {
		return fmt.Errorf("network namespace %s: %w", name, err)
	}
	defer f.Close()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		home, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer home.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("join network namespace %s: %w", name, err)
			return
		}
		errc <- fn()
		// Back home, the thread may run other goroutines again; left
		// locked, the runtime ends it with this goroutine.
		if unix.Setns(int(home.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
	}()
	return <-errc
}

// Start starts cmd inside the named namespace (the child is forked from
// the thread that joined it).
func Start(name string, cmd *exec.Cmd) error {
	return Do(name, cmd.Start)
}

// Inside reports whether the calling thread is in the named namespace.
func Inside(name string) (bool, error) {
	var want, have unix.Stat_t
	if err := unix.Stat(Path(name), &want); err != nil {
		return false, fmt.Errorf("network namespace %s: %w", name, err)
	}
	if err := unix.Stat("/proc/thread-self/ns/net", &have); err != nil {
		return false, err
	}
	return want.Dev == have.Dev && want.Ino == have.Ino, nil
}

// Enter makes the running program run inside the named namespace: unless
// it already does, it joins the namespace and executes itself again, with
// the same arguments and environment (the process keeps its pid). It
// returns only on failure.
func Enter(name string) error {
	in, err := Inside(name)
	if err != nil || in {
		return err
	}
	f, err := os.Open(Path(name))
	if err != nil {
		return fmt.Errorf("network namespace %s: %w", name, err)
	}
	exe, err := os.Executable()
	if err != nil {
		f.Close()
		return err
	}
	runtime.LockOSThread()
	if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
		f.Close()
		runtime.UnlockOSThread()
		return fmt.Errorf("join network namespace %s: %w", name, err)
	}
	f.Close()
	// execve keeps the calling thread's namespaces for the new image.
	// On failure this thread stays locked in the namespace; the caller
	// is expected to exit.
	err = syscall.Exec(exe, os.Args, os.Environ())
	return fmt.Errorf("run %s again inside network namespace %s: %w", exe, name, err)
}
