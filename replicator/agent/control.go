package agent

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/carbidedb/carbide/replicator/apply"
	"github.com/carbidedb/carbide/replicator/service"
	"github.com/carbidedb/carbide/replicator/stream"
	"github.com/carbidedb/carbide/rpc/gen/replicatorpb"
	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

// controlServer is the control API on rmi-port.
type controlServer struct {
	replicatorpb.UnimplementedReplicatorServer
	a *Agent
}

// toStatus maps errors to gRPC codes, in one place.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	code := codes.Internal
	switch {
	case errors.Is(err, service.ErrState), errors.Is(err, service.ErrRole):
		code = codes.FailedPrecondition
	case errors.Is(err, service.ErrInput), errors.Is(err, errUnknownService), errors.Is(err, errBadInput):
		code = codes.InvalidArgument
	case errors.Is(err, context.DeadlineExceeded):
		code = codes.DeadlineExceeded
	case errors.Is(err, apply.ErrApply):
		code = codes.Aborted
	}
	return status.Error(code, err.Error())
}

var (
	errUnknownService = errors.New("unknown service")
	errBadInput       = errors.New("bad request")
)

func (c *controlServer) service(name string) (*service.Service, error) {
	if name == "" {
		if len(c.a.services) == 1 {
			return c.a.services[0], nil
		}
		return nil, fmt.Errorf("%w: this replicator has several services (%s); name one", errUnknownService, strings.Join(c.names(), ", "))
	}
	s, ok := c.a.byName[name]
	if !ok {
		return nil, fmt.Errorf("%w: this replicator has no service %s (services: %s)", errUnknownService, name, strings.Join(c.names(), ", "))
	}
	return s, nil
}

func (c *controlServer) names() []string {
	var out []string
	for _, s := range c.a.services {
		out = append(out, s.Name())
	}
	sort.Strings(out)
	return out
}

// each runs f on the named service, or on every service when name is "".
func (c *controlServer) each(name string, f func(*service.Service) error) error {
	if name != "" {
		s, err := c.service(name)
		if err != nil {
			return err
		}
		return f(s)
	}
	var errs []error
	for _, s := range c.a.services {
		if err := f(s); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", s.Name(), err))
		}
	}
	return errors.Join(errs...)
}

func (c *controlServer) reply(name string) (*replicatorpb.StatusReply, error) {
	s, err := c.service(name)
	if err != nil {
		if name == "" {
			return &replicatorpb.StatusReply{}, nil
		}
		return nil, toStatus(err)
	}
	return &replicatorpb.StatusReply{Status: s.Status()}, nil
}

func (c *controlServer) Services(ctx context.Context, _ *replicatorpb.ServicesRequest) (*replicatorpb.ServicesReply, error) {
	r := &replicatorpb.ServicesReply{}
	for _, s := range c.a.services {
		r.Services = append(r.Services, s.Status())
	}
	return r, nil
}

func (c *controlServer) Status(ctx context.Context, req *replicatorpb.StatusRequest) (*replicatorpb.StatusReply, error) {
	s, err := c.service(req.GetService())
	if err != nil {
		return nil, toStatus(err)
	}
	st := s.Status()
	r := &replicatorpb.StatusReply{Status: st}
	f := func(n, v string) *replicatorpb.Field { return &replicatorpb.Field{Name: n, Value: v} }
	switch req.GetName() {
	case "tasks", "stages":
		stages := []string{"binlog-to-q", "q-to-thl"}
		if st.GetRole() == service.RoleSlave {
			stages = []string{"remote-to-thl", "thl-to-dbms"}
		}
		for i, name := range stages {
			r.Rows = append(r.Rows, &replicatorpb.Row{Fields: []*replicatorpb.Field{
				f("appliedLastSeqno", fmt.Sprint(st.GetAppliedLastSeqno())), f("appliedLatency", fmt.Sprintf("%.3f", st.GetAppliedLatency())),
				f("stage", name), f("state", st.GetState()), f("taskId", "0"), f("stageIndex", fmt.Sprint(i)),
			}})
		}
	case "shards":
		r.Rows = append(r.Rows, &replicatorpb.Row{Fields: []*replicatorpb.Field{
			f("appliedLastSeqno", fmt.Sprint(st.GetAppliedLastSeqno())), f("appliedLatency", fmt.Sprintf("%.3f", st.GetAppliedLatency())),
			f("shardId", "#UNKNOWN"), f("stage", "q-to-dbms"),
		}})
	case "":
	default:
		return nil, status.Errorf(codes.InvalidArgument, "status -name takes tasks, stages or shards, not %q", req.GetName())
	}
	return r, nil
}

func (c *controlServer) Online(ctx context.Context, req *replicatorpb.OnlineRequest) (*replicatorpb.StatusReply, error) {
	err := c.each(req.GetService(), func(s *service.Service) error {
		return s.Online(service.OnlineOptions{SkipSeqnos: req.GetSkipSeqno(), FromEvent: req.GetFromEvent()})
	})
	if err != nil {
		return nil, toStatus(err)
	}
	return c.reply(req.GetService())
}

func (c *controlServer) Offline(ctx context.Context, req *replicatorpb.OfflineRequest) (*replicatorpb.StatusReply, error) {
	if err := c.each(req.GetService(), func(s *service.Service) error { return s.Offline(ctx) }); err != nil {
		return nil, toStatus(err)
	}
	return c.reply(req.GetService())
}

