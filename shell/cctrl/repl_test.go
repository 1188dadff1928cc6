package cctrl

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"

	"github.com/carbidedb/carbide/internal/config"
	"github.com/carbidedb/carbide/internal/testutil"
)

// pastedOutput is what each line of pastedBlock prints against the fake
// deployment.
var pastedOutput = []string{
	"COORDINATOR[east3:AUTOMATIC:ONLINE]",
	"done: set policy maintenance",
	"done: router * offline",
	"FORCE: true",
	"done: datasource east2 shun",
	"done: replicator east2 offline",
	"done: datasource east2 recover",
	"done: datasource east2 online",
	"done: router * online",
	"done: set policy automatic",
}

// replChild names the environment variable that makes the test binary run
// cctrl's REPL against the fake deployment instead of the tests.
const replChild = "CCTRL_TEST_REPL_CHILD"

// runREPLChild is the child's side, started through TestPasteOnATerminal:
// the real REPL on the terminal it was given, against the fake deployment,
// exiting with cctrl's status.
func runREPLChild() {
	n := deployment()
	env := OSEnv()
	env.DialManager, env.DialReplicator = n.dialManager, n.dialReplicator
	os.Exit(Main(context.Background(), "cctrl", nil, env))
}

// ptyREPL is cctrl's REPL running in a child process on a pseudo-terminal.
type ptyREPL struct {
	t      *testing.T
	ptmx   *os.File
	tty    *os.File
	cmd    *exec.Cmd
	before *unix.Termios
	home   string // the child's HOME, for its history
	mu     sync.Mutex
	buf    bytes.Buffer
	done   chan struct{}
}

func startREPL(t *testing.T) *ptyREPL {
	t.Helper()
	install := testInstall(t, "east1", config.ClusterInstall, "")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	if err := pty.Setsize(ptmx, &pty.Winsize{Rows: 60, Cols: 120}); err != nil {
		t.Fatal(err)
	}
	before, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	r := &ptyREPL{t: t, ptmx: ptmx, tty: tty, before: before, home: t.TempDir(), done: make(chan struct{})}
	r.cmd = exec.Command(exe, "-test.run=^TestPasteOnATerminal$")
	r.cmd.Env = append(os.Environ(), replChild+"=1", "CARBIDE_HOME="+install, "HOME="+r.home, "NO_COLOR=1", "TERM=xterm")
	r.cmd.Stdin, r.cmd.Stdout, r.cmd.Stderr = tty, tty, tty
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(r.done)
		b := make([]byte, 4096)
		for {
			n, err := ptmx.Read(b)
			r.mu.Lock()
			r.buf.Write(b[:n])
			r.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		if r.cmd.ProcessState == nil {
			r.cmd.Process.Kill()
			r.cmd.Wait()
		}
		ptmx.Close()
		tty.Close()
		<-r.done
		if t.Failed() {
			t.Logf("terminal output:\n%q", r.output())
		}
	})
	return r
}

func (r *ptyREPL) output() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.buf.String()
}

// send writes keys to the terminal in one write.
func (r *ptyREPL) send(keys string) {
	r.t.Helper()
	if _, err := r.ptmx.Write([]byte(keys)); err != nil {
		r.t.Fatal(err)
	}
}

// waitReady waits until the output after from ends with the REPL reading
// keys in raw mode (it asks for bracketed paste after setting raw mode)
// and returns where the output ends then.
func (r *ptyREPL) waitReady(from int, after string) int {
	r.t.Helper()
	end := 0
	testutil.Eventually(r.t, 20*time.Second, func() error {
		out := r.output()
		i := strings.LastIndex(out, after)
		if i < from {
			return fmt.Errorf("the terminal shows no %q", after)
		}
		if j := strings.LastIndex(out, pasteOn); j < i || strings.LastIndex(out, pasteOff) > j {
			return fmt.Errorf("the REPL is not reading keys after %q", after)
		}
		end = len(out)
		return nil
	})
	return end
}

