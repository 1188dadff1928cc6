package mysqld_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/carbidedb/carbide/internal/mysqld"
	"github.com/carbidedb/carbide/internal/testutil"
)

// Environment of the helper process of TestParentExit.
const (
	helperDirEnv      = "CARBIDE_MYSQLD_HELPER_DIR"
	helperAddrEnv     = "CARBIDE_MYSQLD_HELPER_ADDR"
	helperDetachedEnv = "CARBIDE_MYSQLD_HELPER_DETACHED"
)

// TestHelperStart is not a test: TestParentExit runs the test binary with
// it to start a server and exit, as the sandbox program does.
func TestHelperStart(t *testing.T) {
	dir := os.Getenv(helperDirEnv)
	if dir == "" {
		return // run directly, it has nothing to do
	}
	cfg := mysqld.Config{
		Dir:      dir,
		Address:  os.Getenv(helperAddrEnv),
		ServerID: 9,
		Users:    []mysqld.User{{Name: "tungsten", Password: "secret"}},
		Detached: os.Getenv(helperDetachedEnv) != "",
	}
	if _, err := mysqld.Start(context.Background(), cfg, testutil.Template(t)); err != nil {
		t.Fatal(err)
	}
}

// TestParentExit: a detached server outlives the process that started it
// and is stopped by StopDir; an attached one dies with its parent.
func TestParentExit(t *testing.T) {
	testutil.RequireDB(t)
	for _, detached := range []bool{true, false} {
		t.Run(fmt.Sprintf("detached=%v", detached), func(t *testing.T) {
			t.Parallel()
			dir, err := os.MkdirTemp("", "carbide-parent-")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				if err := mysqld.StopDir(context.Background(), dir, 30*time.Second); err != nil {
					t.Error(err)
				}
				os.RemoveAll(dir)
			})
			cmd := exec.Command(os.Args[0], "-test.run=^TestHelperStart$", "-test.count=1")
			cmd.Env = append(os.Environ(),
				helperDirEnv+"="+dir,
				helperAddrEnv+"="+testutil.FreeAddress(mysqld.DefaultPort))
			if detached {
				cmd.Env = append(cmd.Env, helperDetachedEnv+"=1")
			}
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("helper process: %v\n%s", err, out)
			}

			if !detached {
				testutil.Eventually(t, 10*time.Second, func() error {
					if pid, running := mysqld.ReadPID(dir); running {
						return fmt.Errorf("attached mariadbd (pid %d) still runs after its parent exited", pid)
					}
					return nil
				})
				return
			}
			pid, running := mysqld.ReadPID(dir)
			if !running {
				t.Fatalf("detached mariadbd (pid file says %d) does not run after its parent exited", pid)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			begin := time.Now()
			if err := mysqld.StopDir(ctx, dir, 30*time.Second); err != nil {
				t.Fatalf("StopDir: %v", err)
			}
			// The orphan is reaped late by init; StopDir must not wait for that.
			t.Logf("StopDir of an orphaned mariadbd took %s", time.Since(begin).Round(time.Millisecond))
			if _, running := mysqld.ReadPID(dir); running {
				t.Fatal("ReadPID reports the instance running after StopDir")
			}
		})
	}
}

// TestAddressInUse: a second server on a taken address fails fast with
// ErrAddressInUse (StartMariaDB retries another address on it).
func TestAddressInUse(t *testing.T) {
	t.Parallel()
	first := testutil.StartMariaDB(t)
	cfg := first.Config()
	cfg.Dir = t.TempDir()
	cfg.Logger = nil
	_, err := mysqld.Start(context.Background(), cfg, testutil.Template(t))
	if !errors.Is(err, mysqld.ErrAddressInUse) {
		t.Fatalf("Start on %s, which is taken = %v, want ErrAddressInUse", cfg.Addr(), err)
	}
	if !strings.Contains(err.Error(), "Address already in use") {
		t.Errorf("error does not quote the error log:\n%v", err)
	}
}
