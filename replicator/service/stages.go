package service

import (
	"context"
	"time"

	"github.com/carbidedb/carbide/internal/position"
	"github.com/carbidedb/carbide/replicator/apply"
	"github.com/carbidedb/carbide/replicator/extract"
	"github.com/carbidedb/carbide/replicator/stream"
	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

// The stages of a pipeline run, as the service uses them. Config.Stages
// makes them; its zero value makes the real ones (extract, stream,
// apply), and unit tests give fakes.

// Extractor reads the local binlog into THL events: a master's source.
type Extractor interface {
	// Check says what the server lacks to be read (an error) or should
	// change (notes).
	Check(ctx context.Context) (notes []string, err error)
	// CurrentPosition is the end of the binlog now.
	CurrentPosition(ctx context.Context) (position.Position, error)
	// BinlogEnd is the end of the binlog now, without its GTID.
	BinlogEnd(ctx context.Context) (position.Position, error)
	// RunFrom sends the transactions after from (see extract.RunFrom)
	// until ctx ends or an error; it calls send from its own goroutine
	// only, and never after it returns. Each call carries consecutive
	// fragments of one transaction, which ends at the fragment marked
	// LastFrag (the last of a call): a large transaction arrives in
	// several calls, and an error may stop it between two.
	RunFrom(ctx context.Context, from, prepared position.Position, send func([]*thlpb.Event) error) error
	// RunTail sends what the binlog files of a stopped server hold after
	// from, calling send as RunFrom does.
	RunTail(ctx context.Context, from, prepared position.Position, send func([]*thlpb.Event) error) (position.Position, error)
	Stats() extract.Stats
	// Moved is closed the next time Stats' Position or Read moves.
	Moved() <-chan struct{}
	Close() error
}

// THLClient fetches a slave's THL from its sources into a store.
type THLClient interface {
	// Run appends to store until ctx ends or an error; it returns nil
	// when ctx ends, and appends nothing after it returns.
	Run(ctx context.Context, store stream.Store) error
	Status() stream.ClientStatus
}

// Applier applies THL events to the local database and keeps its
// tracking row.
type Applier interface {
	// Open connects and reads the tracking row.
	Open(ctx context.Context) error
	// Position is the last transaction committed to the database: the
	// tracking row as read by Open and written since, never a transaction
	// read but not committed.
	Position() (apply.Position, bool)
	// Skip records seqnos as applied without applying them.
	Skip(seqnos ...uint64)
	// SetPosition records ev as the last transaction in the database.
	SetPosition(ctx context.Context, ev *thlpb.Event) error
	// Reset drops the tracking schema.
	Reset(ctx context.Context) error
	// Run applies what next returns until ctx ends (ctx's error) or a
	// transaction fails (an *apply.Error).
	Run(ctx context.Context, next apply.Next) error
	// Waiting says what the applier holds a transaction for (another
	// stream to catch up: apply/after.go) and since when; "" when
	// nothing.
	Waiting() (string, time.Time)
	// Conflicts counts the conflicts recorded in the tracking schema.
	Conflicts() uint64
	Close() error
}

var (
	_ Extractor = (*extract.Extractor)(nil)
	_ THLClient = (*stream.Client)(nil)
	_ Applier   = (*apply.Applier)(nil)
)

// Stages makes the stages of each pipeline run; a nil field makes the
// real one.
type Stages struct {
	NewExtractor func(extract.Config) (Extractor, error)
	NewTHLClient func(stream.ClientConfig) (THLClient, error)
	NewApplier   func(apply.Config) (Applier, error)
}

// withDefaults fills nil fields with the real stages.
func (st Stages) withDefaults() Stages {
	if st.NewExtractor == nil {
		st.NewExtractor = func(c extract.Config) (Extractor, error) {
			x, err := extract.New(c)
			if err != nil {
				return nil, err
			}
			return x, nil
		}
	}
	if st.NewTHLClient == nil {
		st.NewTHLClient = func(c stream.ClientConfig) (THLClient, error) {
			cl, err := stream.NewClient(c)
			if err != nil {
				return nil, err
			}
			return cl, nil
		}
	}
	if st.NewApplier == nil {
		st.NewApplier = func(c apply.Config) (Applier, error) {
			a, err := apply.New(c)
			if err != nil {
				return nil, err
			}
			return a, nil
		}
	}
	return st
}
