package cctrl

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/carbidedb/carbide/shell/clustercheck"
)

// ErrDifferent is returned by cluster check when a host does not hold a
// table as the master does, or a chunk could not be verified: the report
// says which; a script stops there (exit code 1).
var ErrDifferent = errors.New("cctrl: hosts differ")

// checkTimeout bounds a cluster check (Ctrl-C ends one sooner).
const checkTimeout = 24 * time.Hour

// clusterCheck runs a consistency check through the session's service:
// every host of every site that applies it (its site's replicas, the other
// sites' hosts through their cross-site replicators) is compared with its
// master (docs/cctrl.md, "cluster check").
func (s *Session) clusterCheck(ctx context.Context, c Command) error {
	if !s.topo.configured() {
		return usagef("cluster check needs an install's configuration (it reaches every replicator of every site): run cctrl from an install")
	}
	schema, table, _ := strings.Cut(c.Value, ".")
	streams := clustercheck.Streams(s.topo.cfg)
	checker := &clustercheck.Checker{Streams: streams, Dial: func(ctx context.Context, addr string) (clustercheck.API, func(), error) {
		api, closeFn, err := s.env.DialReplicator(ctx, addr)
		if err != nil {
			return nil, nil, err
		}
		full, ok := api.(clustercheck.API)
		if !ok {
			closeFn()
			return nil, nil, fmt.Errorf("the replicator at %s cannot be asked for a check", addr)
		}
		return full, closeFn, nil
	}}
	defer checker.Close()
	opts := clustercheck.Options{Schema: schema, Table: table}
	if !c.JSON {
		opts.Progress = s.env.Err
	}
	// Not the coordinator's command timeout: a check of a large
	// database takes as long as it takes, and says how far it is.
	ctx, cancel := context.WithTimeout(ctx, max(s.cfg.CommandTimeout, checkTimeout))
	defer cancel()
	rep, err := checker.Run(ctx, s.service, opts)
	if err != nil {
		return errorf(ErrUnreachable, "cluster check: %v", err)
	}
	if c.JSON {
		if err := rep.WriteJSON(s.env.Out); err != nil {
			return err
		}
	} else {
		rep.WriteText(s.env.Out)
	}
	if !rep.Equal() {
		return errorf(ErrDifferent, "cluster check: hosts differ (see above)")
	}
	return nil
}
