package stream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

// Store is the part of the replica's THL store the client writes.
type Store interface {
	// Last returns the last fragment of the last complete transaction.
	Last() (*thlpb.Event, bool)
	// Append stores events in order.
	Append(events ...*thlpb.Event) error
	// Sync makes what was appended durable.
	Sync() error
	// Partial returns the last stored fragment when the store ends inside
	// a transaction whose last fragment has not arrived yet.
	Partial() (*thlpb.Event, bool)
	// DropIncomplete removes the fragments of that transaction; the client
	// calls it only when its source sends a different transaction there.
	DropIncomplete() error
}

// ClientConfig configures a Client.
type ClientConfig struct {
	Service    string
	ClientHost string
	// Sources are "host:port" THL servers in order of preference.
	Sources []string
	// DialOptions are added to every dial (TLS, auth).
	DialOptions []grpc.DialOption
	// MinBackoff and MaxBackoff bound the wait between connection attempts
	// once every source has failed.
	MinBackoff, MaxBackoff time.Duration
	// SyncEvery bounds how long received events stay unsynced.
	SyncEvery time.Duration
	// Resolve turns a source ("east1:2112") into the address to dial;
	// nil dials the source as it is.
	Resolve func(source string) string
	// Order, when set, ranks the sources now (best first), e.g. from the
	// origin site's managers; sources it leaves out are tried after the
	// ones it names, and nil means Sources as they are.
	Order func(ctx context.Context, sources []string) []string
	// Recheck is how often, while connected to a source that is not the
	// first in Order's ranking, the client looks again and moves to the
	// better one (default 5 s).
	Recheck time.Duration
	// OnConnect, when set, runs when a source's stream starts, before its
	// first event is stored.
	OnConnect func()
	// MaxMessageSize bounds a received message (default and upper bound
	// MaxMessageSize).
	MaxMessageSize int
	Logger         *slog.Logger
}

// Validate fills defaults and checks c.
func (c *ClientConfig) Validate() error {
	if c.Service == "" {
		return errors.New("stream: client without a service")
	}
	if len(c.Sources) == 0 {
		return fmt.Errorf("stream: service %s has no THL source; give it a master URI (trepctl setrole -role slave -uri thl://host:2112/)", c.Service)
	}
	if c.MinBackoff <= 0 {
		c.MinBackoff = 100 * time.Millisecond
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = 5 * time.Second
	}
	if c.SyncEvery <= 0 {
		c.SyncEvery = 50 * time.Millisecond
	}
	if c.Recheck <= 0 {
		c.Recheck = 5 * time.Second
	}
	if c.MaxMessageSize <= 0 || c.MaxMessageSize > MaxMessageSize {
		c.MaxMessageSize = MaxMessageSize
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// ClientStatus is what trepctl status shows of the connection.
type ClientStatus struct {
	Source        string // connected source, "" when none
	Connected     bool
	LastHeartbeat time.Time
	MasterSeqno   uint64 // the source's last stored seqno, from heartbeats
	LastError     string
}

// Client fetches a service's THL from its sources into a store.
type Client struct {
	cfg ClientConfig

	mu sync.Mutex
	st ClientStatus
}

// NewClient returns a client; Run starts it.
func NewClient(cfg ClientConfig) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Client{cfg: cfg}, nil
}

// Status returns the connection's state.
func (c *Client) Status() ClientStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.st
}

func (c *Client) setStatus(f func(*ClientStatus)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f(&c.st)
}

// Run fetches until ctx ends (returning nil), the client has diverged
// from its source (an error wrapping ErrDiverged), an event is over the
// message size limit (ErrTooLarge) or the store fails (ErrStore): no
// other source can help with those. Other failures move to the next
// source, with backoff once all have failed.
func (c *Client) Run(ctx context.Context, store Store) error {
	backoff := c.cfg.MinBackoff
	for {
		for _, src := range c.ranked(ctx) {
			got, err := c.fetch(ctx, src, store)
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, ErrDiverged) || errors.Is(err, ErrTooLarge) || errors.Is(err, ErrStore) {
				c.setStatus(func(s *ClientStatus) { s.Connected, s.LastError = false, errText(err) })
				return err
			}
			if errors.Is(err, errBetterSource) {
				c.cfg.Logger.Info("moving to a better THL source", "from", src, "reason", err)
				backoff = c.cfg.MinBackoff
				break
			}
			c.setStatus(func(s *ClientStatus) { s.Connected, s.LastError = false, errText(err) })
			c.cfg.Logger.Warn("THL source failed", "source", src, "error", err)
			if got {
				backoff = c.cfg.MinBackoff
			}
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return nil
		}
		backoff = min(2*backoff, c.cfg.MaxBackoff)
	}
}