func (c *controlServer) Reset(ctx context.Context, req *replicatorpb.ResetRequest) (*replicatorpb.StatusReply, error) {
	s, err := c.service(req.GetService())
	if err != nil {
		return nil, toStatus(err)
	}
	if err := s.Reset(ctx, req.GetThl(), req.GetDb(), req.GetForget()); err != nil {
		return nil, toStatus(err)
	}
	return &replicatorpb.StatusReply{Status: s.Status()}, nil
}

func (c *controlServer) SetRole(ctx context.Context, req *replicatorpb.SetRoleRequest) (*replicatorpb.StatusReply, error) {
	s, err := c.service(req.GetService())
	if err != nil {
		return nil, toStatus(err)
	}
	if err := s.SetRole(req.GetRole(), req.GetUri()); err != nil {
		return nil, toStatus(err)
	}
	return &replicatorpb.StatusReply{Status: s.Status()}, nil
}

func (c *controlServer) Heartbeat(ctx context.Context, req *replicatorpb.HeartbeatRequest) (*replicatorpb.HeartbeatReply, error) {
	s, err := c.service(req.GetService())
	if err != nil {
		return nil, toStatus(err)
	}
	if err := s.Heartbeat(ctx, req.GetName()); err != nil {
		return nil, toStatus(err)
	}
	return &replicatorpb.HeartbeatReply{}, nil
}

func (c *controlServer) Flush(ctx context.Context, req *replicatorpb.FlushRequest) (*replicatorpb.FlushReply, error) {
	s, err := c.service(req.GetService())
	if err != nil {
		return nil, toStatus(err)
	}
	seqno, err := s.Flush(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	return &replicatorpb.FlushReply{Seqno: seqno}, nil
}

func (c *controlServer) Wait(ctx context.Context, req *replicatorpb.WaitRequest) (*replicatorpb.StatusReply, error) {
	s, err := c.service(req.GetService())
	if err != nil {
		return nil, toStatus(err)
	}
	if t := req.GetTimeoutSeconds(); t > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(t*float64(time.Second)))
		defer cancel()
	}
	if err := s.Wait(ctx, req.GetAppliedSeqno(), req.GetState()); err != nil {
		return nil, toStatus(err)
	}
	return &replicatorpb.StatusReply{Status: s.Status()}, nil
}

// maxConflicts bounds one Conflicts reply (each carries up to three row
// images).
const maxConflicts = 1000

func (c *controlServer) Conflicts(ctx context.Context, req *replicatorpb.ConflictsRequest) (*replicatorpb.ConflictsReply, error) {
	s, err := c.service(req.GetService())
	if err != nil {
		return nil, toStatus(err)
	}
	limit := int(req.GetLimit())
	if limit == 0 {
		limit = 20
	}
	if limit > maxConflicts {
		return nil, toStatus(fmt.Errorf("%w: conflicts -limit takes at most %d, not %d", errBadInput, maxConflicts, limit))
	}
	list, err := s.Conflicts(ctx, limit)
	if err != nil {
		return nil, toStatus(err)
	}
	r := &replicatorpb.ConflictsReply{}
	for _, cf := range list {
		pc := &replicatorpb.Conflict{Id: uint64(cf.ID), Seqno: cf.Seqno, Fragno: cf.Fragno, Change: uint32(cf.Change), Row: uint32(cf.Row),
			Origin: cf.Origin, Schema: cf.Schema, Table: cf.Table, Key: cf.Key, Action: cf.Action, Kind: cf.Kind,
			Before: cf.Before, Target: cf.Target, After: cf.After, Policy: string(cf.Policy), Decision: string(cf.Decision)}
		if !cf.SourceCommit.IsZero() {
			pc.SourceCommitTimeUs = cf.SourceCommit.UnixMicro()
		}
		if !cf.DetectedAt.IsZero() {
			pc.DetectedAtUs = cf.DetectedAt.UnixMicro()
		}
		r.Conflicts = append(r.Conflicts, pc)
	}
	return r, nil
}

func (c *controlServer) Shutdown(ctx context.Context, _ *replicatorpb.ShutdownRequest) (*replicatorpb.ShutdownReply, error) {
	c.a.Shutdown()
	return &replicatorpb.ShutdownReply{}, nil
}

// storeLog adapts a service's THL store for the THL server; the store may
// change (a damaged one is replaced by reset) or be missing.
type storeLog struct{ svc *service.Service }

var errNoStore = errors.New("this host's THL is damaged and not yet reset")

func (l storeLog) Last() (*thlpb.Event, bool) {
	if s := l.svc.Store(); s != nil {
		return s.Last()
	}
	return nil, false
}

func (l storeLog) Get(seqno uint64) ([]*thlpb.Event, error) {
	if s := l.svc.Store(); s != nil {
		return s.Get(seqno)
	}
	return nil, errNoStore
}

func (l storeLog) NewReader(from uint64) (stream.Reader, error) {
	s := l.svc.Store()
	if s == nil {
		return nil, errNoStore
	}
	r, err := s.NewReader(from)
	if err != nil {
		return nil, err
	}
	return r, nil
}
