package testutil

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/carbidedb/carbide/internal/mysqld"
)

// RequireDBEnv, when set to anything non-empty, turns a missing MariaDB from
// a skip into a failure.
const RequireDBEnv = "CARBIDE_REQUIRE_DB"

const notFound = "mariadbd not found; install MariaDB (scripts/install-deps.sh) or set CARBIDE_REQUIRE_DB=1 to fail instead"

// startAttempts is how many random addresses StartMariaDB tries before it
// gives up on bind failures.
const startAttempts = 5

// startTimeout bounds one StartMariaDB.
const startTimeout = 60 * time.Second

// SampleUsers are the accounts of the sample tungsten.ini: the
// replication-user with all privileges, the application-user with an
// application's (as the sandbox makes them).
var SampleUsers = []mysqld.User{
	{Name: "tungsten", Password: "secret"},
	{Name: "app_user", Password: "secret", Privileges: mysqld.AppPrivileges},
}

// RequireDB skips the test when the MariaDB programs are not installed, or
// fails it when CARBIDE_REQUIRE_DB is set.
func RequireDB(t testing.TB) {
	t.Helper()
	if _, err := mysqld.LookPath(); err != nil {
		t.Log(err)
		if os.Getenv(RequireDBEnv) != "" {
			t.Fatal(notFound)
		}
		t.Skip(notFound)
	}
}

// Require stops a test that cannot run here: a failure naming what is
// missing when CARBIDE_REQUIRE_DB is set (make test, CI: there everything
// a test needs is installed and it runs as root), else a skip.
func Require(t testing.TB, ok bool, missing string) {
	t.Helper()
	if ok {
		return
	}
	if os.Getenv(RequireDBEnv) != "" {
		t.Fatalf("%s (make test installs the tools it needs and runs as root in CI)", missing)
	}
	t.Skip(missing)
}

// RequireSysbench stops a test (as Require does) when sysbench is not
// installed.
func RequireSysbench(t testing.TB) {
	t.Helper()
	_, err := exec.LookPath("sysbench")
	Require(t, err == nil, "sysbench not found; install it (scripts/install-deps.sh)")
}

// Option changes how StartMariaDB configures a server.
type Option func(*options)

type options struct {
	address  string
	port     int
	serverID uint32
	incr     int
	offset   int
	users    []mysqld.User
	extra    []string
}

// WithAddress makes the server listen on addr:port instead of a random
// 127.A.B.C address on port 13306. A bind failure is then not retried.
func WithAddress(addr string, port int) Option {
	return func(o *options) { o.address, o.port = addr, port }
}

// WithServerID sets @@server_id instead of a number unique in the process.
func WithServerID(id uint32) Option { return func(o *options) { o.serverID = id } }

// WithAutoIncrement sets auto_increment_increment and auto_increment_offset.
func WithAutoIncrement(increment, offset int) Option {
	return func(o *options) { o.incr, o.offset = increment, offset }
}

// WithUsers replaces SampleUsers as the accounts the server gets.
func WithUsers(users ...mysqld.User) Option {
	return func(o *options) { o.users = users }
}

// WithOptions adds my.cnf lines ("key=value") to the server's [mariadbd] group.
func WithOptions(lines ...string) Option {
	return func(o *options) { o.extra = append(o.extra, lines...) }
}

// nextServerID makes default server ids unique in the process; they start
// above firstServerID so as not to collide with small ids a test picks itself.
var nextServerID atomic.Uint32

const firstServerID = 1000

