// Package mysqld runs real MariaDB server processes (mariadbd) on loopback
// addresses: for the test harness (internal/testutil), which starts and stops
// them inside a test, and for the sandbox, which starts them detached and
// leaves them running after it exits.
//
// An instance lives in one directory, Config.Dir:
//
//	Dir/my.cnf       written at every Start from the Config (edits are overwritten)
//	Dir/data/        the datadir, binary logs (mysql-bin.*) included
//	Dir/mysqld.sock  the unix socket (or a short path under /tmp when Dir is long)
//	Dir/mysqld.pid   the pid file, read by ReadPID and StopDir
//	Dir/error.log    the server's error log and its stdout/stderr
//	Dir/tmp/         the server's tmpdir
//
// Invariants:
//   - An instance listens only on a 127.x.y.z address; Config.Validate refuses
//     anything else.
//   - A datadir is created once (copied from a Template, or made by
//     mariadb-install-db) and reused by every later Start on the same Dir, so
//     data survives a Stop or a Kill.
//   - Start returns only when the server answers on its unix socket and the
//     configured users exist; users are created with sql_log_bin=0 so they
//     never reach the binary log.
//   - Liveness is read from /proc/PID/stat (a zombie counts as exited), never
//     from kill -0: the init process of our machines reaps orphans late.
//
// The package is Linux only (/proc, Setsid, Pdeathsig). It imports only
// internal/proc, internal/fileutil and internal/netns of Carbide; its only
// dependency outside the standard library is the MySQL
// driver (github.com/go-sql-driver/mysql).
package mysqld
