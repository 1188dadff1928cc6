package testutil

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Servers and sandboxes left by a killed test process. A test binary
// stopped by a signal (its -timeout's panic, SIGKILL, a CI job cancelled)
// runs no t.Cleanup: its mariadbd processes and agents keep running, hold
// its addresses (the next run meets "address already in use") and take CPU
// from every test and benchmark after it. So each directory a test runs
// processes from is claimed (an owner file: the process and its start
// time), and the first claim of a test process stops the processes of
// every claimed directory whose process is gone, and removes it.

// ownerFile names the claiming process in a claimed directory.
const ownerFile = "carbide-test-owner"

var reapOnce sync.Once

// Claim marks dir (under the temporary folder: a t.TempDir() or an
// os.MkdirTemp("", …)) as this process's, after stopping what the test
// processes gone before it left running (once per process).
func Claim(t testing.TB, dir string) {
	t.Helper()
	if err := ClaimDir(dir); err != nil {
		t.Fatal(err)
	}
}

// ClaimDir is Claim outside a test (a TestMain's folders).
func ClaimDir(dir string) error {
	reapOnce.Do(func() {
		for _, line := range ReapOrphans(os.TempDir()) {
			fmt.Fprintln(os.Stderr, "testutil:", line)
		}
	})
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(processID(os.Getpid())), 0o644); err != nil {
		return fmt.Errorf("claim %s: %w", dir, err)
	}
	return nil
}

// processID names process pid as its owner file does, "PID STARTTIME",
// or "" when it is not running: a pid alone may name another process later.
func processID(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ""
	}
	// The command (field 2) is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return ""
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return ""
	}
	return strconv.Itoa(pid) + " " + f[19] // starttime, field 22
}

// ReapOrphans stops the processes run from each directory under root (one
// to three levels down) whose owner file names a process that is gone, and
// removes the directory's top folder under root. It returns a line per
// directory it reaped.
func ReapOrphans(root string) []string {
	var owners []string
	for _, pattern := range []string{filepath.Join(root, "*", ownerFile), filepath.Join(root, "*", "*", ownerFile), filepath.Join(root, "*", "*", "*", ownerFile)} {
		found, _ := filepath.Glob(pattern)
		owners = append(owners, found...)
	}
	var out []string
	for _, owner := range owners {
		b, err := os.ReadFile(owner)
		if err != nil {
			continue
		}
		id := strings.TrimSpace(string(b))
		pid, err := strconv.Atoi(strings.SplitN(id, " ", 2)[0])
		if err != nil || processID(pid) == id {
			continue // not ours to read, or its process still runs
		}
		dir := filepath.Dir(owner)
		n := stopProcessesOf(dir)
		rel, err := filepath.Rel(root, dir)
		if err != nil {
			continue
		}
		top := filepath.Join(root, strings.Split(rel, string(filepath.Separator))[0])
		os.RemoveAll(top)
		out = append(out, fmt.Sprintf("test process %d is gone and left %s: stopped the %d processes running from it, removed %s", pid, dir, n, top))
	}
	return out
}

// stopProcessesOf kills every process whose command line names a path in
// dir, and waits (up to 10 s) until they are gone; it returns how many.
func stopProcessesOf(dir string) int {
	marker := []byte(dir + string(filepath.Separator))
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	var pids []int
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil || !bytes.Contains(b, marker) {
			continue
		}
		pid, err := strconv.Atoi(filepath.Base(filepath.Dir(p)))
		if err != nil || pid == os.Getpid() {
			continue
		}
		if syscall.Kill(pid, syscall.SIGKILL) == nil {
			pids = append(pids, pid)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, pid := range pids {
		for time.Now().Before(deadline) && processID(pid) != "" && !zombie(pid) {
			time.Sleep(20 * time.Millisecond)
		}
	}
	return len(pids)
}

// zombie reports whether pid has exited and waits for its parent to reap
// it.
func zombie(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	i := bytes.LastIndexByte(b, ')')
	return i >= 0 && i+2 < len(b) && b[i+2] == 'Z'
}
