package service

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"google.golang.org/grpc"

	"github.com/carbidedb/carbide/replicator/apply"
)

// Config configures one service.
type Config struct {
	Name     string // the service (the origin site's name)
	Host     string // this host: source_id of extracted events
	Site     string // this host's site (the applier's causal waits)
	Role     string // initial role
	Topology string // clustered or cluster-slave, for status
	// Sources are the THL servers ("host:port") a slave reads, in order.
	Sources []string
	// Resolve turns "host:port" into the address to dial; nil: as is.
	Resolve func(string) string
	// ListenAddr is where this replicator's THL server listens, as shown
	// in masterListenUri ("east1:2112").
	ListenAddr string
	// SSL makes URIs thls:// (TLS itself is the transport's business).
	SSL bool
	// DialOptions secure the THL client's connections (TLS, token).
	DialOptions []grpc.DialOption
	// DBAddr, DBUser and DBPassword reach the local database.
	DBAddr, DBUser, DBPassword string
	THLDir                     string
	BlockSize                  int
	BlockTime                  time.Duration
	Channels                   int
	// ConflictPolicy and ConflictSiteOrder resolve the conflicts the
	// applier meets (apply.Conflicts); the policy is stop when empty.
	ConflictPolicy    apply.Policy
	ConflictSiteOrder []string
	// Deleted reads another site's changes on this host, for the
	// applier's concurrent-change check (apply.Config.Deleted).
	Deleted   apply.DeletedFunc
	Positions apply.PositionsFunc // (apply.Config.Positions)
	Retention time.Duration
	RMIPort   int
	// SourceOrder, when set, ranks a slave's sources now (see
	// stream.ClientConfig.Order).
	SourceOrder func(ctx context.Context, sources []string) []string
	// SpillDir, when set, is where the extractor spills large
	// transactions: a directory of this service alone, emptied of the
	// files a killed run left whenever extraction starts (the extractor's
	// default is the system's temporary directory, shared).
	SpillDir string
	// RoleFile, when set, keeps the role and sources setrole gave: they
	// survive a restart and override Role and Sources.
	RoleFile string
	// Stages makes the pipeline's stages; the zero value makes the real
	// ones.
	Stages Stages
	Logger *slog.Logger
}

// Validate fills defaults and checks c.
func (c *Config) Validate() error {
	switch {
	case c.Name == "":
		return fmt.Errorf("%w: a service needs a name", ErrInput)
	case c.Role != RoleMaster && c.Role != RoleSlave:
		return fmt.Errorf("%w: role must be master or slave, not %q", ErrInput, c.Role)
	case c.THLDir == "" || c.DBAddr == "":
		return fmt.Errorf("%w: service %s needs a THL directory and a database address", ErrInput, c.Name)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Retention <= 0 {
		c.Retention = 7 * 24 * time.Hour
	}
	c.Stages = c.Stages.withDefaults()
	return nil
}
