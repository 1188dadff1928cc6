package thl

import (
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Defaults.
const (
	DefaultSegmentSize   = 64 << 20
	DefaultIndexInterval = 64 << 10
	// MaxRecordSize bounds a record's payload. It is part of the format:
	// a larger length is damage, whatever a Config says. A fragment holds
	// one row at least, so the bound is above the largest row MariaDB
	// can log and send (max_allowed_packet is at most 1 GiB) with room for
	// the event's own fields, and below gRPC's 2 GiB message limit (see
	// stream.MaxMessageSize). It was 64 MiB before rows of any size were
	// replicated: a reader of that older version calls a larger record
	// damage.
	MaxRecordSize = 1536 << 20

	minSegmentSize   = 1 << 10
	maxSegmentSize   = 1 << 40
	minIndexInterval = 1 << 8
)

// Config configures a Store. Zero fields take their defaults.
type Config struct {
	// Dir is the store's directory; Open creates it unless ReadOnly.
	Dir string
	// SegmentSize: a segment is sealed and a new one started before the
	// first transaction that begins at or past this size.
	SegmentSize int64
	// IndexInterval: one index entry per this many bytes of data; seeking
	// reads at most about this much.
	IndexInterval int64
	// Logger receives repair and rebuild notes. Default: discard.
	Logger *slog.Logger
	// Clock tells the time for PurgeOlderThan. Default: time.Now.
	Clock func() time.Time
	// ReadOnly opens a snapshot: no lock, no repair, no writes; readers
	// end with io.EOF instead of waiting.
	ReadOnly bool

	// noSync skips every fsync: for this package's fuzz targets only.
	noSync bool
	// maxRecord, when set, is a lower bound than MaxRecordSize on what
	// Append takes: for this package's tests only.
	maxRecord int
}

// DefaultConfig returns the configuration of a store in dir.
func DefaultConfig(dir string) Config {
	return Config{
		Dir:           dir,
		SegmentSize:   DefaultSegmentSize,
		IndexInterval: DefaultIndexInterval,
		Logger:        slog.New(slog.DiscardHandler),
		Clock:         time.Now,
	}
}

// withDefaults returns c with zero fields set to their defaults.
func (c Config) withDefaults() Config {
	d := DefaultConfig(c.Dir)
	if c.SegmentSize == 0 {
		c.SegmentSize = d.SegmentSize
	}
	if c.IndexInterval == 0 {
		c.IndexInterval = d.IndexInterval
	}
	if c.Logger == nil {
		c.Logger = d.Logger
	}
	if c.Clock == nil {
		c.Clock = d.Clock
	}
	if c.maxRecord <= 0 || c.maxRecord > MaxRecordSize {
		c.maxRecord = MaxRecordSize
	}
	return c
}

// Validate reports what is wrong with c (after defaults), in one sentence.
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case c.Dir == "":
		return errors.New("thl: no directory given for the THL store")
	case c.SegmentSize < minSegmentSize || c.SegmentSize > maxSegmentSize:
		return fmt.Errorf("thl: segment size %d is out of range (%d bytes to 1 TiB)", c.SegmentSize, minSegmentSize)
	case c.IndexInterval < minIndexInterval || c.IndexInterval > c.SegmentSize:
		return fmt.Errorf("thl: index interval %d is out of range (%d bytes to the segment size %d)", c.IndexInterval, minIndexInterval, c.SegmentSize)
	}
	return nil
}
