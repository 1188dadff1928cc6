package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/carbidedb/carbide/internal/fileutil"
	"github.com/carbidedb/carbide/internal/proc"
)

// Spec describes one agent process.
type Spec struct {
	// Name is what messages call it: "Tungsten Replicator Service".
	Name string
	// PIDFile and LogFile are the process's pid file and log.
	PIDFile, LogFile string
	// Args is the command line of the foreground process (program first);
	// Mark is a string of it that identifies this process among others
	// (the install directory).
	Args []string
	Mark string
	// Ready tells when the started process serves; Start waits for it.
	Ready func(ctx context.Context) error
	// Out receives the progress lines.
	Out io.Writer
	// Env is the started process's environment; nil means this one's.
	Env []string
}

// Running reads the pid file and reports whether that process lives and is
// the one the spec describes.
func Running(s Spec) (int, bool) {
	b, err := os.ReadFile(s.PIDFile)
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, false
	}
	if !proc.Alive(pid) {
		return pid, false
	}
	cmd, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return pid, false
	}
	if len(cmd) == 0 { // exiting: memory released, files maybe not yet
		return pid, true
	}
	return pid, s.Mark == "" || bytes.Contains(cmd, []byte(s.Mark))
}

// WritePID records this process in path.
func WritePID(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return fileutil.WriteAtomic(path, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644)
}

// RemovePID removes path if it still names this process.
func RemovePID(path string) {
	b, err := os.ReadFile(path)
	if err == nil && strings.TrimSpace(string(b)) == strconv.Itoa(os.Getpid()) {
		os.Remove(path)
	}
}

// Start starts the process detached unless it runs, and waits until Ready
// answers or the process dies (then the tail of its log says why). The
// process does not inherit INVOCATION_ID: it is not its systemd unit's
// process, and logs to its file (agentLog).
func Start(ctx context.Context, s Spec) error {
	out := orDiscard(s.Out)
	if pid, ok := Running(s); ok {
		fmt.Fprintf(out, "%s is already running (PID:%d).\n", s.Name, pid)
		return nil
	}
	fmt.Fprintf(out, "Starting %s...\n", s.Name)
	if err := os.MkdirAll(filepath.Dir(s.LogFile), 0o755); err != nil {
		return err
	}
	logf, err := os.OpenFile(s.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	offset, _ := logf.Seek(0, io.SeekEnd)
	cmd := exec.Command(s.Args[0], s.Args[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = withoutVar(s.Env, InvocationEnv)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", s.Name, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	fmt.Fprintf(out, "Waiting for %s.", s.Name)
	err = waitReady(ctx, s, out, func() error {
		select {
		case werr := <-exited:
			return fmt.Errorf("%s exited at start (%v): %s", s.Name, werr, logTail(s.LogFile, offset))
		default:
			return nil
		}
	}, s.LogFile)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "\nrunning: PID:%d\n", cmd.Process.Pid)
	return nil
}

// waitReady polls s.Ready for up to 60 s, printing a dot every half
// second, until it answers, or died reports the process gone (its error is
// returned). where says where to look when nothing answered.
func waitReady(ctx context.Context, s Spec, out io.Writer, died func() error, where string) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for n := 0; ; n++ {
		rctx, rcancel := context.WithTimeout(ctx, time.Second)
		err := s.Ready(rctx)
		rcancel()
		if err == nil {
			return nil
		}
		if derr := died(); derr != nil {
			fmt.Fprintln(out)
			return derr
		}
		select {
		case <-ctx.Done():
			fmt.Fprintln(out)
			return fmt.Errorf("%s did not answer within 60 s (%v); see %s", s.Name, err, where)
		case <-tick.C:
			if n%5 == 4 {
				fmt.Fprint(out, ".")
			}
		}
	}
}

// withoutVar returns env (this process's when nil) without the variable
// name.
func withoutVar(env []string, name string) []string {
	if env == nil {
		env = os.Environ()
	}
	out := make([]string, 0, len(env))
	for _, kv := range env {
		if !strings.HasPrefix(kv, name+"=") {
			out = append(out, kv)
		}
	}
	return out
}

// orDiscard returns w, or io.Discard when w is nil.
func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

func logTail(path string, offset int64) string {
	b, err := os.ReadFile(path)
	if err != nil || int64(len(b)) < offset {
		return "no log"
	}
	lines := strings.Split(strings.TrimSpace(string(b[offset:])), "\n")
	if len(lines) > 5 {
		lines = lines[len(lines)-5:]
	}
	return strings.Join(lines, " | ")
}

// Stop sends SIGTERM and waits for the process to exit, then SIGKILL
// after timeout. A process that is not running is no error.
func Stop(ctx context.Context, s Spec, timeout time.Duration) error {
	out := orDiscard(s.Out)
	pid, ok := Running(s)
	if !ok {
		fmt.Fprintf(out, "%s was not running.\n", s.Name)
		return nil
	}
	fmt.Fprintf(out, "Stopping %s...\n", s.Name)
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	if waitGone(ctx, s, timeout) {
		fmt.Fprintf(out, "Stopped %s.\n", s.Name)
		return nil
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	if waitGone(ctx, s, 10*time.Second) {
		fmt.Fprintf(out, "Stopped %s (killed after %s).\n", s.Name, timeout)
		return nil
	}
	return fmt.Errorf("%s (pid %d) did not stop", s.Name, pid)
}

func waitGone(ctx context.Context, s Spec, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if _, ok := Running(s); !ok {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(20 * time.Millisecond):
		}
	}
	_, ok := Running(s)
	return !ok
}
