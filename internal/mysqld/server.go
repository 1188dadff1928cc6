package mysqld

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/carbidedb/carbide/internal/fileutil"
	"github.com/carbidedb/carbide/internal/netns"
)

// Server is a mariadbd process started by Start. Its methods are safe for
// concurrent use.
type Server struct {
	cfg    Config // defaults applied
	log    *slog.Logger
	cmd    *exec.Cmd
	pid    int
	exited chan struct{} // closed once the process has exited and been reaped
}

// Start starts mariadbd for cfg and returns once it answers on its unix
// socket and the users exist. On a first start the datadir is copied from
// tmpl, or made by mariadb-install-db when tmpl is nil; a datadir left by an
// earlier start (stopped or crashed) is reused as it is.
//
// ctx bounds the start only (together with cfg.StartTimeout): the server
// keeps running after ctx ends. An attached server (cfg.Detached false) is
// killed when this process dies; a detached one outlives it and is stopped
// with StopDir.
func Start(ctx context.Context, cfg Config, tmpl *Template) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.WithDefaults()
	bins, err := LookPath()
	if err != nil {
		return nil, err
	}
	log := cfg.Logger.With("dir", cfg.Dir, "addr", cfg.Addr())
	begin := time.Now()
	if pid, running := ReadPID(cfg.Dir); running {
		return nil, errorf(ErrAlreadyRunning, "mysqld: mariadbd already runs in %s (pid %d); stop it first (StopDir, or sandbox down)", cfg.Dir, pid)
	}
	for _, d := range []string{cfg.Dir, cfg.TmpDir()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("mysqld: create instance folder: %w", err)
		}
	}
	if err := prepareDatadir(ctx, cfg, bins, tmpl, log); err != nil {
		return nil, err
	}
	if err := fileutil.WriteAtomic(cfg.CnfPath(), cfg.cnf(), 0o644); err != nil {
		return nil, fmt.Errorf("mysqld: write my.cnf: %w", err)
	}
	// Nothing runs in Dir (checked above): a socket or pid file left by a
	// crash is stale.
	os.Remove(cfg.SocketPath())
	os.Remove(cfg.PIDPath())

	s, logOffset, err := spawn(cfg, bins, log)
	if err != nil {
		return nil, err
	}
	startCtx, cancel := context.WithTimeout(ctx, cfg.StartTimeout)
	defer cancel()
	if err := s.waitReady(startCtx, logOffset); err != nil {
		s.Kill()
		return nil, err
	}
	log.Info("mysqld started", "pid", s.pid, "elapsed", time.Since(begin).Round(time.Millisecond))
	return s, nil
}

// prepareDatadir makes Dir/data unless it already holds a datadir.
func prepareDatadir(ctx context.Context, cfg Config, bins Binaries, tmpl *Template, log *slog.Logger) error {
	data := cfg.DataDir()
	if isDatadir(data) {
		log.Debug("mysqld reusing datadir", "datadir", data)
		return nil
	}
	removeStaleTemps(cfg.Dir, "data.tmp-", 0)
	removeStaleTemps(cfg.Dir, "install-tmp-", 0)
	begin := time.Now()
	if tmpl != nil {
		if err := fillDatadir(data, func(tmp string) error { return copyTree(tmpl.datadir, tmp) }); err != nil {
			return fmt.Errorf("mysqld: copy template %s: %w", tmpl.datadir, err)
		}
		log.Debug("mysqld datadir copied from template", "elapsed", time.Since(begin).Round(time.Millisecond))
		return nil
	}
	if err := fillDatadir(data, func(tmp string) error { return installDB(ctx, bins, tmp) }); err != nil {
		return err
	}
	log.Debug("mysqld datadir installed", "elapsed", time.Since(begin).Round(time.Millisecond))
	return nil
}