// errBetterSource ends a fetch so that Run reconnects to a source the
// ranking now prefers.
var errBetterSource = errors.New("a better source is available")

// ranked returns the sources in the order to try them now.
func (c *Client) ranked(ctx context.Context) []string {
	if c.cfg.Order == nil {
		return c.cfg.Sources
	}
	octx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var out []string
	for _, s := range c.cfg.Order(octx, c.cfg.Sources) {
		if slices.Contains(c.cfg.Sources, s) && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	for _, s := range c.cfg.Sources {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// better tells, when src is not the best ranked source, which one is.
func (c *Client) better(ctx context.Context, src string) (string, bool) {
	if c.cfg.Order == nil {
		return "", false
	}
	octx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	for _, s := range c.cfg.Order(octx, c.cfg.Sources) {
		if slices.Contains(c.cfg.Sources, s) {
			return s, s != src
		}
	}
	return "", false
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	msg := err.Error()
	if st, ok := status.FromError(err); ok {
		msg = st.Message()
	}
	// A failed dial comes wrapped: connection error: desc = "transport:
	// Error while dialing: <what happened>".
	const dialing = "transport: Error while dialing: "
	if i := strings.Index(msg, dialing); i >= 0 {
		msg = strings.TrimSuffix(msg[i+len(dialing):], `"`)
	}
	return msg
}

// How a received fragment relates to a transaction stored in part.
const (
	fragNext   = iota // the fragment after the stored ones: append it
	fragStored        // one of the stored fragments: skip it
	fragOther         // another transaction: drop the stored part
)

// resume tells how ev relates to partial, the last stored fragment of an
// unfinished transaction. Fragments of one transaction share its seqno,
// epoch, source and event id; a fragment that is last where the stored
// one at that fragno is not belongs to another cut of the transaction.
func resume(partial, ev *thlpb.Event) int {
	same := ev.GetSeqno() == partial.GetSeqno() && ev.GetEpoch() == partial.GetEpoch() &&
		ev.GetEventId() == partial.GetEventId() && ev.GetSourceId() == partial.GetSourceId()
	switch {
	case !same:
		return fragOther
	case ev.GetFragno() <= partial.GetFragno() && !ev.GetLastFrag():
		return fragStored
	case ev.GetFragno() == partial.GetFragno()+1:
		return fragNext
	}
	return fragOther
}

// nextEvent is the event the store lacks next: the fragment after an
// unfinished transaction's, or the first of the transaction after the
// last complete one.
func nextEvent(store Store) (seqno uint64, fragno uint32) {
	if p, ok := store.Partial(); ok {
		return p.GetSeqno(), p.GetFragno() + 1
	}
	if last, ok := store.Last(); ok {
		return last.GetSeqno() + 1, 0
	}
	return 0, 0
}

// fetch streams from one source; got reports whether any message came.
func (c *Client) fetch(ctx context.Context, src string, store Store) (got bool, err error) {
	opts := append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(c.cfg.MaxMessageSize))}, c.cfg.DialOptions...)
	target := src
	if c.cfg.Resolve != nil {
		target = c.cfg.Resolve(src)
	}
	conn, err := grpc.NewClient(target, opts...)
	if err != nil {
		return false, err
	}
	defer conn.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req := &thlpb.StreamRequest{Service: c.cfg.Service, ClientHost: c.cfg.ClientHost}
	if last, ok := store.Last(); ok {
		req.HasLast, req.LastSeqno, req.LastEpoch, req.LastEventId = true, last.GetSeqno(), last.GetEpoch(), last.GetEventId()
	}
	stream, err := thlpb.NewTHLClient(conn).Stream(ctx, req)
	if err != nil {
		return false, err
	}
	dirty := false
	lastSync := time.Now()
	// The stream starts at the first fragment after the last complete
	// transaction. A transaction stored in part (the last stream ended
	// inside it) is kept: its applier may be reading it already, and
	// every source of one history holds the same fragments. The fragments
	// already stored are checked and skipped; a source holding another
	// transaction there (a new primary's history) replaces it.
	partial, hasPartial := store.Partial()
	if c.cfg.Order != nil {
		// Look for a better source now and then; a better one ends this
		// stream (the message loop sees the cancelled context).
		recheck := time.NewTicker(c.cfg.Recheck)
		defer recheck.Stop()
		var betterErr error
		var mu sync.Mutex
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case <-recheck.C:
					if b, ok := c.better(ctx, src); ok {
						mu.Lock()
						betterErr = fmt.Errorf("%w: %s", errBetterSource, b)
						mu.Unlock()
						cancel()
						return
					}
				}
			}
		}()
		defer func() {
			mu.Lock()
			defer mu.Unlock()
			if betterErr != nil {
				err = betterErr
			}
		}()
	}
	// Syncs run beside the receive loop, so that an fsync stalled by a
	// busy disk does not hold up the events behind it; the last one runs
	// on the way out.
	syncReq, syncErr, syncDone := make(chan struct{}, 1), make(chan error, 1), make(chan struct{})
	go func() {
		defer close(syncDone)
		for range syncReq {
			if err := store.Sync(); err != nil {
				select {
				case syncErr <- err:
				default:
				}
			}
		}
	}()
	defer func() {
		close(syncReq)
		<-syncDone
		if serr := store.Sync(); serr != nil && err == nil {
			err = serr
		}
	}()
	for {
		msg, err := stream.Recv()
		if err != nil {
			if status.Code(err) == codes.FailedPrecondition {
				return got, fmt.Errorf("%w: %s", ErrDiverged, status.Convert(err).Message())
			}
			if last, ok := sourceLast(err); ok {
				if derr := behindDiverged(store, src, last); derr != nil {
					return got, derr
				}
			}
			if err == io.EOF {
				return got, errors.New("the source closed the stream")
			}
			if status.Code(err) == codes.ResourceExhausted {
				// Over the limit of this end or the source's: the same
				// event comes from every source, so stop before it.
				le := &LimitError{Source: src, Limit: c.cfg.MaxMessageSize, Detail: status.Convert(err).Message()}
				le.Seqno, le.Fragno = nextEvent(store)
				return got, le
			}
			return got, err
		}
		if !got {
			got = true
			c.setStatus(func(s *ClientStatus) { s.Source, s.Connected, s.LastError = src, true, "" })
			c.cfg.Logger.Info("THL source connected", "source", src)
			if c.cfg.OnConnect != nil {
				c.cfg.OnConnect()
			}
		}
		switch m := msg.GetMessage().(type) {
		case *thlpb.StreamMessage_Event:
			ev := m.Event
			if hasPartial {
				switch resume(partial, ev) {
				case fragStored:
					continue
				case fragOther:
					c.cfg.Logger.Warn("the source holds another transaction where this replica holds part of one: dropping the part",
						"source", src, "seqno", partial.GetSeqno(), "stored_fragno", partial.GetFragno(), "stored_event_id", partial.GetEventId(),
						"source_epoch", ev.GetEpoch(), "source_event_id", ev.GetEventId())
					if err := store.DropIncomplete(); err != nil {
						return got, fmt.Errorf("%w: %w", ErrStore, err)
					}
				}
				hasPartial = false
			}
			if err := store.Append(ev); err != nil {
				return got, fmt.Errorf("%w: %w", ErrStore, err)
			}
			dirty = true
		case *thlpb.StreamMessage_Heartbeat:
			c.setStatus(func(s *ClientStatus) { s.LastHeartbeat, s.MasterSeqno = time.Now(), m.Heartbeat.GetMaxSeqno() })
		}
		if dirty && time.Since(lastSync) >= c.cfg.SyncEvery {
			select {
			case syncReq <- struct{}{}:
			default: // one is queued: it covers these events too
			}
			dirty, lastSync = false, time.Now()
		}
		select {
		case err := <-syncErr:
			return got, fmt.Errorf("%w: %w", ErrStore, err)
		default:
		}
	}
}
