package testutil

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/carbidedb/carbide/internal/mysqld"
)

// TestTwoServers starts two servers at once and checks that each runs as
// configured and lets the sample users in over TCP.
func TestTwoServers(t *testing.T) {
	RequireDB(t)
	var mu sync.Mutex
	addrs := map[string]string{}
	t.Run("group", func(t *testing.T) {
		for _, tc := range []struct {
			name     string
			serverID uint32
			offset   int
		}{{"east1", 11, 1}, {"west1", 12, 2}} {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				begin := time.Now()
				srv := StartMariaDB(t, WithServerID(tc.serverID), WithAutoIncrement(2, tc.offset))
				elapsed := time.Since(begin)
				t.Logf("StartMariaDB took %s", elapsed.Round(time.Millisecond))
				if elapsed > 20*time.Second {
					t.Errorf("StartMariaDB took %s, more than the 20 s sanity bound", elapsed)
				}
				mu.Lock()
				addrs[tc.name] = srv.Addr()
				mu.Unlock()

				for _, u := range SampleUsers {
					db, err := sql.Open("mysql", srv.DSN(u.Name, u.Password, ""))
					if err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() { db.Close() })
					if got := QueryString(t, db, "SELECT CURRENT_USER()"); got != u.Name+"@%" {
						t.Errorf("CURRENT_USER() = %q, want %s@%%", got, u.Name)
					}
				}
				db, err := sql.Open("mysql", srv.DSN("tungsten", "secret", ""))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { db.Close() })
				for v, want := range map[string]string{
					"@@binlog_format":                  "ROW",
					"@@binlog_row_image":               "FULL",
					"@@binlog_row_metadata":            "FULL",
					"@@server_id":                      strconv.Itoa(int(tc.serverID)),
					"@@auto_increment_increment":       "2",
					"@@auto_increment_offset":          strconv.Itoa(tc.offset),
					"@@log_bin":                        "1",
					"@@sync_binlog":                    "1",
					"@@innodb_flush_log_at_trx_commit": "1",
					"@@character_set_server":           "utf8mb4",
					"@@bind_address":                   strings.Split(srv.Addr(), ":")[0],
					"@@port":                           "13306",
				} {
					if got := QueryString(t, db, "SELECT "+v); got != want {
						t.Errorf("%s = %q, want %q", v, got, want)
					}
				}
				// The users did not reach the binary log.
				var binlog strings.Builder
				rows, err := db.Query("SHOW BINLOG EVENTS")
				if err != nil {
					t.Fatal(err)
				}
				defer rows.Close()
				cols, _ := rows.Columns()
				vals := make([]sql.RawBytes, len(cols))
				ptrs := make([]any, len(cols))
				for i := range vals {
					ptrs[i] = &vals[i]
				}
				for rows.Next() {
					if err := rows.Scan(ptrs...); err != nil {
						t.Fatal(err)
					}
					fmt.Fprintf(&binlog, "%s\n", vals[len(vals)-1])
				}
				if strings.Contains(strings.ToUpper(binlog.String()), "USER") {
					t.Errorf("user statements reached the binlog:\n%s", binlog.String())
				}
			})
		}
	})
	if len(addrs) == 2 && addrs["east1"] == addrs["west1"] {
		t.Errorf("both servers listened on %s", addrs["east1"])
	}
}

// TestCleanupRemovesEverything: when a test ends its server is gone, and so
// are its folder and socket.
func TestCleanupRemovesEverything(t *testing.T) {
	RequireDB(t)
	t.Parallel()
	var srv *mysqld.Server
	t.Run("inner", func(t *testing.T) {
		srv = StartMariaDB(t)
	})
	if srv == nil {
		t.Fatal("the inner test did not start a server")
	}
	if _, err := os.Stat(srv.Dir()); !os.IsNotExist(err) {
		t.Errorf("instance folder %s still exists after cleanup (stat: %v)", srv.Dir(), err)
	}
	if _, err := os.Stat(srv.Socket()); !os.IsNotExist(err) {
		t.Errorf("socket %s still exists after cleanup (stat: %v)", srv.Socket(), err)
	}
	select {
	case <-srv.Done():
	default:
		t.Fatalf("mariadbd (pid %d) still runs after cleanup", srv.PID())
	}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", srv.PID())); err == nil && strings.Contains(string(b), srv.Dir()) {
		t.Errorf("mariadbd (pid %d) still in /proc after cleanup: %q", srv.PID(), b)
	}
}

// TestStopIsIdempotent: Stop, then Stop again, then the cleanup's Stop.
func TestStopIsIdempotent(t *testing.T) {
	RequireDB(t)
	t.Parallel()
	srv := StartMariaDB(t, WithUsers())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	begin := time.Now()
	if err := srv.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	t.Logf("Stop took %s", time.Since(begin).Round(time.Millisecond))
	if err := srv.Stop(ctx); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if err := srv.Kill(); err != nil {
		t.Fatalf("Kill after Stop: %v", err)
	}
}
