package stream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

// Server serves the THL of one or more services.
type Server struct {
	thlpb.UnimplementedTHLServer

	heartbeat time.Duration
	log       *slog.Logger

	mu   sync.RWMutex
	logs map[string]served
}

type served struct {
	log  Log
	role func() string
}

// NewServer returns a server sending a heartbeat every interval when idle.
func NewServer(interval time.Duration, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if interval <= 0 {
		interval = time.Second
	}
	return &Server{heartbeat: interval, log: log, logs: map[string]served{}}
}

// Serve makes service's log available; role reports the service's role
// for heartbeats. Serve(service, nil, nil) withdraws it.
func (s *Server) Serve(service string, l Log, role func() string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l == nil {
		delete(s.logs, service)
		return
	}
	s.logs[service] = served{log: l, role: role}
}

// Stream implements thlpb.THLServer.
func (s *Server) Stream(req *thlpb.StreamRequest, stream thlpb.THL_StreamServer) error {
	err := s.stream(stream.Context(), req, stream.Send)
	switch {
	case err == nil, errors.Is(err, context.Canceled):
		return nil
	case errors.Is(err, ErrDiverged):
		return status.Error(codes.FailedPrecondition, err.Error())
	case errors.Is(err, ErrUnknownService):
		return status.Error(codes.NotFound, err.Error())
	}
	return status.Error(codes.Unavailable, err.Error())
}

// errBehind: this server's log ends before the client's last
// transaction. A replica serving a cross-site reader may lag it; only
// once the log holds that seqno can it tell whether the histories agree.
var errBehind = errors.New("the log ends before the client's last transaction")

// check verifies that l holds the client's last transaction, and returns
// the seqno to stream from; errBehind when l does not reach it yet.
func check(l Log, req *thlpb.StreamRequest) (uint64, error) {
	if !req.GetHasLast() {
		return 0, nil
	}
	n := req.GetLastSeqno()
	frags, err := l.Get(n)
	if err != nil || len(frags) == 0 {
		if last, ok := l.Last(); !ok || last.GetSeqno() < n {
			return 0, errBehind
		}
		return 0, fmt.Errorf("seqno %d is no longer in this server's log (%v); reprovision the client or read from another host", n, err)
	}
	if err := same(frags[len(frags)-1], req); err != nil {
		return 0, err
	}
	return n + 1, nil
}

// same reports whether ev, the last fragment of the client's last seqno
// here, is the client's.
func same(ev *thlpb.Event, req *thlpb.StreamRequest) error {
	if ev.GetEpoch() != req.GetLastEpoch() || ev.GetEventId() != req.GetLastEventId() {
		return fmt.Errorf("%w at seqno %d: the client has epoch %d event %s, this server epoch %d event %s", ErrDiverged, req.GetLastSeqno(), req.GetLastEpoch(), req.GetLastEventId(), ev.GetEpoch(), ev.GetEventId())
	}
	return nil
}

func (s *Server) stream(ctx context.Context, req *thlpb.StreamRequest, send func(*thlpb.StreamMessage) error) error {
	s.mu.RLock()
	sv, ok := s.logs[req.GetService()]
	s.mu.RUnlock()
	if !ok {
		return fmt.Errorf("%w %q: this replicator does not serve it", ErrUnknownService, req.GetService())
	}
	from, err := check(sv.log, req)
	// awaiting: the client's last seqno, which this log must reach, and
	// hold as the client does, before anything is sent.
	awaiting, behind := req.GetLastSeqno(), errors.Is(err, errBehind)
	switch {
	case behind:
		from = 0
		if last, ok := sv.log.Last(); ok {
			from = last.GetSeqno() + 1
		}
		s.log.Info("THL client is ahead of this log; waiting until it holds the client's last transaction", "service", req.GetService(), "client", req.GetClientHost(), "client_seqno", awaiting, "from", from)
	case err != nil:
		s.log.Warn("THL client refused", "service", req.GetService(), "client", req.GetClientHost(), "error", err)
		return err
	}
	r, err := sv.log.NewReader(from)
	if err != nil {
		return err
	}
	defer r.Close()
	if !behind {
		s.log.Info("THL client connected", "service", req.GetService(), "client", req.GetClientHost(), "from", from)
	}

	// One goroutine reads and sends (no hand-over per event): each wait
	// for the next event ends at the next heartbeat.
	next := time.Now().Add(s.heartbeat)
	for {
		if !time.Now().Before(next) {
			next = time.Now().Add(s.heartbeat)
			hb := &thlpb.Heartbeat{TimeUs: time.Now().UnixMicro()}
			if last, ok := sv.log.Last(); ok {
				hb.MaxSeqno = last.GetSeqno()
			}
			if sv.role != nil {
				hb.Role = sv.role()
			}
			if err := send(&thlpb.StreamMessage{Message: &thlpb.StreamMessage_Heartbeat{Heartbeat: hb}}); err != nil {
				return err
			}
		}
		wctx, cancel := context.WithDeadline(ctx, next)
		ev, err := r.Next(wctx)
		cancel()
		if err != nil {
			if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
				continue // heartbeat time
			}
			return err
		}
		if behind {
			if ev.GetSeqno() < awaiting || ev.GetSeqno() == awaiting && !ev.GetLastFrag() {
				continue // the client holds it
			}
			behind = false
			if err := same(ev, req); err != nil {
				s.log.Warn("THL client refused", "service", req.GetService(), "client", req.GetClientHost(), "error", err)
				return err
			}
			s.log.Info("THL client connected", "service", req.GetService(), "client", req.GetClientHost(), "from", awaiting+1)
			continue
		}
		if err := send(&thlpb.StreamMessage{Message: &thlpb.StreamMessage_Event{Event: ev}}); err != nil {
			return err
		}
	}
}
