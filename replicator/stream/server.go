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
	case errors.As(err, new(*BehindError)):
		var be *BehindError
		errors.As(err, &be)
		return behindStatus(be)
	case errors.Is(err, ErrUnknownService):
		return status.Error(codes.NotFound, err.Error())
	case status.Code(err) == codes.ResourceExhausted:
		return err // an event over the send limit: the client stops before it
	}
	return status.Error(codes.Unavailable, err.Error())
}

// check verifies that l holds the client's last transaction, and returns
// the seqno to stream from. A primary whose log ends before the client's
// last transaction never had it: the client has diverged. A replica's
// log may just not have it yet (it restarted, or it is behind the source
// the client read before): the client tries another source, or this one
// again later, and the check is made when it has caught up.
func check(l Log, req *thlpb.StreamRequest, primary bool) (uint64, error) {
	if !req.GetHasLast() {
		return 0, nil
	}
	n := req.GetLastSeqno()
	frags, err := l.Get(n)
	if err != nil || len(frags) == 0 {
		last, ok := l.Last()
		if !primary && (!ok || last.GetSeqno() < n) {
			end := "is empty"
			if ok {
				end = fmt.Sprintf("ends at seqno %d", last.GetSeqno())
			}
			var l *thlpb.Event
			if ok {
				l = last
			}
			return 0, &BehindError{Last: l, msg: fmt.Sprintf("%v: this replica's log %s and the client holds seqno %d; try another source", ErrBehind, end, n)}
		}
		if ok && last.GetSeqno() < n {
			return 0, fmt.Errorf("%w at seqno %d: the client holds seqno %d but this server's log ends at %d (the client has transactions this primary never had)", ErrDiverged, last.GetSeqno()+1, n, last.GetSeqno())
		}
		if !ok {
			return 0, fmt.Errorf("%w at seqno 0: the client holds seqno %d but this server's log is empty", ErrDiverged, n)
		}
		return 0, fmt.Errorf("seqno %d is no longer in this server's log (%v); reprovision the client or read from another host", n, err)
	}
	ev := frags[len(frags)-1]
	if ev.GetEpoch() != req.GetLastEpoch() || ev.GetEventId() != req.GetLastEventId() {
		return 0, fmt.Errorf("%w at seqno %d: the client has epoch %d event %s, this server epoch %d event %s", ErrDiverged, n, req.GetLastEpoch(), req.GetLastEventId(), ev.GetEpoch(), ev.GetEventId())
	}
	return n + 1, nil
}

func (s *Server) stream(ctx context.Context, req *thlpb.StreamRequest, send func(*thlpb.StreamMessage) error) error {
	s.mu.RLock()
	sv, ok := s.logs[req.GetService()]
	s.mu.RUnlock()
	if !ok {
		return fmt.Errorf("%w %q: this replicator does not serve it", ErrUnknownService, req.GetService())
	}
	from, err := check(sv.log, req, sv.role == nil || sv.role() == "master")
	if err != nil {
		s.log.Warn("THL client refused", "service", req.GetService(), "client", req.GetClientHost(), "error", err)
		return err
	}
	r, err := sv.log.NewReader(from)
	if err != nil {
		return err
	}
	defer r.Close()
	s.log.Info("THL client connected", "service", req.GetService(), "client", req.GetClientHost(), "from", from)

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
		if err := send(&thlpb.StreamMessage{Message: &thlpb.StreamMessage_Event{Event: ev}}); err != nil {
			return err
		}
	}
}
