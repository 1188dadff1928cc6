package extract

import (
	"fmt"
	"hash/fnv"
	"log/slog"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/carbidedb/carbide/internal/position"
)

// Defaults applied by New to zero Config fields.
const (
	DefaultFragmentRows     = 1000
	DefaultFragmentBytes    = 1 << 20
	DefaultSpillBytes       = 16 << 20
	DefaultLoopSchemaPrefix = "tungsten_"
	DefaultHeartbeatPeriod  = 5 * time.Second
	DefaultEventBuffer      = 1024
	DefaultEventBufferBytes = 16 << 20
	DefaultDialTimeout      = 10 * time.Second

	// serverIDBase is the top of the default replica server ids: real
	// servers are numbered from 1 up, the extractor from 0x7fff0000 up.
	serverIDBase = 0x7fff0000

	FlavorMariaDB = "mariadb"
	FlavorMySQL   = "mysql"
)

// Filtered describes a transaction that loop prevention dropped.
type Filtered struct {
	// Pos is the end of the transaction in the binlog.
	Pos position.Position
	// Reason names what gave it away: "tungsten_east.trep_commit_seqno" or
	// "origin=east".
	Reason string
}

// Config configures an Extractor. Zero fields take the defaults listed on
// each; Validate explains what is wrong with the rest.
type Config struct {
	// Addr is the local database, "host:port"; User and Password a user
	// with REPLICATION SLAVE, REPLICATION CLIENT (binlog monitor) and
	// SELECT on information_schema.
	Addr, User, Password string
	// ServerID is the replica server id the dump registers with. It must
	// differ from every real server's. Zero means 0x7fff0000 plus a hash of
	// Service, SourceID and Addr.
	ServerID uint32
	// Flavor is "mariadb" or "mysql"; empty means detect it from VERSION().
	Flavor string
	// Service is the origin_service of extracted events (the local site).
	Service string
	// SourceID is the host name put in source_id.
	SourceID string
	// FragmentRows and FragmentBytes bound one fragment of a transaction:
	// at most that many rows (a statement counts as one), and that many
	// bytes of values. Defaults 1000 and 1 MiB.
	FragmentRows  int
	FragmentBytes int
	// SpillBytes bounds the memory a transaction takes while it is read:
	// once its completed fragments weigh more — their bytes as
	// FragmentBytes counts them, plus 64 bytes for every row and value,
	// which cost about that much decoded whatever their size — they move
	// to a spill file until the commit, which sends the transaction in
	// parts of about that weight. Default 16 MiB.
	SpillBytes int
	// SpillDir is the directory of spill files, named
	// carbide-extract-<Service>-*.spill; each is removed when its
	// transaction is sent or dropped, or Run returns. It needs room for
	// the largest transaction. Default os.TempDir().
	SpillDir string
	// LoopSchemaPrefix starts the replicator's tracking schemas
	// ("tungsten_" → tungsten_<service>). Default "tungsten_".
	LoopSchemaPrefix string
	// HeartbeatPeriod asks the server for a heartbeat when the binlog is
	// idle; a stream silent for four periods is declared broken. Default 5 s.
	HeartbeatPeriod time.Duration
	// EventBuffer is how many decoded binlog events may wait between the
	// network reader and the converter, and EventBufferBytes their bytes
	// as read (one event passes however large). Defaults 1024 and 16 MiB.
	EventBuffer      int
	EventBufferBytes int
	// DialTimeout bounds connecting to the database. Default 10 s.
	DialTimeout time.Duration
	// OnFilter, when set, is called (on Run's goroutine) for every
	// transaction that loop prevention dropped.
	OnFilter func(Filtered)
	// Logger receives the package's logs and go-mysql's (its INFO lowered
	// to DEBUG). Nil discards them.
	Logger *slog.Logger
	// Clock gives extract_time_us. Default time.Now.
	Clock func() time.Time
}

// DefaultConfig returns a Config with every default filled in except the
// connection, Service and SourceID.
func DefaultConfig() Config {
	return Config{}.withDefaults()
}

