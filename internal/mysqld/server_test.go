package mysqld_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/carbidedb/carbide/internal/mysqld"
	"github.com/carbidedb/carbide/internal/testutil"
)

// TestKillThenStartKeepsData: a crash (SIGKILL) and a new Start on the same
// Dir reuse the datadir, and committed rows survive.
func TestKillThenStartKeepsData(t *testing.T) {
	t.Parallel()
	srv := testutil.StartMariaDB(t)
	db := testutil.DB(t, srv)
	testutil.Exec(t, db, "CREATE DATABASE app")
	testutil.Exec(t, db, "CREATE TABLE app.t (id INT PRIMARY KEY, v VARCHAR(20))")
	testutil.Exec(t, db, "INSERT INTO app.t VALUES (1, 'survives')")
	ibdata, err := os.Stat(filepath.Join(srv.Config().DataDir(), "ibdata1"))
	if err != nil {
		t.Fatal(err)
	}

	if err := srv.Kill(); err != nil {
		t.Fatalf("Kill: %v", err)
	}
	if pid, running := mysqld.ReadPID(srv.Dir()); running {
		t.Fatalf("ReadPID after Kill = %d, running", pid)
	}

	again := testutil.RestartMariaDB(t, srv)
	after, err := os.Stat(filepath.Join(again.Config().DataDir(), "ibdata1"))
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(ibdata, after) {
		t.Errorf("the restart made a new datadir instead of reusing %s", srv.Config().DataDir())
	}
	db2 := testutil.DB(t, again)
	if got := testutil.QueryString(t, db2, "SELECT v FROM app.t WHERE id = 1"); got != "survives" {
		t.Errorf("row after kill and restart = %q, want survives", got)
	}
	// The users were created again, idempotently.
	checkLogin(t, again, "tungsten", "secret")
}

// TestDetached: a detached instance runs in a session of its own, is found
// by ReadPID and stopped by StopDir, as `sandbox down` does.
func TestDetached(t *testing.T) {
	testutil.RequireDB(t)
	t.Parallel()
	dir, err := os.MkdirTemp("", "carbide-detached-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		mysqld.StopDir(context.Background(), dir, 30*time.Second)
		os.RemoveAll(dir)
	})
	cfg := mysqld.Config{
		Dir:      dir,
		Address:  testutil.FreeAddress(mysqld.DefaultPort),
		ServerID: 77,
		Users:    []mysqld.User{{Name: "tungsten", Password: "secret"}},
		Detached: true,
		Logger:   testutil.Logger(t),
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	begin := time.Now()
	srv, err := mysqld.Start(ctx, cfg, nil) // nil: mariadb-install-db into the datadir
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Logf("detached start with mariadb-install-db took %s", time.Since(begin).Round(time.Millisecond))

	pid, running := mysqld.ReadPID(dir)
	if !running || pid != srv.PID() {
		t.Fatalf("ReadPID = %d, %v; want %d, true", pid, running, srv.PID())
	}
	if sid := sessionID(t, pid); sid != pid {
		t.Errorf("detached mariadbd has session id %d, want its own (%d)", sid, pid)
	}
	checkLogin(t, srv, "tungsten", "secret")

	// Starting a second server on a running Dir is refused.
	if _, err := mysqld.Start(ctx, cfg, nil); !errors.Is(err, mysqld.ErrAlreadyRunning) {
		t.Errorf("second Start on a running Dir = %v, want ErrAlreadyRunning", err)
	}

	if err := mysqld.StopDir(ctx, dir, 30*time.Second); err != nil {
		t.Fatalf("StopDir: %v", err)
	}
	if _, running := mysqld.ReadPID(dir); running {
		t.Fatal("ReadPID after StopDir reports a running instance")
	}
	select {
	case <-srv.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("mariadbd did not exit after StopDir")
	}
	if err := mysqld.StopDir(ctx, dir, time.Second); err != nil {
		t.Errorf("StopDir on a stopped instance: %v", err)
	}
	log, err := os.ReadFile(srv.Config().ErrorLogPath())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(log), "Shutdown complete") {
		t.Errorf("error.log does not show a clean shutdown:\n%s", log)
	}
}

// TestStartFailsFast: a server that cannot start is reported with the tail
// of its error log, without waiting for the start timeout.
func TestStartFailsFast(t *testing.T) {
	testutil.RequireDB(t)
	t.Parallel()
	dir := t.TempDir()
	cfg := mysqld.Config{
		Dir:      dir,
		Address:  testutil.FreeAddress(mysqld.DefaultPort),
		ServerID: 5,
		Options:  []string{"no-such-option=1"},
	}
	begin := time.Now()
	_, err := mysqld.Start(context.Background(), cfg, nil)
	if !errors.Is(err, mysqld.ErrExited) {
		t.Fatalf("Start with a bad option = %v, want ErrExited", err)
	}
	if !strings.Contains(err.Error(), "no-such-option") {
		t.Errorf("Start error does not show the error log's complaint:\n%v", err)
	}
	if d := time.Since(begin); d > 20*time.Second {
		t.Errorf("Start took %s to report the failure", d)
	}
}

func checkLogin(t *testing.T, srv *mysqld.Server, user, password string) {
	t.Helper()
	db, err := sql.Open("mysql", srv.DSN(user, password, ""))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var current string
	if err := db.QueryRow("SELECT CURRENT_USER()").Scan(&current); err != nil {
		t.Fatalf("log in as %s over TCP to %s: %v", user, srv.Addr(), err)
	}
	if !strings.HasPrefix(current, user+"@") {
		t.Errorf("logged in as %s, want %s", current, user)
	}
}

// sessionID reads field 6 (session) of /proc/PID/stat.
func sessionID(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	sid, err := strconv.Atoi(fields[3]) // state ppid pgrp session
	if err != nil {
		t.Fatal(err)
	}
	return sid
}

// TestLongDir: a Dir too long for a unix socket path gets a short socket
// under /tmp, found again by a restart.
func TestLongDir(t *testing.T) {
	testutil.RequireDB(t)
	t.Parallel()
	dir := filepath.Join(t.TempDir(), strings.Repeat("long-folder-name-", 6))
	cfg := mysqld.Config{
		Dir:      dir,
		Address:  testutil.FreeAddress(mysqld.DefaultPort),
		ServerID: 3,
		Logger:   testutil.Logger(t),
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv, err := mysqld.Start(ctx, cfg, testutil.Template(t))
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		srv.Stop(context.Background())
		os.Remove(srv.Socket())
	})
	if !strings.HasPrefix(srv.Socket(), "/tmp/carbide-mysqld-") || len(srv.Socket()) >= 100 {
		t.Errorf("socket %s is not the short fallback under /tmp", srv.Socket())
	}
	if fi, err := os.Stat(srv.Socket()); err != nil || fi.Mode()&os.ModeSocket == 0 {
		t.Fatalf("no socket at %s: %v", srv.Socket(), err)
	}
	db, err := srv.DB()
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if got := testutil.QueryString(t, db, "SELECT @@socket"); got != srv.Socket() {
		t.Errorf("@@socket = %s, want %s", got, srv.Socket())
	}
}