// StartMariaDB starts a real mariadbd for the test on a temporary datadir
// copied from the process's template, and registers a cleanup that stops it
// and removes its folder. It skips (or fails, see RequireDB) when MariaDB is
// not installed.
func StartMariaDB(t testing.TB, opts ...Option) *mysqld.Server {
	t.Helper()
	RequireDB(t)
	o := options{users: SampleUsers}
	for _, opt := range opts {
		opt(&o)
	}
	if o.serverID == 0 {
		o.serverID = firstServerID + nextServerID.Add(1)
	}
	tmpl := Template(t)

	dir, err := os.MkdirTemp("", "carbide-mysqld-")
	if err != nil {
		t.Fatalf("create instance folder: %v", err)
	}
	Claim(t, dir)
	cfg := mysqld.Config{
		Dir:                    dir,
		Address:                o.address,
		Port:                   o.port,
		ServerID:               o.serverID,
		AutoIncrementIncrement: o.incr,
		AutoIncrementOffset:    o.offset,
		Users:                  o.users,
		Options:                o.extra,
		Logger:                 Logger(t),
	}
	var srv *mysqld.Server
	t.Cleanup(func() {
		if srv != nil {
			stopAndRemove(t, srv)
			return
		}
		os.RemoveAll(dir)
	})

	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	begin := time.Now()
	for attempt := 1; ; attempt++ {
		if o.address == "" {
			cfg.Address = FreeAddress(mysqld.DefaultPort)
		}
		srv, err = mysqld.Start(ctx, cfg, tmpl)
		if err == nil {
			break
		}
		if o.address != "" || !errors.Is(err, mysqld.ErrAddressInUse) || attempt == startAttempts {
			t.Fatalf("start mariadbd: %v", err)
		}
		t.Logf("%s:%d is taken; trying another address", cfg.Address, mysqld.DefaultPort)
	}
	t.Logf("mariadbd %s (server-id %d, pid %d) ready in %s", srv.Addr(), cfg.ServerID, srv.PID(), time.Since(begin).Round(time.Millisecond))
	return srv
}

// RestartMariaDB starts srv's instance again on its datadir (after a Stop or
// a Kill) and registers a cleanup that stops the new process; the folder is
// still removed by the cleanup of the StartMariaDB that made it.
func RestartMariaDB(t testing.TB, srv *mysqld.Server) *mysqld.Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	begin := time.Now()
	again, err := mysqld.Start(ctx, srv.Config(), nil)
	if err != nil {
		t.Fatalf("restart mariadbd: %v", err)
	}
	t.Cleanup(func() {
		if err := again.Stop(context.Background()); err != nil {
			t.Errorf("stop mariadbd: %v", err)
		}
	})
	t.Logf("mariadbd %s (pid %d) restarted in %s", again.Addr(), again.PID(), time.Since(begin).Round(time.Millisecond))
	return again
}

// stopAndRemove stops srv and removes its folder and socket.
func stopAndRemove(t testing.TB, srv *mysqld.Server) {
	if err := srv.Stop(context.Background()); err != nil {
		t.Errorf("stop mariadbd: %v", err)
	}
	os.Remove(srv.Socket()) // outside Dir when Dir is long
	if err := os.RemoveAll(srv.Dir()); err != nil {
		t.Errorf("remove instance folder: %v", err)
	}
}

// FreeAddress returns a random 127.A.B.C address, A in 100..199, on which
// port could be bound a moment ago. Another process may still take it
// first; StartMariaDB retries then.
func FreeAddress(port int) string {
	var addr string
	for range 100 {
		addr = fmt.Sprintf("127.%d.%d.%d", 100+rand.IntN(100), rand.IntN(256), 1+rand.IntN(254))
		l, err := net.Listen("tcp", net.JoinHostPort(addr, strconv.Itoa(port)))
		if err == nil {
			l.Close()
			return addr
		}
	}
	return addr // every probe failed: let the server's own bind error explain why
}

// The template is resolved once per process (and kept across processes, see
// the package doc).
var (
	templateOnce sync.Once
	templateVal  *mysqld.Template
	templateErr  error
)

// Template returns the process's template datadir, making it on first use.
func Template(t testing.TB) *mysqld.Template {
	t.Helper()
	templateOnce.Do(func() {
		dir, err := templateDir()
		if err != nil {
			templateErr = err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
		defer cancel()
		templateVal, templateErr = mysqld.NewTemplate(ctx, dir)
	})
	if templateErr != nil {
		t.Fatalf("make the MariaDB template datadir: %v", templateErr)
	}
	return templateVal
}

// templateDir is ~/.cache/carbide/<mysqld.TemplateName>, or a folder under
// the temporary folder when there is no cache folder.
func templateDir() (string, error) {
	name, err := mysqld.TemplateName()
	if err != nil {
		return "", err
	}
	base, err := os.UserCacheDir()
	if err != nil {
		base = os.TempDir()
	}
	return filepath.Join(base, "carbide", name), nil
}