// exit sends keys that leave (Ctrl-D, exit) and checks cctrl exits 0,
// leaving the terminal as it was and bracketed paste off.
func (r *ptyREPL) exit(keys string) {
	r.t.Helper()
	r.send(keys)
	exited := make(chan error, 1)
	go func() { exited <- r.cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			r.t.Fatalf("cctrl exited: %v", err)
		}
	case <-time.After(20 * time.Second):
		r.t.Fatalf("%q did not end cctrl", keys)
	}
	after, err := unix.IoctlGetTermios(int(r.tty.Fd()), unix.TCGETS)
	if err != nil {
		r.t.Fatal(err)
	}
	b := r.before
	if after.Lflag != b.Lflag || after.Iflag != b.Iflag || after.Oflag != b.Oflag || after.Cflag != b.Cflag || after.Cc != b.Cc {
		r.t.Errorf("terminal left changed: lflag %#o→%#o iflag %#o→%#o oflag %#o→%#o cflag %#o→%#o cc %v→%v",
			b.Lflag, after.Lflag, b.Iflag, after.Iflag, b.Oflag, after.Oflag, b.Cflag, after.Cflag, b.Cc, after.Cc)
	}
	time.Sleep(50 * time.Millisecond) // the last output, read by the goroutine
	if out := r.output(); strings.LastIndex(out, pasteOff) < strings.LastIndex(out, pasteOn) {
		r.t.Error("cctrl exited with bracketed paste on")
	}
}

// history is the child's ~/.cctrl_history.
func (r *ptyREPL) history() []string {
	b, err := os.ReadFile(filepath.Join(r.home, ".cctrl_history"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		r.t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

// ranInOrder checks each of want appears exactly once in out, in order.
func ranInOrder(t *testing.T, out string, want []string) {
	t.Helper()
	last := -1
	for _, w := range want {
		if n := strings.Count(out, w); n != 1 {
			t.Errorf("%q is in the output %d times, want once", w, n)
			continue
		}
		i := strings.Index(out, w)
		if i < last {
			t.Errorf("%q came before the output of the line above it", w)
		}
		last = i
	}
}

// The real REPL on a pseudo-terminal: ten of the guide's commands written
// in one write, as a paste or a fast typist gives them, each run exactly
// once and in order; then Ctrl-D on the empty line leaves with status 0
// and the terminal as it was.
func TestPasteOnATerminal(t *testing.T) {
	if os.Getenv(replChild) != "" {
		runREPLChild()
	}
	block := strings.Join(pastedBlock, "\r") + "\r"
	for _, c := range []struct{ name, keys string }{
		{"typed burst", block},
		{"bracketed paste", pasteStart + strings.ReplaceAll(block, "\r", "\n") + pasteEnd},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := startREPL(t)
			from := r.waitReady(0, "east: session established")
			r.send(c.keys)
			r.waitReady(from, pastedOutput[len(pastedOutput)-1])
			ranInOrder(t, r.output()[from:], pastedOutput)
			r.exit("\x04")
			want := strings.Join(pastedBlock, "\x00")
			if got := strings.Join(r.history(), "\x00"); got != want {
				t.Errorf("history %q, want the ten lines", strings.Split(got, "\x00"))
			}
		})
	}
}

// A pasted line that fails stops the rest of its paste, as a script stops;
// the REPL goes on.
func TestPasteOnATerminalGoesOnAfterAFailure(t *testing.T) {
	r := startREPL(t)
	from := r.waitReady(0, "east: session established")
	r.send(pasteStart + "set policy maintenance\nswich to east2\nrouter * offline\n" + pasteEnd)
	from = r.waitReady(from, "done: router * offline")
	out := r.output()
	if !strings.Contains(out, "done: set policy maintenance") || !strings.Contains(out, `unknown command "swich"`) || strings.Contains(out, "were not run") {
		t.Errorf("a failing pasted line did not go on to the next, as typed lines do")
	}
	r.send("ping\r")
	r.waitReady(from, "done: ping")
	r.exit("\x04")
}

// Typing keeps working: Ctrl-C clears the line, Tab completes, exit
// leaves, all in one burst.
func TestTypingOnATerminal(t *testing.T) {
	r := startREPL(t)
	from := r.waitReady(0, "east: session established")
	r.send("set pol\x03pin\t\r")
	r.waitReady(from, "done: ping")
	r.exit("exit\r")
	if got := r.history(); fmt.Sprint(got) != "[ping exit]" {
		t.Errorf("lines run %q, want ping (the line cleared by Ctrl-C never runs) and exit", got)
	}
}
