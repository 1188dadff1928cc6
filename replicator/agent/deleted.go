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

// deletedTimeout bounds one question to a sibling replicator.
const deletedTimeout = 5 * time.Second

// deleted answers an applier's concurrent-delete question (apply/
// deleted.go) from the replicator of this host that runs svc: this one,
// or the host's other install's.
func (a *Agent) deleted(ctx context.Context, svc string, after uint64, schema, table string, keys []string) (map[string]bool, error) {
	if s, ok := a.byName[svc]; ok {
		return s.Deleted(ctx, after, schema, table, keys)
	}
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
		return nil, fmt.Errorf("no replicator of this host runs service %s", svc)
	}
	a.sibs.mu.Lock()
	conn, ok := a.sibs.conns[addr]
	if !ok {
		var err error
		if conn, err = grpc.NewClient(addr, a.sec.ControlDialOptions(nil)...); err != nil {
			a.sibs.mu.Unlock()
			return nil, err
		}
		if a.sibs.conns == nil {
			a.sibs.conns = map[string]*grpc.ClientConn{}
		}
		a.sibs.conns[addr] = conn
	}
	a.sibs.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, deletedTimeout)
	defer cancel()
	r, err := replicatorpb.NewReplicatorClient(conn).Deleted(ctx, &replicatorpb.DeletedRequest{Service: svc, AfterSeqno: after, Schema: schema, Table: table, Keys: keys})
	if err != nil {
		return nil, fmt.Errorf("ask the replicator at %s: %w", addr, err)
	}
	out := make(map[string]bool, len(r.GetDeleted()))
	for _, k := range r.GetDeleted() {
		out[k] = true
	}
	return out, nil
}

var _ apply.DeletedFunc = (*Agent)(nil).deleted

// Deleted answers another replicator of this host (deleted).
func (c *controlServer) Deleted(ctx context.Context, req *replicatorpb.DeletedRequest) (*replicatorpb.DeletedReply, error) {
	s, err := c.service(req.GetService())
	if err != nil {
		return nil, toStatus(err)
	}
	del, err := s.Deleted(ctx, req.GetAfterSeqno(), req.GetSchema(), req.GetTable(), req.GetKeys())
	if err != nil {
		return nil, toStatus(err)
	}
	reply := &replicatorpb.DeletedReply{}
	for k := range del {
		reply.Deleted = append(reply.Deleted, k)
	}
	return reply, nil
}
