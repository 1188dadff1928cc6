package testutil

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// sleeper starts a process whose command line names a path in dir, as a
// mariadbd's --defaults-file does.
func sleeper(t *testing.T, dir string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("bash", "-c", `exec -a "$0" sleep 300`, filepath.Join(dir, "my.cnf"))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd
}

func TestReapOrphans(t *testing.T) {
	root := t.TempDir()
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	orphan := filepath.Join(root, "TestSomething123", "001")
	alive := filepath.Join(root, "carbide-mysqld-456")
	unclaimed := filepath.Join(root, "TestOther789", "001")
	for _, d := range []string{orphan, alive, unclaimed} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// The orphan's owner is gone; the other's is this process.
	if err := os.WriteFile(filepath.Join(orphan, ownerFile), []byte(strconv.Itoa(gone.Process.Pid)+" 1"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(alive, ownerFile), []byte(processID(os.Getpid())), 0o644); err != nil {
		t.Fatal(err)
	}
	left, kept, free := sleeper(t, orphan), sleeper(t, alive), sleeper(t, unclaimed)
	exited := make(chan error, 1)
	go func() { exited <- left.Wait() }()

	lines := ReapOrphans(root)
	if len(lines) != 1 {
		t.Fatalf("reaped %q, want the orphan's line only", lines)
	}
	t.Log(lines[0])
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		t.Fatal("the orphan's process still runs")
	}
	if _, err := os.Stat(filepath.Join(root, "TestSomething123")); !os.IsNotExist(err) {
		t.Errorf("the orphan's folder is still there (%v)", err)
	}
	for _, c := range []*exec.Cmd{kept, free} {
		if processID(c.Process.Pid) == "" {
			t.Errorf("process %v was stopped: its folder is not an orphan's", c.Args)
		}
	}
	for _, d := range []string{alive, unclaimed} {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("%s: %v", d, err)
		}
	}
}

// A process's id names it with its start time: a later process with the
// same pid is another.
func TestProcessID(t *testing.T) {
	id := processID(os.Getpid())
	if id == "" || processID(os.Getpid()) != id {
		t.Fatalf("processID(self) = %q, not stable", id)
	}
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	if got := processID(gone.Process.Pid); got != "" {
		t.Errorf("processID of an exited process = %q, want empty", got)
	}
}
