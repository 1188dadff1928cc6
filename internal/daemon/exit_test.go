package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/carbidedb/carbide/internal/install"
)

// runnerFunc is a Runner.
type runnerFunc func(ctx context.Context) error

func (f runnerFunc) Run(ctx context.Context) error { return f(ctx) }

// exitChildEnv makes the test binary a `run` of a fake agent: "serve"
// serves until stopped, "crash" fails after a moment.
const exitChildEnv = "CARBIDE_DAEMON_EXIT_CHILD"

// TestExitStatusForUnits: what a unit's Restart=on-failure sees of an
// agent's `run`. systemctl stop sends SIGTERM: the agent ends with status
// 0, a clean stop systemd does not restart. An agent whose run fails
// exits 1, and one killed by SIGKILL dies of the signal: systemd restarts
// both (after RestartSec=2).
func TestExitStatusForUnits(t *testing.T) {
	if mode := os.Getenv(exitChildEnv); mode != "" {
		a := Agent{Program: "fake", Spec: func(home string, out io.Writer) Spec {
			return Spec{Name: "fake", PIDFile: filepath.Join(home, "fake.pid"), LogFile: filepath.Join(home, "fake.log"), Out: out}
		}, New: func(string, *slog.Logger) (Runner, error) {
			return runnerFunc(func(ctx context.Context) error {
				if mode == "crash" {
					time.Sleep(300 * time.Millisecond)
					return errors.New("lost its database")
				}
				<-ctx.Done()
				return nil
			}), nil
		}}
		os.Exit(Main(context.Background(), a, []string{"run"}, os.Stdout, os.Stderr))
	}
	start := func(mode string) (*exec.Cmd, string) {
		home := t.TempDir()
		cmd := exec.Command(os.Args[0], "-test.run=^TestExitStatusForUnits$")
		cmd.Env = append(os.Environ(), exitChildEnv+"="+mode, install.EnvHome+"="+home)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		pid := filepath.Join(home, "fake.pid")
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			if _, err := os.Stat(pid); err == nil || time.Now().After(deadline) {
				break
			}
		}
		return cmd, pid
	}
	status := func(cmd *exec.Cmd) string {
		err := cmd.Wait()
		var ee *exec.ExitError
		switch {
		case err == nil:
			return "exit 0"
		case errors.As(err, &ee) && ee.Sys().(syscall.WaitStatus).Signaled():
			return "killed by " + ee.Sys().(syscall.WaitStatus).Signal().String()
		case errors.As(err, &ee):
			return fmt.Sprintf("exit %d", ee.ExitCode())
		}
		return err.Error()
	}

	stopped, pid := start("serve")
	stopped.Process.Signal(syscall.SIGTERM)
	if got := status(stopped); got != "exit 0" {
		t.Errorf("SIGTERM (systemctl stop): %s, want exit 0, a clean stop", got)
	}
	if _, err := os.Stat(pid); err == nil {
		t.Error("the pid file outlived a clean stop")
	}
	crashed, _ := start("crash")
	if got := status(crashed); got != "exit 1" {
		t.Errorf("a failing run: %s, want exit 1 (Restart=on-failure restarts it)", got)
	}
	killed, _ := start("serve")
	killed.Process.Kill()
	if got := status(killed); got != "killed by killed" {
		t.Errorf("SIGKILL: %s, want death by the signal (Restart=on-failure restarts it)", got)
	}
}