// spawn starts the mariadbd process and the goroutine that reaps it. It
// returns the size error.log had before, where this start's lines begin.
func spawn(cfg Config, bins Binaries, log *slog.Logger) (*Server, int64, error) {
	logf, err := os.OpenFile(cfg.ErrorLogPath(), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, 0, fmt.Errorf("mysqld: open error log: %w", err)
	}
	defer logf.Close()
	var offset int64
	if fi, err := logf.Stat(); err == nil {
		offset = fi.Size()
	}
	// --defaults-file must come first; mariadbd refuses to run as root
	// without --user=root.
	args := []string{"--defaults-file=" + cfg.CnfPath()}
	if os.Geteuid() == 0 {
		args = append(args, "--user=root")
	}
	cmd := exec.Command(bins.Mariadbd, args...)
	attr := &syscall.SysProcAttr{}
	if hn, ok := hostnameCmd(cfg.Hostname); ok {
		// A UTS namespace of its own gives the server its host's name
		// (@@hostname), as on a real host: sh sets it and execs mariadbd,
		// which keeps sh's pid.
		cmd = exec.Command("/bin/sh", append([]string{"-c", `"$0" "$1" && shift && exec "$@"`, hn, cfg.Hostname, bins.Mariadbd}, args...)...)
		attr.Cloneflags = syscall.CLONE_NEWUTS
	}
	cmd.Dir = cfg.Dir
	cmd.Stdout, cmd.Stderr = logf, logf
	if cfg.Detached {
		attr.Setsid = true
	} else {
		// The kernel sends Pdeathsig when the thread that forked exits,
		// which in Go means the process (threads exit only when a goroutine
		// that called runtime.LockOSThread ends locked: do not Start from
		// one). So a test binary that dies leaves no server behind.
		attr.Pdeathsig = syscall.SIGKILL
	}
	cmd.SysProcAttr = attr
	start := cmd.Start
	if cfg.NetNS != "" {
		if !cfg.Detached {
			return nil, 0, fmt.Errorf("mysqld: a server in network namespace %s must be detached", cfg.NetNS)
		}
		start = func() error { return netns.Start(cfg.NetNS, cmd) }
	}
	if err := start(); err != nil {
		return nil, 0, fmt.Errorf("mysqld: start %s: %w", bins.Mariadbd, err)
	}
	s := &Server{cfg: cfg, log: log, cmd: cmd, pid: cmd.Process.Pid, exited: make(chan struct{})}
	go func() {
		cmd.Wait()
		close(s.exited)
	}()
	return s, offset, nil
}

// hostnameCmd returns the hostname program to name a server's UTS
// namespace with, when a name is wanted and we may make namespaces (root).
func hostnameCmd(name string) (string, bool) {
	if name == "" || os.Geteuid() != 0 {
		return "", false
	}
	for _, p := range []string{"/usr/bin/hostname", "/bin/hostname"} {
		if _, err := os.Stat(p); err == nil {
			return p, true
		}
	}
	return "", false
}

// waitReady polls the unix socket until the server answers, then creates
// the users. It fails at once when the process exits.
func (s *Server) waitReady(ctx context.Context, logOffset int64) error {
	db, err := s.socketDB()
	if err != nil {
		return err
	}
	defer db.Close()
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		pingCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := db.PingContext(pingCtx)
		cancel()
		if err == nil {
			break
		}
		select {
		case <-s.exited:
			return s.exitError(logOffset)
		case <-ctx.Done():
			tail := s.logTail(logOffset)
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return errorf(ErrStartTimeout, "mysqld: mariadbd in %s did not answer on %s in time (%v); last lines of %s:\n%s",
					s.cfg.Dir, s.cfg.SocketPath(), err, s.cfg.ErrorLogPath(), tail)
			}
			return fmt.Errorf("mysqld: start of mariadbd in %s abandoned: %w", s.cfg.Dir, ctx.Err())
		case <-tick.C:
		}
	}
	if err := createUsers(ctx, db, s.cfg.Users); err != nil {
		return fmt.Errorf("mysqld: create users in %s: %w", s.cfg.Dir, err)
	}
	return nil
}

// exitError describes an exit during startup with the new lines of error.log.
func (s *Server) exitError(logOffset int64) error {
	state := "exited"
	if ps := s.cmd.ProcessState; ps != nil {
		state = ps.String()
	}
	tail := s.logTail(logOffset)
	kind := ErrExited
	if strings.Contains(tail, "Address already in use") || strings.Contains(tail, "another server running on port") {
		kind = ErrAddressInUse
	}
	return errorf(kind, "mysqld: mariadbd in %s %s during startup; last lines of %s:\n%s", s.cfg.Dir, state, s.cfg.ErrorLogPath(), tail)
}

