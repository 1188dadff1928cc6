package service

import (
	"context"
	"fmt"
	"time"

	"github.com/carbidedb/carbide/replicator/apply"
	"github.com/carbidedb/carbide/rpc/gen/replicatorpb"
	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

// A master's THL describes what its database holds: its replicas apply
// what it serves. A replica promoted by a forced failover may have stored
// transactions of the old master that it never applied (its applier was
// blocked by a lock): they are not in its database, and served to the
// replicas they would put rows there that the new primary lacks. So a
// service going online as master drops the tail of its THL after its
// tracking row when that tail holds only transactions other hosts
// extracted; its own (extracted from its binlog) are in its database and
// are always kept.

// Dropped is the tail a master dropped from its THL when it went online.
type Dropped struct {
	From, To uint64 // the seqnos dropped
	Applied  uint64 // the tracking row's seqno: the database held up to it
	SourceID string // the host that extracted them
	At       time.Time
}

func (d *Dropped) String() string {
	return fmt.Sprintf("seqnos %d to %d (extracted by %s; this database had applied up to seqno %d)", d.From, d.To, d.SourceID, d.Applied)
}

// dropUnapplied truncates the THL after the last transaction the database
// holds when what follows it are transactions other hosts extracted; it
// returns what it dropped (nil: nothing). The database holds every seqno
// up to its tracking row (tracker's position, read from the database) and
// every one this host extracted. It refuses, without touching the THL,
// when the tracking row holds nothing and such a tail exists: what the
// database holds is unknown then.
func (s *Service) dropUnapplied(ctx context.Context, tracker Applier) (*Dropped, error) {
	last, hasLast := s.store.Last()
	partial, hasPartial := s.store.Partial()
	if !hasLast && !hasPartial {
		return nil, nil
	}
	if (!hasPartial || partial.GetSourceId() == s.cfg.Host) && (!hasLast || last.GetSourceId() == s.cfg.Host) {
		return nil, nil // it ends with its own: nothing after it to drop
	}
	pos, applied := tracker.Position()
	start := uint64(0)
	if applied {
		start = pos.Seqno + 1
	}
	if min, ok := s.store.MinSeqno(); ok && start < min {
		start = min
	}
	// cut is the first seqno of the tail, end its last.
	cut, end, source := start, uint64(0), ""
	if hasLast && last.GetSeqno() >= start {
		var err error
		if cut, source, err = s.foreignTail(ctx, start, last.GetSeqno()); err != nil {
			return nil, err
		}
		end = last.GetSeqno()
	}
	if hasPartial && partial.GetSeqno() >= start {
		// An unfinished transaction: dropped here when another host
		// extracted it (its last fragment never came); this host's own
		// is dropped by dropIncomplete, and extracted again.
		if partial.GetSourceId() == s.cfg.Host {
			cut = partial.GetSeqno() + 1
		} else if cut <= partial.GetSeqno() {
			end = partial.GetSeqno()
			if source == "" {
				source = partial.GetSourceId()
			}
		}
	}
	if source == "" || cut > end {
		return nil, nil
	}
	if !applied {
		return nil, fmt.Errorf("%w: service %s cannot go online as master: its THL holds seqnos %d to %d, extracted by %s, and its database has no tracking row (%s.trep_commit_seqno), so which of them the database holds is unknown; provision this host (tprovision) or empty its THL (trepctl reset -thl) before making it master",
			ErrState, s.cfg.Name, cut, end, source, apply.TrackingSchema(s.cfg.Name))
	}
	d := &Dropped{From: cut, To: end, Applied: pos.Seqno, SourceID: source, At: time.Now()}
	var err error
	if cut == 0 {
		err = s.store.Reset()
	} else {
		err = s.store.Truncate(cut - 1)
	}
	if err != nil {
		return nil, fmt.Errorf("drop the THL's seqnos %d to %d, which this database never applied: %w", cut, end, err)
	}
	s.log.Warn("the THL held transactions this database never applied (a forced failover gave them up): dropped them before extracting; replicas that stored or applied them must be reprovisioned",
		"from", d.From, "to", d.To, "applied", d.Applied, "extracted_by", d.SourceID)
	s.mu.Lock()
	s.dropped = d
	s.mu.Unlock()
	return d, nil
}

// foreignTail reads the complete transactions from seqno `from` to `last`
// and returns the first seqno of their tail that holds no transaction this
// host extracted (last+1 when the last is its own), and who extracted the
// first of that tail.
func (s *Service) foreignTail(ctx context.Context, from, last uint64) (cut uint64, source string, err error) {
	r, err := s.store.NewReader(from)
	if err != nil {
		return 0, "", fmt.Errorf("read the THL from seqno %d: %w", from, err)
	}
	defer r.Close()
	cut = from
	var first *thlpb.Event // the first foreign transaction since cut
	for {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		ev, err := r.Next(rctx)
		cancel()
		if err != nil {
			return 0, "", fmt.Errorf("read the THL from seqno %d: %w", from, err)
		}
		if ev.GetLastFrag() {
			switch {
			case ev.GetSourceId() == s.cfg.Host:
				cut, first = ev.GetSeqno()+1, nil
			case first == nil:
				first = ev
			}
		}
		if ev.GetSeqno() >= last && ev.GetLastFrag() {
			break
		}
	}
	if first != nil {
		source = first.GetSourceId()
	}
	return cut, source, nil
}

// droppedTail is what Status shows of the last drop (nil, "NONE": none).
func (s *Service) droppedTail() (*replicatorpb.DroppedTail, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.dropped
	if d == nil {
		return nil, "NONE"
	}
	return &replicatorpb.DroppedTail{FromSeqno: d.From, ToSeqno: d.To, SourceId: d.SourceID, AppliedSeqno: d.Applied}, d.String()
}