// withDefaults returns a copy of c with its zero fields set to defaults.
func (c Config) withDefaults() Config {
	if c.FragmentRows == 0 {
		c.FragmentRows = DefaultFragmentRows
	}
	if c.FragmentBytes == 0 {
		c.FragmentBytes = DefaultFragmentBytes
	}
	if c.SpillBytes == 0 {
		c.SpillBytes = DefaultSpillBytes
	}
	if c.SpillDir == "" {
		c.SpillDir = os.TempDir()
	}
	if c.LoopSchemaPrefix == "" {
		c.LoopSchemaPrefix = DefaultLoopSchemaPrefix
	}
	if c.HeartbeatPeriod == 0 {
		c.HeartbeatPeriod = DefaultHeartbeatPeriod
	}
	if c.EventBuffer == 0 {
		c.EventBuffer = DefaultEventBuffer
	}
	if c.EventBufferBytes == 0 {
		c.EventBufferBytes = DefaultEventBufferBytes
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	if c.ServerID == 0 && c.Addr != "" {
		h := fnv.New32a()
		fmt.Fprintf(h, "%s\x00%s\x00%s", c.Service, c.SourceID, c.Addr)
		c.ServerID = serverIDBase + h.Sum32()&0xffff
	}
	return c
}

// Validate reports the first problem of c as a sentence naming the field
// and the fix.
func (c *Config) Validate() error {
	host, port, err := net.SplitHostPort(c.Addr)
	if err != nil || host == "" {
		return errorf(ErrConfig, "Addr %q is not host:port; set it to the local database, such as 127.0.1.1:13306", c.Addr)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return errorf(ErrConfig, "Addr %q has no valid port; use 1-65535", c.Addr)
	}
	if c.User == "" {
		return errorf(ErrConfig, "User is empty; set it to the replication user (replication-user in tungsten.ini)")
	}
	if c.Service == "" {
		return errorf(ErrConfig, "Service is empty; set it to the local data service, such as east")
	}
	if c.SourceID == "" {
		return errorf(ErrConfig, "SourceID is empty; set it to this host's name, such as east1")
	}
	switch c.Flavor {
	case "", FlavorMariaDB, FlavorMySQL:
	default:
		return errorf(ErrConfig, "Flavor %q is unknown; use %q, %q, or leave it empty to detect", c.Flavor, FlavorMariaDB, FlavorMySQL)
	}
	if c.ServerID == 0 {
		return errorf(ErrConfig, "ServerID is 0; leave it unset for the default or pick a number unused by any server")
	}
	if c.FragmentRows < 1 || c.FragmentBytes < 1 {
		return errorf(ErrConfig, "FragmentRows (%d) and FragmentBytes (%d) must be positive; leave them 0 for %d rows and %d bytes", c.FragmentRows, c.FragmentBytes, DefaultFragmentRows, DefaultFragmentBytes)
	}
	if c.SpillBytes < 1 {
		return errorf(ErrConfig, "SpillBytes (%d) must be positive; leave it 0 for %d bytes", c.SpillBytes, DefaultSpillBytes)
	}
	if fi, err := os.Stat(c.SpillDir); err != nil || !fi.IsDir() {
		return errorf(ErrConfig, "SpillDir %q is not a directory; create it or leave SpillDir empty for %s", c.SpillDir, os.TempDir())
	}
	if c.HeartbeatPeriod < time.Millisecond || c.EventBuffer < 1 || c.EventBufferBytes < 1 || c.DialTimeout < 0 {
		return errorf(ErrConfig, "HeartbeatPeriod (%s), EventBuffer (%d), EventBufferBytes (%d) and DialTimeout (%s) must be positive; leave them 0 for the defaults", c.HeartbeatPeriod, c.EventBuffer, c.EventBufferBytes, c.DialTimeout)
	}
	return nil
}

// txnLimits are the limits of the transactions of a Run.
func (c *Config) txnLimits() txnLimits {
	return txnLimits{maxRows: c.FragmentRows, maxBytes: c.FragmentBytes, spillBytes: c.SpillBytes,
		spillDir: c.SpillDir, spillPattern: "carbide-extract-" + c.Service + "-*.spill", log: c.Logger}
}