// logTail returns the last lines error.log gained after offset.
func (s *Server) logTail(offset int64) string {
	f, err := os.Open(s.cfg.ErrorLogPath())
	if err != nil {
		return "(no error log: " + err.Error() + ")"
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() < offset {
		offset = 0 // truncated meanwhile
	}
	if fi, err := f.Stat(); err == nil && fi.Size()-offset > 64<<10 {
		offset = fi.Size() - 64<<10
	}
	b, err := io.ReadAll(io.NewSectionReader(f, offset, 64<<10))
	if err != nil || len(b) == 0 {
		return "(error log is empty)"
	}
	return lastLines(b, 20)
}

// Stop shuts the server down with SIGTERM and waits until it has exited;
// after cfg.StopTimeout, or when ctx ends, it kills it (and says so in the
// error). Stopping a stopped server does nothing.
func (s *Server) Stop(ctx context.Context) error {
	select {
	case <-s.exited:
		return nil
	default:
	}
	begin := time.Now()
	err := stopPID(ctx, s.pid, s.cfg.StopTimeout, s.signal, s.waitExit)
	if err != nil {
		s.log.Warn("mysqld stop", "pid", s.pid, "err", err)
		return err
	}
	s.log.Info("mysqld stopped", "pid", s.pid, "elapsed", time.Since(begin).Round(time.Millisecond))
	return nil
}

// Kill sends SIGKILL, as a crash would, and waits until the process has
// exited. Killing a stopped server does nothing.
func (s *Server) Kill() error {
	select {
	case <-s.exited:
		return nil
	default:
	}
	if err := s.signal(syscall.SIGKILL); err != nil {
		return fmt.Errorf("mysqld: send SIGKILL to mariadbd (pid %d): %w", s.pid, err)
	}
	if !s.waitExit(context.Background(), killWait) {
		return errorf(ErrStopTimeout, "mysqld: mariadbd (pid %d) still runs %s after SIGKILL; check the process with ps", s.pid, killWait)
	}
	s.log.Info("mysqld killed", "pid", s.pid)
	return nil
}

// signal sends sig to the process; an exited process is no error.
func (s *Server) signal(sig syscall.Signal) error {
	if err := s.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	return nil
}

// waitExit waits until the process has exited, d has passed or ctx ends,
// and reports whether it exited.
func (s *Server) waitExit(ctx context.Context, d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-s.exited:
		return true
	case <-timer.C:
	case <-ctx.Done():
	}
	select {
	case <-s.exited:
		return true
	default:
		return false
	}
}

// Done is closed once the process has exited.
func (s *Server) Done() <-chan struct{} { return s.exited }

// PID is the process id of mariadbd.
func (s *Server) PID() int { return s.pid }

// Config is the configuration the server runs with, defaults applied.
func (s *Server) Config() Config { return s.cfg }

// Dir is the instance folder.
func (s *Server) Dir() string { return s.cfg.Dir }

// Socket is the path of the unix socket.
func (s *Server) Socket() string { return s.cfg.SocketPath() }

// Addr is the TCP address, "127.x.y.z:port".
func (s *Server) Addr() string { return s.cfg.Addr() }

// DSN is a go-sql-driver/mysql data source name for user over TCP; db may be
// empty.
func (s *Server) DSN(user, password, db string) string {
	c := mysql.NewConfig()
	c.User, c.Passwd, c.DBName = user, password, db
	c.Net, c.Addr = "tcp", s.Addr()
	return c.FormatDSN()
}

// DB opens a pool to the server as root over TCP. The caller closes it.
func (s *Server) DB() (*sql.DB, error) {
	c, err := mysql.ParseDSN(s.DSN("root", "", ""))
	if err != nil {
		return nil, err
	}
	conn, err := mysql.NewConnector(c)
	if err != nil {
		return nil, err
	}
	return sql.OpenDB(conn), nil
}

// socketDB opens a pool as root over the unix socket.
func (s *Server) socketDB() (*sql.DB, error) {
	c := mysql.NewConfig()
	c.User, c.Net, c.Addr = "root", "unix", s.cfg.SocketPath()
	c.Timeout = 2 * time.Second
	conn, err := mysql.NewConnector(c)
	if err != nil {
		return nil, err
	}
	return sql.OpenDB(conn), nil
}
