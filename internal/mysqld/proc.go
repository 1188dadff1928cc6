package mysqld

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/carbidedb/carbide/internal/proc"
)

// pollInterval is how often process exit and readiness are polled.
const pollInterval = 20 * time.Millisecond

// killWait bounds the wait for a process to disappear after SIGKILL.
const killWait = 30 * time.Second

// ReadPID reads the pid file of the instance in dir and reports whether that
// process is a live mariadbd started with dir's my.cnf (so a stale pid file
// whose pid was reused by another process is not taken for the instance).
func ReadPID(dir string) (pid int, running bool) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return 0, false
	}
	b, err := os.ReadFile(pidPath(dir))
	if err != nil {
		return 0, false
	}
	pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, false
	}
	return pid, proc.Alive(pid) && isInstance(pid, dir)
}

// isInstance reports whether pid's command line is mariadbd with
// --defaults-file naming dir's my.cnf.
func isInstance(pid int, dir string) bool {
	proc := "/proc/" + strconv.Itoa(pid)
	b, err := os.ReadFile(proc + "/cmdline")
	if err != nil {
		return false
	}
	if len(b) == 0 {
		// An exiting process has released its memory (and command line)
		// but maybe not yet its files and sockets: until it is a zombie,
		// it still holds the instance's port and datadir.
		return true
	}
	args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
	if len(args) == 0 || !strings.Contains(filepath.Base(args[0]), "mariadbd") {
		return false
	}
	want, err := os.Stat(cnfPath(dir))
	if err != nil {
		return false
	}
	for _, a := range args[1:] {
		f, ok := strings.CutPrefix(a, "--defaults-file=")
		if !ok {
			continue
		}
		if !filepath.IsAbs(f) {
			f = filepath.Join(proc, "cwd", f)
		}
		got, err := os.Stat(f)
		return err == nil && os.SameFile(got, want)
	}
	return false
}

// StopDir stops the instance in dir by its pid file: SIGTERM, then SIGKILL
// when it has not exited after timeout. It is for instances this process did
// not start (the sandbox's detached ones); a stopped instance is no error.
func StopDir(ctx context.Context, dir string, timeout time.Duration) error {
	pid, running := ReadPID(dir)
	if !running {
		return nil
	}
	signal := func(sig syscall.Signal) error {
		if err := syscall.Kill(pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
			return err
		}
		return nil
	}
	wait := func(ctx context.Context, d time.Duration) bool { return waitGone(ctx, pid, d) }
	return stopPID(ctx, pid, timeout, signal, wait)
}

// stopPID sends SIGTERM to process pid with signal (which must treat an
// exited process as success) and waits with wait (which reports whether the
// process exited within the given time); past timeout, or when ctx ends, it
// sends SIGKILL and waits again.
func stopPID(ctx context.Context, pid int, timeout time.Duration, signal func(syscall.Signal) error, wait func(context.Context, time.Duration) bool) error {
	if err := signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("mysqld: send SIGTERM to mariadbd (pid %d): %w", pid, err)
	}
	if wait(ctx, timeout) {
		return nil
	}
	why := fmt.Sprintf("did not exit within %s of SIGTERM", timeout)
	if ctx.Err() != nil {
		why = fmt.Sprintf("was still shutting down when the caller gave up (%v)", ctx.Err())
	}
	if err := signal(syscall.SIGKILL); err != nil {
		return fmt.Errorf("mysqld: send SIGKILL to mariadbd (pid %d): %w", pid, err)
	}
	if !wait(context.WithoutCancel(ctx), killWait) {
		return errorf(ErrStopTimeout, "mysqld: mariadbd (pid %d) %s and still runs %s after SIGKILL; check the process with ps", pid, why, killWait)
	}
	return errorf(ErrStopTimeout, "mysqld: mariadbd (pid %d) %s and was killed; InnoDB will recover at the next start", pid, why)
}

// waitGone polls /proc until pid has exited (gone or zombie), d has passed
// or ctx ends, and reports whether it exited.
func waitGone(ctx context.Context, pid int, d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		if !proc.Alive(pid) {
			return true
		}
		select {
		case <-ctx.Done():
			return !proc.Alive(pid)
		case <-timer.C:
			return !proc.Alive(pid)
		case <-tick.C:
		}
	}
}
