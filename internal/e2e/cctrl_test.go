package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"

	"github.com/carbidedb/carbide/internal/install"
	"github.com/carbidedb/carbide/internal/testutil"
	"github.com/carbidedb/carbide/rpc/gen/managerpb"
	"github.com/carbidedb/carbide/shell/cctrl"
)

// cctrlResult is one run of an install's cctrl wrapper.
type cctrlResult struct {
	out, err string
	code     int
}

// runCctrl runs program (cctrl, mm_cctrl) of host's install ("continuent"
// or "replicator") through its wrapper, with stdin piped in, as an operator
// runs it from a script.
func (s *site) runCctrl(host, inst, program, stdin string, args ...string) cctrlResult {
	s.t.Helper()
	cmd := exec.Command(filepath.Join(s.cfg.Dir, host, inst, "bin", program), args...)
	cmd.Env = append(os.Environ(), "CARBIDE_HOME=", "NO_COLOR=1")
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		s.t.Fatalf("%s on %s: %v", program, host, err)
	}
	return cctrlResult{out.String(), errOut.String(), code}
}

// waitRows waits until table has n rows on every host.
func waitRows(s *site, hosts []string, table string, n int) {
	s.t.Helper()
	testutil.Eventually(s.t, 30*time.Second, func() error {
		for _, h := range hosts {
			var got int
			if err := s.db(h).QueryRow("SELECT COUNT(*) FROM " + table).Scan(&got); err != nil || got != n {
				return fmt.Errorf("%s has %d rows in %s (%v), want %d", h, got, table, err, n)
			}
		}
		return nil
	})
}

// siteWithConnectors is oneSite with a connector configured on every host,
// so the guide's router steps have routers to act on.
var siteWithConnectors = strings.Replace(oneSite, "master=east1\n", "master=east1\nconnectors=east1,east2,east3\n", 1)

// allOnline checks the site is back as it started: AUTOMATIC, east1
// primary, every datasource, replicator and router ONLINE.
func allOnline(r *managerpb.StatusReply) error {
	if r.GetPrimary() != "east1" {
		return fmt.Errorf("primary %s", r.GetPrimary())
	}
	return siteOnline(r)
}

// siteOnline: AUTOMATIC with a coordinator, no transition, every
// datasource, replicator and router ONLINE.
func siteOnline(r *managerpb.StatusReply) error {
	if r.GetPolicy() != "AUTOMATIC" || r.GetTransition() != "" || r.GetCoordinator() == "" {
		return fmt.Errorf("policy %s, transition %q, coordinator %q", r.GetPolicy(), r.GetTransition(), r.GetCoordinator())
	}
	for _, d := range r.GetDatasources() {
		if d.GetState() != "ONLINE" || d.GetReplicatorState() != "ONLINE" {
			return fmt.Errorf("%s is %s(%s), replicator %s", d.GetHost(), d.GetState(), d.GetReason(), d.GetReplicatorState())
		}
	}
	for _, rt := range r.GetRouters() {
		if rt.GetState() != "ONLINE" {
			return fmt.Errorf("router %s is %s", rt.GetHost(), rt.GetState())
		}
	}
	return nil
}

