package mysqld

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"time"
)

// Defaults applied by Config.WithDefaults.
const (
	DefaultPort       = 13306
	DefaultUserHost   = "%"
	DefaultPrivileges = "ALL PRIVILEGES ON *.* WITH GRANT OPTION"

	// AppPrivileges are an application's: what applications run, and
	// nothing that writes past read_only (SUPER, READ_ONLY ADMIN), so
	// fencing a demoted primary stops them.
	AppPrivileges = "SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, INDEX, ALTER, CREATE TEMPORARY TABLES, " +
		"LOCK TABLES, EXECUTE, CREATE VIEW, SHOW VIEW, CREATE ROUTINE, ALTER ROUTINE, EVENT, TRIGGER, PROCESS ON *.*"
	DefaultStartTimeout = 60 * time.Second
	DefaultStopTimeout  = 60 * time.Second

	// maxSocketPath keeps the socket path below the 108-byte sun_path limit
	// with room to spare; a longer path falls back to /tmp.
	maxSocketPath = 100
)

// User is an account that Start creates (or updates) after every start.
type User struct {
	Name     string
	Password string
	// Host is the account's host part; empty means "%".
	Host string
	// Privileges is "<privileges> ON <object>", optionally followed by
	// "WITH GRANT OPTION"; empty means DefaultPrivileges.
	Privileges string
}

// Config describes one mariadbd instance. Zero values mean the defaults that
// WithDefaults fills in.
type Config struct {
	// Dir is the instance home (see the package doc for its layout).
	Dir string
	// Address is the 127.x.y.z address mariadbd binds, or, with NetNS, an
	// address of 198.18.0.0/15 inside that namespace.
	Address string
	// Port is the TCP port; 0 means DefaultPort.
	Port int
	// ServerID is @@server_id; required.
	ServerID uint32
	// AutoIncrementIncrement and AutoIncrementOffset set the server's
	// auto_increment_increment and auto_increment_offset; 0 means 1.
	AutoIncrementIncrement int
	AutoIncrementOffset    int
	// Users are created after every start, idempotently, outside the binlog.
	Users []User
	// Options are extra my.cnf lines ("key=value" or "key") appended to the
	// [mariadbd] group after the generated ones, so they override them.
	Options []string
	// Hostname, when set and running as root, starts mariadbd in a UTS
	// namespace of its own with this host name, so @@hostname names the
	// sandbox host (east1) rather than the machine. Ignored otherwise.
	Hostname string
	// Detached starts mariadbd in a session of its own so that it outlives
	// this process. An attached instance is killed when this process dies.
	Detached bool
	// NetNS, when set, starts mariadbd inside that named network namespace
	// (internal/netns), where Address must exist. It needs Detached: the
	// thread that forks a server into a namespace ends at once, which
	// would fire the parent-death signal.
	NetNS string
	// StartTimeout bounds the wait for the server to answer; 0 means
	// DefaultStartTimeout.
	StartTimeout time.Duration
	// StopTimeout is how long Stop waits after SIGTERM before SIGKILL; 0
	// means DefaultStopTimeout.
	StopTimeout time.Duration
	// Logger receives the package's logs; nil discards them.
	Logger *slog.Logger
}

