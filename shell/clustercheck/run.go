package clustercheck

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/carbidedb/carbide/internal/consistency"
	"github.com/carbidedb/carbide/rpc/gen/replicatorpb"
)

// API is what a check asks of a replicator's control API;
// replicatorpb.ReplicatorClient has it.
type API interface {
	Status(ctx context.Context, in *replicatorpb.StatusRequest, opts ...grpc.CallOption) (*replicatorpb.StatusReply, error)
	Check(ctx context.Context, in *replicatorpb.CheckRequest, opts ...grpc.CallOption) (grpc.ServerStreamingClient[replicatorpb.CheckProgress], error)
	CheckResults(ctx context.Context, in *replicatorpb.CheckResultsRequest, opts ...grpc.CallOption) (*replicatorpb.CheckResultsReply, error)
	Touched(ctx context.Context, in *replicatorpb.TouchedRequest, opts ...grpc.CallOption) (*replicatorpb.TouchedReply, error)
	Locate(ctx context.Context, in *replicatorpb.LocateRequest, opts ...grpc.CallOption) (*replicatorpb.LocateReply, error)
}

var _ API = replicatorpb.ReplicatorClient(nil)

// Replicator is one replicator that runs a service: a host's cluster
// replicator for its site's service, or its cross-site replicator for
// another site's.
type Replicator struct {
	Host string
	Addr string // its control address
}

// Stream is a service and every replicator that runs it.
type Stream struct {
	Service     string
	Replicators []Replicator
}

// Options of a check.
type Options struct {
	// Schema and Table narrow it ("" for all).
	Schema, Table string
	// ChunkTime is what one chunk's checksum should take on the master
	// (0: the replicator's default, 250 ms).
	ChunkTime time.Duration
	// Retries is how many times chunks that changed between two hosts'
	// snapshots are checked again (0: 3).
	Retries int
	// Wait bounds how long the check waits for a host that computes
	// nothing more (behind, or offline) (0: 3 min: each host's stream
	// waits while it checksums a chunk, so a replica under writes falls
	// behind during a check).
	Wait time.Duration
	// Progress, when set, receives a line of progress now and then.
	Progress io.Writer
	// Timeout bounds each call to a replicator (0: 10 s).
	Timeout time.Duration
}

func (o *Options) defaults() {
	if o.Retries == 0 {
		o.Retries = 3
	}
	if o.Wait == 0 {
		o.Wait = 3 * time.Minute
	}
	if o.Timeout == 0 {
		o.Timeout = 10 * time.Second
	}
}

// Dial connects to a replicator's control API.
type Dial func(ctx context.Context, addr string) (API, func(), error)

// Checker runs checks over a deployment's streams.
type Checker struct {
	Streams []Stream
	Dial    Dial
	opts    Options
	conns   map[string]API
	closers []func()
	// masters maps a host to the services it is the master of, and the
	// address of the replicator that runs each: a host's result stands
	// in those streams where its binlog position says (Locate).
	masters map[string]map[string]string
}

// Close releases the checker's connections.
func (c *Checker) Close() {
	for _, f := range c.closers {
		f()
	}
	c.closers, c.conns = nil, nil
}

func (c *Checker) api(ctx context.Context, addr string) (API, error) {
	if a, ok := c.conns[addr]; ok {
		return a, nil
	}
	a, closeFn, err := c.Dial(ctx, addr)
	if err != nil {
		return nil, err
	}
	if c.conns == nil {
		c.conns = map[string]API{}
	}
	c.conns[addr] = a
	c.closers = append(c.closers, closeFn)
	return a, nil
}

func (c *Checker) call(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.opts.Timeout)
}

// findMasters asks every replicator of every stream its role: a check
// runs on a stream's master, and a master's results are placed in its
// stream by binlog position. It returns the master of service.
func (c *Checker) findMasters(ctx context.Context, service string) (Replicator, error) {
	c.masters = map[string]map[string]string{}
	var master Replicator
	var found bool
	for _, s := range c.Streams {
		for _, r := range s.Replicators {
			a, err := c.api(ctx, r.Addr)
			if err != nil {
				continue
			}
			cctx, cancel := c.call(ctx)
			st, err := a.Status(cctx, &replicatorpb.StatusRequest{Service: s.Service})
			cancel()
			if err != nil || st.GetStatus().GetRole() != "master" {
				continue
			}
			if c.masters[r.Host] == nil {
				c.masters[r.Host] = map[string]string{}
			}
			c.masters[r.Host][s.Service] = r.Addr
			if s.Service == service && st.GetStatus().GetStateKind() == replicatorpb.ReplicatorState_REPLICATOR_STATE_ONLINE {
				master, found = r, true
			}
		}
	}
	if !found {
		return Replicator{}, fmt.Errorf("no replicator of %s is an ONLINE master: a check starts on the master of the service it goes through", service)
	}
	return master, nil
}

