package trepctl

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/carbidedb/carbide/internal/install"
	"github.com/carbidedb/carbide/shell/clustercheck"
)

// errDifferent: a check found a host that does not hold what the master
// does (the report says which); exit code 1.
var errDifferent = errors.New("hosts differ (see above)")

// check compares every host of the service with its master, chunk by key
// range at one point of the stream (shell/clustercheck): the hosts come
// from the install's configuration.
func (c *command) check() (func(*flag.FlagSet), func(context.Context) error) {
	var asJSON bool
	var chunkTime time.Duration
	return func(fs *flag.FlagSet) {
			fs.BoolVar(&asJSON, "json", false, "print the report as JSON")
			fs.DurationVar(&chunkTime, "chunk-time", 0, "what one chunk's checksum should take on the master (default 250ms)")
		}, func(ctx context.Context) error {
			if chunkTime < 0 || chunkTime > time.Minute {
				return fmt.Errorf("-chunk-time takes a duration from 1ms to 1m, not %v", chunkTime)
			}
			var schema, table string
			if len(c.args) > 0 {
				var dotted bool
				schema, table, dotted = strings.Cut(c.args[0], ".")
				if schema == "" || dotted && (table == "" || strings.Contains(table, ".")) {
					return fmt.Errorf("%q is not SCHEMA or SCHEMA.TABLE", c.args[0])
				}
			}
			streams := c.env.Streams
			if streams == nil {
				streams = installStreams
			}
			all, err := streams(c.env)
			if err != nil {
				return err
			}
			svc, err := c.pickService(ctx)
			if err != nil {
				return err
			}
			checker := &clustercheck.Checker{Streams: all, Dial: func(ctx context.Context, addr string) (clustercheck.API, func(), error) {
				return c.env.Dial(ctx, addr)
			}}
			defer checker.Close()
			opts := clustercheck.Options{Schema: schema, Table: table, ChunkTime: chunkTime}
			if !asJSON {
				opts.Progress = c.env.Err
			}
			rep, err := checker.Run(ctx, svc, opts)
			if err != nil {
				return err
			}
			if asJSON {
				if err := rep.WriteJSON(c.env.Out); err != nil {
					return err
				}
			} else {
				rep.WriteText(c.env.Out)
			}
			if !rep.Equal() {
				return errDifferent
			}
			return nil
		}
}

// installStreams lists the streams of the install CARBIDE_HOME names.
func installStreams(env Env) ([]clustercheck.Stream, error) {
	home := env.Getenv(install.EnvHome)
	if home == "" {
		return nil, errors.New("check needs an install's configuration (it reaches every replicator of the service): source an install's share/env.sh, or run it from its bin/")
	}
	b, err := install.Open(home)
	if err != nil {
		return nil, err
	}
	return clustercheck.Streams(b.Config), nil
}