// TestCctrlOnOneSite drives cctrl on a sandbox the ways an operator does:
// the guide's "Resetting a single dataservice" cctrl steps piped in, a
// script with a typo, -e, ls's speed, and the interactive shell in a
// pseudo-terminal.
func TestCctrlOnOneSite(t *testing.T) {
	s := startSandbox(t, siteWithConnectors)
	s.exec("east1", "CREATE DATABASE app", "CREATE TABLE app.t (id INT PRIMARY KEY, v INT)", "INSERT INTO app.t VALUES (1, 1), (2, 2)")
	waitRows(s, eastHosts, "app.t", 2)

	t.Run("guide reset script", func(t *testing.T) {
		// The guide's steps 1, 2, 5, 15, 19 and 20 for a replica. recover
		// brings east2 back as a slave of the primary and ONLINE, so the
		// guide's "welcome" (which re-admits a SHUNNED datasource) is
		// refused after it; its "online" answers "already ONLINE".
		script := `# Resetting a single dataservice: the cctrl steps
set policy maintenance
router * offline

set force true
datasource east2 shun
ls east2
replicator east2 offline
datasource east2 recover
datasource east2 online
router * online
set policy automatic
`
		r := s.runCctrl("east1", "continuent", "cctrl", script)
		if r.code != 0 || r.err != "" {
			t.Fatalf("exit %d, stderr:\n%s\nstdout:\n%s", r.code, r.err, r.out)
		}
		t.Logf("cctrl output:\n%s", r.out)
		for _, want := range []string{
			"policy mode is now MAINTENANCE", "router * is now OFFLINE", "FORCE: true",
			"DataSource 'east2@east' is now SHUNNED(MANUALLY-SHUNNED)",
			"|east2(slave:SHUNNED(MANUALLY-SHUNNED), progress=",
			"](OFFLINE, created=", // every connector runs: connector@east1[PID](OFFLINE, created=N, active=N)
			"Replicator 'east2' is now OFFLINE", "DATASOURCE 'east2@east' RECOVERED",
			"router * is now ONLINE", "policy mode is now AUTOMATIC",
		} {
			if !strings.Contains(r.out, want) {
				t.Errorf("output lacks %q", want)
			}
		}
		if strings.Contains(r.out, "NOT RUNNING") {
			t.Errorf("a connector of the sandbox shows as not running")
		}
		if strings.Contains(r.out, "session established") || strings.Contains(r.out, "[LOGICAL]") {
			t.Errorf("piped output has the banner or a prompt")
		}
		s.waitStatus("east2", 20*time.Second, "all ONLINE after the script", func(r *managerpb.StatusReply) error { return allOnline(r) })
		s.exec("east1", "INSERT INTO app.t VALUES (3, 3)")
		waitRows(s, eastHosts, "app.t", 3)
	})

	t.Run("typo stops at its line", func(t *testing.T) {
		before := s.status("east1")
		r := s.runCctrl("east2", "continuent", "cctrl", "set policy maintenance\nrouter * offline\nswich to east2\nset policy automatic\nrouter * online\n")
		if r.code != 1 {
			t.Fatalf("exit %d, want 1; stderr %s", r.code, r.err)
		}
		if want := "cctrl: line 3: unknown command \"swich\"; did you mean \"switch\"? (help lists the commands)\n"; r.err != want {
			t.Errorf("stderr %q, want %q", r.err, want)
		}
		// Lines 1 and 2 ran; nothing after line 3 did. (Asked of east2's
		// manager, which answered the commands once its view had them.)
		after := s.status("east2")
		if after.GetPolicy() != "MAINTENANCE" || after.GetPrimary() != before.GetPrimary() || after.GetTerm() != before.GetTerm() {
			t.Errorf("after the script: policy %s primary %s epoch %d (before: %s %s %d)", after.GetPolicy(), after.GetPrimary(), after.GetTerm(), before.GetPolicy(), before.GetPrimary(), before.GetTerm())
		}
		for _, rt := range after.GetRouters() {
			if rt.GetState() != "OFFLINE" {
				t.Errorf("router %s is %s; line 2 set it OFFLINE and line 5 must not have run", rt.GetHost(), rt.GetState())
			}
		}
		// A manager's refusal stops a script too, with its sentence.
		r = s.runCctrl("east3", "continuent", "cctrl", "datasource east1 shun\nset policy automatic\n")
		if r.code != 1 || !strings.HasPrefix(r.err, "cctrl: line 1: east1 is the primary; shunning it stops all writes") {
			t.Errorf("refusal: exit %d, stderr %q", r.code, r.err)
		}
		if s.status("east3").GetPolicy() != "MAINTENANCE" {
			t.Errorf("the line after the refusal ran")
		}
		r = s.runCctrl("east3", "continuent", "cctrl", "", "-e", "router * online; set policy automatic")
		if r.code != 0 {
			t.Fatalf("-e: exit %d %s", r.code, r.err)
		}
		s.waitStatus("east1", 10*time.Second, "back to AUTOMATIC", func(r *managerpb.StatusReply) error { return allOnline(r) })
	})

	t.Run("guide steps on the primary", func(t *testing.T) {
		// Steps 5 and 15 of the same procedure act on the primary, east1.
		// Step 14 (trepctl online on east1) is done here through cctrl:
		// welcome and online do not start a replicator.
		script := `set policy maintenance
router * offline
set force true
datasource east1 shun
replicator east1 offline
datasource east1 welcome
datasource east1 online
replicator east1 online
router * online
set policy automatic
`
		r := s.runCctrl("east2", "continuent", "cctrl", script)
		if r.code != 0 || r.err != "" {
			t.Fatalf("exit %d, stderr:\n%s\nstdout:\n%s", r.code, r.err, r.out)
		}
		for _, want := range []string{"DataSource 'east1@east' is now SHUNNED(MANUALLY-SHUNNED)", "DataSource 'east1@east' is now ONLINE", "east1 is already ONLINE", "Replicator 'east1' is now ONLINE"} {
			if !strings.Contains(r.out, want) {
				t.Errorf("output lacks %q:\n%s", want, r.out)
			}
		}
		s.waitStatus("east3", 20*time.Second, "all ONLINE after the script", func(r *managerpb.StatusReply) error { return allOnline(r) })
		waitWritable(s, "east1")
		s.exec("east1", "INSERT INTO app.t VALUES (4, 4)")
		waitRows(s, eastHosts, "app.t", 4)
	})

	t.Run("ls answers quickly", func(t *testing.T) {
		b, err := install.Open(filepath.Join(s.cfg.Dir, "east1", "continuent"))
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		sess, err := cctrl.New(cctrl.DefaultConfig(), cctrl.Env{Out: &out}, b)
		if err != nil {
			t.Fatal(err)
		}
		defer sess.Close()
		ctx := context.Background()
		if err := sess.Exec(ctx, "ls"); err != nil { // connects
			t.Fatal(err)
		}
		var times []time.Duration
		for range 20 {
			begin := time.Now()
			if err := sess.Exec(ctx, "ls"); err != nil {
				t.Fatal(err)
			}
			times = append(times, time.Since(begin))
		}
		slices.Sort(times)
		t.Logf("ls in-process: median %v, max %v", times[len(times)/2], times[len(times)-1])
		if m := times[len(times)/2]; m > 100*time.Millisecond {
			t.Errorf("ls takes %v (median), want under 100ms", m)
		}
		begin := time.Now()
		if r := s.runCctrl("east1", "continuent", "cctrl", "ls\n"); r.code != 0 {
			t.Fatalf("ls: %d %s", r.code, r.err)
		}
		t.Logf("echo ls | cctrl (a new process, its wrapper and connection): %v", time.Since(begin))
	})

	t.Run("interactive", func(t *testing.T) {
		home := t.TempDir()
		term := startTerminal(t, filepath.Join(s.cfg.Dir, "east1", "continuent", "bin", "cctrl"), "HOME="+home, "TERM=xterm")
		term.waitFor("east: session established", 10*time.Second)
		term.waitFor("[LOGICAL] /east > ", 5*time.Second)

		// "sw" shows switch among the suggestions; Tab selects it; Ctrl-C
		// ends the line as it is (printing it) without running it.
		term.send("sw")
		term.waitFor(" switch ", 5*time.Second)
		term.send("\t")
		term.waitForRe(regexp.MustCompile(`\x1b\[[0-9;]*mswitch`), 5*time.Second)
		term.send("\x03")
		term.waitForRe(regexp.MustCompile(`> (\x1b\[[0-9;]*m)*switch\r\n`), 5*time.Second)

		term.send("ls")
		term.waitFor(" ls ", 5*time.Second) // its suggestion
		term.send("\r")
		term.waitFor("DATASOURCES:", 10*time.Second)
		term.waitFor("[LOGICAL] /east > ", 5*time.Second)

		term.send("\x04") // Ctrl-D on an empty line
		if code := term.wait(10 * time.Second); code != 0 {
			t.Errorf("exit status %d after Ctrl-D", code)
		}
		term.checkSane()
		hist, err := os.ReadFile(filepath.Join(home, ".cctrl_history"))
		if err != nil || strings.TrimSpace(string(hist)) != "ls" {
			t.Errorf("history %q, %v; want the one command run", hist, err)
		}
		if r := s.status("east1"); r.GetPrimary() != "east1" || r.GetTransition() != "" {
			t.Errorf("the completed switch ran: primary %s %s", r.GetPrimary(), r.GetTransition())
		}
	})

	t.Run("guide dataserver maintenance", func(t *testing.T) {
		// "Dataserver maintenance": shun a replica, restart its database,
		// recover it, switch.
		script := `set policy maintenance
datasource east3 shun
service east3/mysql restart
datasource east3 recover
switch
set policy automatic
`
		r := s.runCctrl("east1", "continuent", "cctrl", script)
		if r.code != 0 || r.err != "" {
			t.Fatalf("exit %d, stderr:\n%s\nstdout:\n%s", r.code, r.err, r.out)
		}
		t.Logf("cctrl output:\n%s", r.out)
		st := s.waitStatus("east2", 30*time.Second, "a new primary, all ONLINE", func(r *managerpb.StatusReply) error {
			if r.GetPrimary() == "east1" || r.GetTransition() != "" || r.GetPolicy() != "AUTOMATIC" {
				return fmt.Errorf("primary %s, transition %q, policy %s", r.GetPrimary(), r.GetTransition(), r.GetPolicy())
			}
			for _, d := range r.GetDatasources() {
				if d.GetState() != "ONLINE" || d.GetReplicatorState() != "ONLINE" {
					return fmt.Errorf("%s is %s, replicator %s", d.GetHost(), d.GetState(), d.GetReplicatorState())
				}
			}
			return nil
		})
		// east3's manager may take a moment to hear of it all.
		testutil.Eventually(t, 10*time.Second, func() error {
			out := s.runCctrl("east3", "continuent", "cctrl", "ls\n").out
			if !strings.Contains(out, "|"+st.GetPrimary()+"(master:ONLINE, progress=") || strings.Count(out, "STATUS [OK]") != 3 || !strings.Contains(out, ":AUTOMATIC:ONLINE]") {
				return fmt.Errorf("ls after the switch to %s:\n%s", st.GetPrimary(), out)
			}
			return nil
		})
	})
}