// Run checks the tables through service's stream: every replicator of it
// is compared with its master.
func (c *Checker) Run(ctx context.Context, service string, opts Options) (*Report, error) {
	opts.defaults()
	c.opts = opts
	i := slices.IndexFunc(c.Streams, func(s Stream) bool { return s.Service == service })
	if i < 0 {
		return nil, fmt.Errorf("no service %s in this deployment", service)
	}
	stream := c.Streams[i]
	master, err := c.findMasters(ctx, service)
	if err != nil {
		return nil, err
	}
	rep := &Report{Service: service, Master: master.Host, verdicts: map[uint32]map[string]*Finding{}, rows: map[uint32]int64{}}
	for _, r := range stream.Replicators {
		if r.Host != master.Host {
			rep.Hosts = append(rep.Hosts, r.Host)
		}
	}
	chunks, err := c.round(ctx, stream, master, nil, rep)
	if err != nil {
		return nil, err
	}
	for try := 1; try <= opts.Retries; try++ {
		again := rep.changing(chunks)
		if len(again) == 0 {
			break
		}
		// Again row by row: the rows that differ are matched with those
		// the transactions between the snapshots changed.
		for i, ch := range again {
			if ch.GetRowsQuery() != "" && rep.rows[ch.GetChunk()] <= consistency.MaxListedRows {
				ch = proto.Clone(ch).(*replicatorpb.CheckChunk)
				ch.Rows = true
				again[i] = ch
			}
		}
		c.progress("%d chunk(s) changed between snapshots; checking them again row by row (%d of %d)", len(again), try, opts.Retries)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
		if _, err := c.round(ctx, stream, master, again, rep); err != nil {
			return nil, err
		}
	}
	// Name the rows of the chunks that differ, where they can be listed.
	var name []*replicatorpb.CheckChunk
	for _, ch := range rep.different(chunks) {
		if ch.GetRowsQuery() != "" && rep.rows[ch.GetChunk()] <= consistency.MaxListedRows {
			ch = proto.Clone(ch).(*replicatorpb.CheckChunk)
			ch.Rows = true
			name = append(name, ch)
		}
	}
	if len(name) > 0 {
		c.progress("%d chunk(s) differ; listing their rows", len(name))
		if _, err := c.round(ctx, stream, master, name, rep); err != nil {
			return nil, err
		}
	}
	rep.finish(chunks)
	return rep, nil
}

func (c *Checker) progress(format string, args ...any) {
	if c.opts.Progress != nil {
		fmt.Fprintf(c.opts.Progress, format+"\n", args...)
	}
}

// round runs one check on the master (of every table, or of again) and
// judges every host's results; it returns the chunks checked.
func (c *Checker) round(ctx context.Context, stream Stream, master Replicator, again []*replicatorpb.CheckChunk, rep *Report) ([]*replicatorpb.CheckChunk, error) {
	a, err := c.api(ctx, master.Addr)
	if err != nil {
		return nil, err
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := a.Check(sctx, &replicatorpb.CheckRequest{Service: stream.Service, Schema: c.opts.Schema, Table: c.opts.Table,
		ChunkSeconds: c.opts.ChunkTime.Seconds(), Chunks: again})
	if err != nil {
		return nil, fmt.Errorf("start the check on %s: %w", master.Host, err)
	}
	var id uint64
	var tables, done uint32
	var chunks []*replicatorpb.CheckChunk
	refs := map[uint32]*consistency.Result{}
	last := time.Now()
	for {
		p, err := st.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("the check on %s: %w", master.Host, err)
		}
		id = p.GetCheckId()
		if p.GetChunk() != nil {
			chunks = append(chunks, p.GetChunk())
			r := consistency.ResultFromProto(p.GetResult())
			r.Host = master.Host
			refs[r.Chunk] = &r
		}
		if p.GetTables() > 0 {
			tables, done = p.GetTables(), p.GetTablesDone()
		}
		if again == nil && (time.Since(last) >= time.Second || done > 0 && done == tables && p.GetChunk() == nil) {
			c.progress("%s: %d of %d tables, %d chunks checksummed on %s", stream.Service, done, tables, len(chunks), master.Host)
			last = time.Now()
		}
	}
	results, err := c.collect(ctx, stream, master, id, len(chunks))
	if err != nil {
		return nil, err
	}
	byNo := map[uint32]*replicatorpb.CheckChunk{}
	for _, ch := range chunks {
		byNo[ch.GetChunk()] = ch
	}
	for _, host := range rep.Hosts {
		for _, ch := range chunks {
			ref := refs[ch.GetChunk()]
			if ref == nil || ref.Err != "" {
				why := "the master computed nothing for it"
				if ref != nil {
					why = "the checksum failed on the master " + master.Host + ": " + ref.Err
				}
				rep.record(ch, host, &Finding{Verdict: Different, Why: why})
				continue
			}
			r, ok := results[host][ch.GetChunk()]
			if !ok {
				rep.record(ch, host, &Finding{Verdict: Missing, Why: "no result: its replicator did not apply the marker in time (offline, or behind)"})
				continue
			}
			if err := c.place(ctx, host, r); err != nil {
				return nil, err
			}
			if err := c.place(ctx, master.Host, ref); err != nil {
				return nil, err
			}
			if ch.GetRows() {
				v, why, unresolved := c.compareRows(ctx, ch, ref, r)
				f := &Finding{Verdict: v, Why: why, Count: r.Count}
				if v == Different {
					f.Rows = why
				}
				rep.recordRows(ch, host, f, unresolved)
				continue
			}
			v, why := consistency.Compare(ref, r, c.touched(ctx, ch))
			rep.record(ch, host, &Finding{Verdict: Verdict(v), Why: why, Count: r.Count})
		}
	}
	for _, ch := range chunks {
		if ref := refs[ch.GetChunk()]; ref != nil {
			rep.rows[ch.GetChunk()] = ref.Count
		}
	}
	return chunks, nil
}