// WithDefaults returns a copy of c with every zero field that has a default
// set to it, and Dir made absolute.
func (c Config) WithDefaults() Config {
	if c.Dir != "" {
		if abs, err := filepath.Abs(c.Dir); err == nil {
			c.Dir = abs
		}
	}
	if c.Port == 0 {
		c.Port = DefaultPort
	}
	if c.AutoIncrementIncrement == 0 {
		c.AutoIncrementIncrement = 1
	}
	if c.AutoIncrementOffset == 0 {
		c.AutoIncrementOffset = 1
	}
	if c.StartTimeout == 0 {
		c.StartTimeout = DefaultStartTimeout
	}
	if c.StopTimeout == 0 {
		c.StopTimeout = DefaultStopTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	users := make([]User, len(c.Users))
	for i, u := range c.Users {
		if u.Host == "" {
			u.Host = DefaultUserHost
		}
		if u.Privileges == "" {
			u.Privileges = DefaultPrivileges
		}
		users[i] = u
	}
	c.Users = users
	c.Options = append([]string(nil), c.Options...)
	return c
}

// Validate reports the first problem of c as one sentence naming the field
// and the fix. Zero values that have defaults are accepted.
func (c *Config) Validate() error {
	if c.Dir == "" {
		return errorf(ErrInvalidConfig, "mysqld: Dir is empty; set it to the instance's home directory")
	}
	if c.Address == "" {
		return errorf(ErrInvalidConfig, "mysqld: Address is empty; set it to a loopback address such as 127.0.1.1")
	}
	if c.NetNS != "" {
		if ip := net.ParseIP(c.Address).To4(); ip == nil || ip[0] != 198 || ip[1]&^1 != 18 {
			return errorf(ErrInvalidConfig, "mysqld: Address %q of a server in a network namespace is not in 198.18.0.0/15", c.Address)
		}
	} else if !IsLoopback(c.Address) {
		return errorf(ErrInvalidConfig, "mysqld: Address %q is not a 127.x.y.z address; use a loopback address such as 127.0.1.1", c.Address)
	}
	if c.Port < 0 || c.Port > 65535 {
		return errorf(ErrInvalidConfig, "mysqld: Port %d is out of range; use 1-65535, or 0 for %d", c.Port, DefaultPort)
	}
	if c.ServerID == 0 {
		return errorf(ErrInvalidConfig, "mysqld: ServerID is 0; set it to a number above 0, unique in the topology")
	}
	if c.AutoIncrementIncrement < 0 || c.AutoIncrementIncrement > 65535 {
		return errorf(ErrInvalidConfig, "mysqld: AutoIncrementIncrement %d is out of range; use 1-65535, or 0 for 1", c.AutoIncrementIncrement)
	}
	if c.AutoIncrementOffset < 0 || c.AutoIncrementOffset > 65535 {
		return errorf(ErrInvalidConfig, "mysqld: AutoIncrementOffset %d is out of range; use 1-65535, or 0 for 1", c.AutoIncrementOffset)
	}
	if c.StartTimeout < 0 || c.StopTimeout < 0 {
		return errorf(ErrInvalidConfig, "mysqld: StartTimeout and StopTimeout must not be negative; use 0 for the defaults")
	}
	for i, u := range c.Users {
		if u.Name == "" {
			return errorf(ErrInvalidConfig, "mysqld: Users[%d] has an empty Name; give every user a name", i)
		}
		if _, _, err := splitPrivileges(u.Privileges); u.Privileges != "" && err != nil {
			return errorf(ErrInvalidConfig, "mysqld: Users[%d] (%s): %v", i, u.Name, err)
		}
	}
	for i, o := range c.Options {
		o = strings.TrimSpace(o)
		if o == "" || strings.ContainsAny(o, "\n\r") || strings.HasPrefix(o, "[") {
			return errorf(ErrInvalidConfig, "mysqld: Options[%d] %q is not one my.cnf line; write it as key=value", i, c.Options[i])
		}
	}
	return nil
}

// IsLoopback reports whether addr is an IPv4 address in 127.0.0.0/8.
func IsLoopback(addr string) bool {
	ip := net.ParseIP(addr).To4()
	return ip != nil && ip[0] == 127
}

// DataDir is the instance's datadir.
func (c Config) DataDir() string { return filepath.Join(c.Dir, "data") }

// TmpDir is the instance's own tmpdir: MariaDB names its temporary files
// in ways that can collide between servers sharing /tmp.
func (c Config) TmpDir() string { return filepath.Join(c.Dir, "tmp") }

// CnfPath is the instance's my.cnf.
func (c Config) CnfPath() string { return cnfPath(c.Dir) }

// PIDPath is the instance's pid file.
func (c Config) PIDPath() string { return pidPath(c.Dir) }

// ErrorLogPath is the instance's error log.
func (c Config) ErrorLogPath() string { return filepath.Join(c.Dir, "error.log") }

// SocketPath is Dir/mysqld.sock, or /tmp/carbide-mysqld-<hash>.sock when that
// path is too long for a unix socket. The fallback depends only on Dir, so a
// restarted instance gets the same socket.
func (c Config) SocketPath() string {
	p := filepath.Join(c.Dir, "mysqld.sock")
	if len(p) < maxSocketPath {
		return p
	}
	sum := sha256.Sum256([]byte(c.Dir))
	return filepath.Join("/tmp", "carbide-mysqld-"+hex.EncodeToString(sum[:8])+".sock")
}

func cnfPath(dir string) string { return filepath.Join(dir, "my.cnf") }
func pidPath(dir string) string { return filepath.Join(dir, "mysqld.pid") }

// Addr is "Address:Port".
func (c Config) Addr() string { return net.JoinHostPort(c.Address, fmt.Sprint(c.Port)) }

// cnf renders my.cnf. c must have its defaults applied.
func (c Config) cnf() []byte {
	var b strings.Builder
	line := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	line("# Written by Carbide (internal/mysqld) at every start; edits are overwritten.")
	line("[mariadbd]")
	line("datadir=%s", c.DataDir())
	line("socket=%s", c.SocketPath())
	line("pid-file=%s", c.PIDPath())
	line("log-error=%s", c.ErrorLogPath())
	line("tmpdir=%s", c.TmpDir())
	line("bind-address=%s", c.Address)
	line("port=%d", c.Port)
	line("skip-name-resolve")
	line("server-id=%d", c.ServerID)
	line("auto-increment-increment=%d", c.AutoIncrementIncrement)
	line("auto-increment-offset=%d", c.AutoIncrementOffset)
	line("log-bin=mysql-bin")
	line("relay-log=relay-bin")
	line("binlog-format=ROW")
	line("binlog_row_image=FULL")
	line("binlog_row_metadata=FULL")
	line("sync_binlog=1")
	line("innodb_flush_log_at_trx_commit=1")
	line("character-set-server=utf8mb4")
	line("innodb_buffer_pool_size=64M")
	line("innodb_log_file_size=%s", templateLogFileSize)
	line("performance_schema=OFF")
	line("max_connections=500")
	// The largest: a row the application can write must reach every host
	// (a replica's limit below the primary's stops its applier).
	line("max_allowed_packet=1G")
	for _, o := range c.Options {
		line("%s", strings.TrimSpace(o))
	}
	line("")
	line("[client]")
	line("socket=%s", c.SocketPath())
	line("user=root")
	return []byte(b.String())
}