// TestCctrlMM: on the guide's two-site sandbox, `echo ls | mm_cctrl` on
// west3 shows the three west hosts each running service east, ONLINE, at
// the same appliedLastSeqno once east's writes stop.
func TestCctrlMM(t *testing.T) {
	ini, err := os.ReadFile("../../examples/msaa.ini")
	if err != nil {
		t.Fatal(err)
	}
	s := startSandbox(t, string(ini))
	s.exec("east1", "CREATE DATABASE app", "CREATE TABLE app.t (id INT PRIMARY KEY)")
	for i := range 10 {
		s.exec("east1", fmt.Sprintf("INSERT INTO app.t VALUES (%d)", i))
	}
	waitRows(s, allHosts, "app.t", 10)
	svc := regexp.MustCompile(`\| east\(slave:(\S+), appliedLastSeqno=(-?\d+), appliedLatency=`)
	var last string
	testutil.Eventually(t, 20*time.Second, func() error {
		r := s.runCctrl("west3", "replicator", "mm_cctrl", "ls\n")
		last = r.out
		if r.code != 0 {
			return fmt.Errorf("exit %d: %s", r.code, r.err)
		}
		m := svc.FindAllStringSubmatch(r.out, -1)
		if len(m) != 3 {
			return fmt.Errorf("%d east services shown, want 3", len(m))
		}
		for _, h := range []string{"west1", "west2", "west3"} {
			if !strings.Contains(r.out, "|"+h+"(cross-site replicator, services=1)") {
				return fmt.Errorf("no box for %s", h)
			}
		}
		for _, x := range m {
			if x[1] != "ONLINE" || x[2] != m[0][2] || x[2] == "-1" {
				return fmt.Errorf("east services: %v", m)
			}
		}
		if !strings.Contains(r.out, "east primary=east1") {
			return fmt.Errorf("the origin's primary is not shown")
		}
		return nil
	})
	t.Logf("echo ls | mm_cctrl on west3:\n%s", last)
	// cctrl -mm on a cluster install, and mm/exit-mm in one session.
	r := s.runCctrl("east2", "continuent", "cctrl", "mm\nls east2\nexit-mm\nls east2\n")
	if r.code != 0 || !strings.Contains(r.out, "| west(slave:ONLINE") || !strings.Contains(r.out, "|east2(slave:ONLINE") {
		t.Errorf("mm and exit-mm: exit %d %s\n%s", r.code, r.err, r.out)
	}
}