// collect polls every replicator of the stream but the master for check
// id's results until each has all n chunks, or computes nothing more for
// opts.Wait.
func (c *Checker) collect(ctx context.Context, stream Stream, master Replicator, id uint64, n int) (map[string]map[uint32]*consistency.Result, error) {
	out := map[string]map[uint32]*consistency.Result{}
	begin, moved, told := time.Now(), time.Now(), time.Now()
	for {
		done, total := 0, 0
		var waiting []string
		for _, r := range stream.Replicators {
			if r.Host == master.Host {
				continue
			}
			total++
			if len(out[r.Host]) >= n {
				done++
				continue
			}
			a, err := c.api(ctx, r.Addr)
			if err != nil {
				continue
			}
			cctx, cancel := c.call(ctx)
			reply, err := a.CheckResults(cctx, &replicatorpb.CheckResultsRequest{Service: stream.Service, CheckId: id})
			cancel()
			if err != nil {
				continue
			}
			if out[r.Host] == nil {
				out[r.Host] = map[uint32]*consistency.Result{}
			}
			before := len(out[r.Host])
			for _, p := range reply.GetResults() {
				res := consistency.ResultFromProto(p)
				res.Host = r.Host
				out[r.Host][res.Chunk] = &res
			}
			if len(out[r.Host]) > before {
				moved = time.Now()
			}
			if len(out[r.Host]) >= n {
				done++
			} else {
				waiting = append(waiting, fmt.Sprintf("%s (%d of %d)", r.Host, len(out[r.Host]), n))
			}
		}
		if done == total || time.Since(moved) > c.opts.Wait {
			return out, nil
		}
		if time.Since(told) >= 5*time.Second {
			c.progress("%s: waiting %v for the hosts to apply the markers: %s", stream.Service, time.Since(begin).Round(time.Second), strings.Join(waiting, ", "))
			told = time.Now()
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// place sets, in a result of a host that is some services' master, where
// each of those stood: the last transaction its master extracted at the
// snapshot's binlog position (its tracking row there says nothing).
func (c *Checker) place(ctx context.Context, host string, r *consistency.Result) error {
	if r.BinlogPos == "" || r.Err != "" {
		return nil
	}
	for svc, addr := range c.masters[host] {
		seqno := int64(consistency.Unknown)
		if a, err := c.api(ctx, addr); err == nil {
			cctx, cancel := c.call(ctx)
			reply, err := a.Locate(cctx, &replicatorpb.LocateRequest{Service: svc, BinlogPosition: r.BinlogPos, TimeoutSeconds: c.opts.Timeout.Seconds() / 2})
			cancel()
			if err == nil {
				seqno = reply.GetSeqno()
			}
		}
		if r.Tracking == nil {
			r.Tracking = map[string]int64{}
		}
		r.Tracking[svc] = seqno
	}
	r.BinlogPos = "" // placed
	return nil
}

// touchedKeys asks a replicator of svc which of ch's rows its
// transactions in (from, to] changed: all, or their keys.
func (c *Checker) touchedKeys(ctx context.Context, ch *replicatorpb.CheckChunk, svc string, from, to int64) (bool, []string, error) {
	var last error = fmt.Errorf("no replicator of %s answers", svc)
	for _, s := range c.Streams {
		if s.Service != svc {
			continue
		}
		reps := slices.Clone(s.Replicators)
		sort.SliceStable(reps, func(i, j int) bool { return c.masters[reps[i].Host][svc] != "" && c.masters[reps[j].Host][svc] == "" })
		for _, r := range reps {
			a, err := c.api(ctx, r.Addr)
			if err != nil {
				last = err
				continue
			}
			cctx, cancel := c.call(ctx)
			reply, err := a.Touched(cctx, &replicatorpb.TouchedRequest{Service: svc, FromSeqno: from, ToSeqno: to, Chunk: ch})
			cancel()
			if err != nil {
				last = err
				continue
			}
			return reply.GetAll(), reply.GetKeys(), nil
		}
	}
	return true, nil, last
}

// touched is touchedKeys for a whole chunk.
func (c *Checker) touched(ctx context.Context, ch *replicatorpb.CheckChunk) consistency.Touched {
	return func(svc string, from, to int64) (bool, error) {
		all, keys, err := c.touchedKeys(ctx, ch, svc, from, to)
		return all || len(keys) > 0, err
	}
}
