package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sync"
	"syscall"
	"time"

	"github.com/carbidedb/carbide/internal/install"
	"github.com/carbidedb/carbide/internal/netns"
	"github.com/carbidedb/carbide/internal/systemd"
)

// Agent is what an agent program's command line needs: its name as
// commands print it ("replicator"), its usage text, its process, how long
// stop may take, and how to make the foreground agent.
type Agent struct {
	Program     string
	Usage       string
	Spec        func(home string, out io.Writer) Spec
	StopTimeout time.Duration
	New         func(home string, log *slog.Logger) (Runner, error)
	// Lean runs the agent with the lean scheduler (sched.go): one P, and
	// a started process gets the GODEBUG setting that keeps sysmon out of
	// deep sleep.
	Lean bool
	// Systemd is the machine's systemd; nil means systemd.System().
	Systemd *systemd.Host
}

// Runner is a foreground agent: Run serves until ctx ends.
type Runner interface {
	Run(ctx context.Context) error
}

// Main runs `PROGRAM start|stop|restart|status|run` for the install that
// CARBIDE_HOME names and returns the exit code. start, stop, restart and
// status go through systemctl when systemd runs the machine and tpm
// installed this agent's unit in /etc/systemd/system (units.go); else
// they manage a detached process and its pid file.
func Main(ctx context.Context, a Agent, args []string, out, errOut io.Writer) int {
	if len(args) != 1 {
		fmt.Fprint(errOut, a.Usage)
		return 2
	}
	home := os.Getenv(install.EnvHome)
	if home == "" {
		fmt.Fprintf(errOut, "%s: CARBIDE_HOME is not set; run the install's bin/%s wrapper\n", a.Program, a.Program)
		return 1
	}
	spec := a.Spec(home, out)
	if a.Lean {
		spec.Env = leanEnv(os.Environ())
	}
	fail := func(verb string, err error) int {
		fmt.Fprintf(errOut, "%s %s: %v\n", a.Program, verb, err)
		return 1
	}
	switch args[0] {
	case "start", "stop", "restart", "status":
		if u, ok := a.unit(home); ok {
			return u.command(ctx, args[0], spec, a.StopTimeout, fail)
		}
	}
	switch args[0] {
	case "run":
		return runForeground(ctx, a, home, errOut)
	case "start":
		if err := Start(ctx, spec); err != nil {
			return fail("start", err)
		}
	case "stop":
		if err := Stop(ctx, spec, a.StopTimeout); err != nil {
			return fail("stop", err)
		}
	case "restart":
		if err := Stop(ctx, spec, a.StopTimeout); err != nil {
			return fail("restart", err)
		}
		if err := Start(ctx, spec); err != nil {
			return fail("restart", err)
		}
	case "status":
		if pid, ok := Running(spec); ok {
			fmt.Fprintf(out, "%s is running: PID:%d\n", spec.Name, pid)
			return 0
		}
		fmt.Fprintf(out, "%s is not running.\n", spec.Name)
		return 1
	case "help", "-h", "--help":
		fmt.Fprint(out, a.Usage)
	default:
		fmt.Fprintf(errOut, "%s: unknown command %q\n%s", a.Program, args[0], a.Usage)
		return 2
	}
	return 0
}

// runForeground runs the agent of the install at home until SIGTERM or
// SIGINT, logging text to errOut (or to its rotated log file: agentLog),
// with its pid file written meanwhile.
func runForeground(ctx context.Context, a Agent, home string, errOut io.Writer) int {
	if err := enterNetNS(home); err != nil {
		fmt.Fprintf(errOut, "%s: %v\n", a.Program, err)
		return 1
	}
	if a.Lean {
		leanProcs()
	}
	errOut, closeLog := agentLog(home, a.Spec(home, io.Discard).LogFile, errOut)
	defer closeLog()
	log := slog.New(slog.NewTextHandler(errOut, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	r, err := a.New(home, log)
	if err != nil {
		fmt.Fprintf(errOut, "%s: %v\n", a.Program, err)
		return 1
	}
	pid := a.Spec(home, io.Discard).PIDFile
	if err := WritePID(pid); err != nil {
		fmt.Fprintf(errOut, "%s: %v\n", a.Program, err)
		return 1
	}
	defer RemovePID(pid)
	if dir := os.Getenv(ProfileEnv); dir != "" {
		defer profile(dir, a.Program, home, errOut)()
	}
	if dir := os.Getenv(HeapProfileEnv); dir != "" {
		defer heapPeaks(dir, a.Program, home)()
	}
	if err := r.Run(ctx); err != nil {
		fmt.Fprintf(errOut, "%s: %v\n", a.Program, err)
		return 1
	}
	return 0
}

// enterNetNS runs the agent inside its host's network namespace when the
// install belongs to a --netns sandbox (its process runs again there).
func enterNetNS(home string) error {
	b, err := install.Open(home)
	if err != nil {
		return nil // a.New says what is wrong with the install
	}
	if ns := b.Config.NetNS(b.Host.Name); ns != "" {
		return netns.Enter(ns)
	}
	return nil
}

// Listen listens on addr, waiting up to 10 s while the address is in use:
// an agent killed a moment ago may still hold it while its threads exit.
func Listen(ctx context.Context, addr string) (net.Listener, error) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		l, err := net.Listen("tcp", addr)
		if err == nil || !errors.Is(err, syscall.EADDRINUSE) || time.Now().After(deadline) {
			return l, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// ProfileEnv names a directory: an agent run with it set writes a CPU
// profile of its whole run there, <program>-<install>-<pid>.pprof (for
// benchmark investigations; off by default).
const ProfileEnv = "CARBIDE_CPUPROFILE_DIR"

// HeapProfileEnv names a directory: an agent run with it set keeps there
// the heap profile of its largest heap so far, <program>-<install>-<pid>.heap,
// taken every 2 s when the heap grew (for memory investigations; off by
// default). The file survives an agent the OOM killer takes.
const HeapProfileEnv = "CARBIDE_HEAPPROFILE_DIR"

func heapPeaks(dir, program, home string) (stop func()) {
	name := filepath.Join(dir, fmt.Sprintf("%s-%s-%s-%d.heap", program, filepath.Base(filepath.Dir(home)), filepath.Base(home), os.Getpid()))
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var peak uint64
		t := time.NewTicker(2 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse <= peak+peak/10 {
				continue
			}
			peak = ms.HeapInuse
			if f, err := os.Create(name + ".tmp"); err == nil {
				err = pprof.Lookup("heap").WriteTo(f, 0)
				if f.Close() == nil && err == nil {
					os.Rename(name+".tmp", name)
				}
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

func profile(dir, program, home string, errOut io.Writer) (stop func()) {
	name := fmt.Sprintf("%s-%s-%s-%d.pprof", program, filepath.Base(filepath.Dir(home)), filepath.Base(home), os.Getpid())
	f, err := os.Create(filepath.Join(dir, name))
	if err == nil {
		err = pprof.StartCPUProfile(f)
	}
	if err != nil {
		fmt.Fprintf(errOut, "%s: CPU profile: %v\n", program, err)
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}
