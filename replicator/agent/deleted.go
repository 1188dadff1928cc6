package agent

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"google.golang.org/grpc"

	"github.com/carbidedb/carbide/replicator/apply"
	"github.com/carbidedb/carbide/rpc/gen/replicatorpb"
)

// siblings are the control clients of this host's other replicators (its
// cluster install's and its cross-site install's): every host holds every
// site's stream in one of them.
type siblings struct {
	mu    sync.Mutex
	conns map[string]*grpc.ClientConn
}

func (s *siblings) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		c.Close()
	}
	s.conns = nil
}

// deletedCheck is the concurrent-change check's question for a service
// of a multi-site topology (its site order names more than one site);
// nil in a single site, where no other site writes and nothing is
// marked.
func (a *Agent) deletedCheck(siteOrder []string) apply.DeletedFunc {
	if len(siteOrder) < 2 {
		return nil
	}
	return a.deleted
}

// deletedTimeout bounds one question to a sibling replicator.
const deletedTimeout = 5 * time.Second

// deleted answers an applier's concurrent-change questions (apply/
// deleted.go) from the replicator of this host that runs svc: this one,
// or the host's other install's.
func (a *Agent) deleted(ctx context.Context, svc string, queries []apply.DeletedQuery) ([]bool, error) {
	if s, ok := a.byName[svc]; ok {
		return s.Deleted(ctx, queries)
	}
	out := make([]bool, 0, len(queries))
	err := a.askSibling(ctx, svc, queries, func(addr string, part []apply.DeletedQuery, r *replicatorpb.DeletedReply) error {
		if len(r.GetDeleted()) != len(part) {
			return fmt.Errorf("the replicator at %s answered %d of %d questions", addr, len(r.GetDeleted()), len(part))
		}
		out = append(out, r.GetDeleted()...)
		return nil
	})
	return out, err
}

// positionsCheck is the question of what another site's DELETEs had
// applied (apply.PositionsFunc), where deletedCheck is set.
func (a *Agent) positionsCheck(siteOrder []string) apply.PositionsFunc {
	if len(siteOrder) < 2 {
		return nil
	}
	return a.positions
}

// positions answers an applier's questions of what another site's
// DELETEs had applied (apply.PositionsFunc), as deleted does.
func (a *Agent) positions(ctx context.Context, svc string, queries []apply.DeletedQuery) ([]uint64, error) {
	if s, ok := a.byName[svc]; ok {
		return s.DeletePositions(ctx, queries)
	}
	out := make([]uint64, 0, len(queries))
	err := a.askSibling(ctx, svc, queries, func(addr string, part []apply.DeletedQuery, r *replicatorpb.DeletedReply) error {
		if len(r.GetPositions()) != len(part) {
			return fmt.Errorf("the replicator at %s answered %d of %d questions (an older version?)", addr, len(r.GetPositions()), len(part))
		}
		out = append(out, r.GetPositions()...)
		return nil
	})
	return out, err
}

// askSibling sends queries about svc to the replicator of this host's
// other install that runs it, in parts, each reply to take.
func (a *Agent) askSibling(ctx context.Context, svc string, queries []apply.DeletedQuery, take func(addr string, part []apply.DeletedQuery, r *replicatorpb.DeletedReply) error) error {
	conn, addr, err := a.sibling(svc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, deletedTimeout)
	defer cancel()
	for len(queries) > 0 {
		part := queries[:min(len(queries), deletedPerCall)]
		queries = queries[len(part):]
		req := &replicatorpb.DeletedRequest{Service: svc}
		for _, q := range part {
			req.Queries = append(req.Queries, &replicatorpb.DeletedQuery{AfterSeqno: q.After, UpToSeqno: q.UpTo, Schema: q.Schema, Table: q.Table, Key: q.Key,
				UniqueColumns: q.Unique, AfterOf: q.AfterOf})
		}
		r, err := replicatorpb.NewReplicatorClient(conn).Deleted(ctx, req)
		if err != nil {
			return fmt.Errorf("ask the replicator at %s: %w", addr, err)
		}
		if err := take(addr, part, r); err != nil {
			return err
		}
	}
	return nil
}

// deletedPerCall bounds the questions of one call, well within gRPC's
// 4 MiB message (a question is its key and table's names: a large
// transaction's rows are asked about in several calls).
const deletedPerCall = 10_000

var _ apply.DeletedFunc = (*Agent)(nil).deleted

// Deleted answers another replicator of this host (deleted; positions,
// where the questions name AfterOf).
func (c *controlServer) Deleted(ctx context.Context, req *replicatorpb.DeletedRequest) (*replicatorpb.DeletedReply, error) {
	s, err := c.service(req.GetService())
	if err != nil {
		return nil, toStatus(err)
	}
	qs := make([]apply.DeletedQuery, len(req.GetQueries()))
	positions := false
	for i, q := range req.GetQueries() {
		qs[i] = apply.DeletedQuery{After: q.GetAfterSeqno(), UpTo: q.GetUpToSeqno(), Schema: q.GetSchema(), Table: q.GetTable(), Key: q.GetKey(),
			Unique: q.GetUniqueColumns(), AfterOf: q.GetAfterOf()}
		positions = positions || q.GetAfterOf() != ""
	}
	if positions {
		pos, err := s.DeletePositions(ctx, qs)
		if err != nil {
			return nil, toStatus(err)
		}
		return &replicatorpb.DeletedReply{Positions: pos}, nil
	}
	del, err := s.Deleted(ctx, qs)
	if err != nil {
		return nil, toStatus(err)
	}
	return &replicatorpb.DeletedReply{Deleted: del}, nil
}

// sibling returns the control client of the replicator of this host's
// other install that runs svc, and its address.
func (a *Agent) sibling(svc string) (*grpc.ClientConn, string, error) {
	addr := ""
	for _, in := range a.bound.Host.Installs() {
		if in == nil || !in.Replicator || in.Kind == a.bound.Install.Kind {
			continue
		}
		for _, sp := range in.Services {
			if sp.Name == svc {
				addr = net.JoinHostPort(a.bound.Host.Address, strconv.Itoa(in.Settings.RMIPort))
			}
		}
	}
	if addr == "" {
		return nil, "", fmt.Errorf("no replicator of this host runs service %s", svc)
	}
	a.sibs.mu.Lock()
	defer a.sibs.mu.Unlock()
	if conn, ok := a.sibs.conns[addr]; ok {
		return conn, addr, nil
	}
	conn, err := grpc.NewClient(addr, a.sec.ControlDialOptions(nil)...)
	if err != nil {
		return nil, "", err
	}
	if a.sibs.conns == nil {
		a.sibs.conns = map[string]*grpc.ClientConn{}
	}
	a.sibs.conns[addr] = conn
	return conn, addr, nil
}