// terminal is a program running in a pseudo-terminal.
type terminal struct {
	t      *testing.T
	ptmx   *os.File
	tty    *os.File
	cmd    *exec.Cmd
	before *unix.Termios
	mu     sync.Mutex
	buf    bytes.Buffer
	mark   int // waitFor looks after here
	done   chan struct{}
}

func startTerminal(t *testing.T, path string, env ...string) *terminal {
	t.Helper()
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	if err := pty.Setsize(ptmx, &pty.Winsize{Rows: 60, Cols: 120}); err != nil {
		t.Fatal(err)
	}
	before, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(path)
	cmd.Env = append(append(os.Environ(), "CARBIDE_HOME="), env...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, tty
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	term := &terminal{t: t, ptmx: ptmx, tty: tty, cmd: cmd, before: before, done: make(chan struct{})}
	go func() {
		defer close(term.done)
		b := make([]byte, 4096)
		for {
			n, err := ptmx.Read(b)
			term.mu.Lock()
			term.buf.Write(b[:n])
			term.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
		ptmx.Close()
		tty.Close()
		<-term.done
		if t.Failed() {
			t.Logf("terminal output:\n%q", term.output())
		}
	})
	return term
}

func (term *terminal) output() string {
	term.mu.Lock()
	defer term.mu.Unlock()
	return term.buf.String()
}

func (term *terminal) send(keys string) {
	term.t.Helper()
	term.mark = len(term.output())
	if _, err := term.ptmx.Write([]byte(keys)); err != nil {
		term.t.Fatal(err)
	}
}

// waitFor waits until what appears in the output after the last send.
func (term *terminal) waitFor(what string, timeout time.Duration) {
	term.t.Helper()
	term.waitForRe(regexp.MustCompile(regexp.QuoteMeta(what)), timeout)
}

func (term *terminal) waitForRe(re *regexp.Regexp, timeout time.Duration) {
	term.t.Helper()
	testutil.Eventually(term.t, timeout, func() error {
		if out := term.output(); re.MatchString(out[term.mark:]) {
			return nil
		}
		return fmt.Errorf("the terminal shows no %q after the last keys", re)
	})
}

// wait waits for the program to exit and returns its exit status.
func (term *terminal) wait(timeout time.Duration) int {
	term.t.Helper()
	exited := make(chan error, 1)
	go func() { exited <- term.cmd.Wait() }()
	select {
	case err := <-exited:
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return exit.ExitCode()
		}
		if err != nil {
			term.t.Fatal(err)
		}
		return 0
	case <-time.After(timeout):
		term.t.Fatalf("the program did not exit within %v", timeout)
	}
	return -1
}

// checkSane checks the terminal's settings are as before the program ran:
// canonical mode, echo, signals, CR→NL, output processing.
func (term *terminal) checkSane() {
	term.t.Helper()
	after, err := unix.IoctlGetTermios(int(term.tty.Fd()), unix.TCGETS)
	if err != nil {
		term.t.Fatal(err)
	}
	b := term.before
	if after.Lflag != b.Lflag || after.Iflag != b.Iflag || after.Oflag != b.Oflag || after.Cflag != b.Cflag {
		term.t.Errorf("terminal left changed: lflag %#o→%#o iflag %#o→%#o oflag %#o→%#o cflag %#o→%#o", b.Lflag, after.Lflag, b.Iflag, after.Iflag, b.Oflag, after.Oflag, b.Cflag, after.Cflag)
	}
	if after.Lflag&(unix.ICANON|unix.ECHO|unix.ISIG) != unix.ICANON|unix.ECHO|unix.ISIG {
		term.t.Errorf("terminal not in canonical mode with echo: lflag %#o", after.Lflag)
	}
}
