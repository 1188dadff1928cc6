package service

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/carbidedb/carbide/replicator/apply"
	"github.com/carbidedb/carbide/replicator/thl"
	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

// Bounds of the changed-keys index: the transactions one question may
// read, and the changes the index holds before it starts again.
const (
	maxChangedScan   = 200_000
	maxChangedSeqnos = 2_000_000
	changedScanTime  = 10 * time.Second
)

// changeIndex is, for the seqnos [from, upTo] of this service's THL, the
// seqnos that changed each row, in order (apply.ChangedKeys): an applier
// of another service on this host asks about the rows it changes for
// every transaction, so the THL is read once, as it grows.
type changeIndex struct {
	mu       sync.Mutex
	from     uint64
	upTo     uint64 // upTo < from: nothing indexed
	keys     map[string][]uint64
	changes  int          // the seqnos keys holds
	lastSeen *thlpb.Event // the last event indexed, to notice a new history
	checked  time.Time    // when lastSeen was last compared with the THL
	reader   *thl.Reader  // positioned after upTo; nil: open one
	// uniques are the unique keys (other than the primary key) asked
	// about, by table: their values are indexed too (apply.UniqueKey).
	uniques map[[2]string][][]string
	// afters are the causal positions (Event.after) of the transactions
	// that deleted rows, by seqno (DeletePositions).
	afters map[uint64][]*thlpb.After
	after  []*thlpb.After // the transaction being indexed's
}

// register adds the unique keys qs ask about to those indexed; true when
// one is new (the index then starts again, to hold its values).
func (x *changeIndex) register(qs []apply.DeletedQuery) bool {
	fresh := false
	for _, q := range qs {
		if len(q.Unique) == 0 {
			continue
		}
		k := [2]string{q.Schema, q.Table}
		if slices.ContainsFunc(x.uniques[k], func(cols []string) bool { return slices.Equal(cols, q.Unique) }) {
			continue
		}
		if x.uniques == nil {
			x.uniques = map[[2]string][][]string{}
		}
		x.uniques[k] = append(x.uniques[k], slices.Clone(q.Unique))
		fresh = true
	}
	return fresh
}

// historyCheck is how often the index makes sure the THL still holds the
// history it indexed.
const historyCheck = time.Second

// reset empties the index, to start after seqno after.
func (x *changeIndex) reset(after uint64) {
	if x.reader != nil {
		x.reader.Close()
	}
	x.keys, x.afters, x.changes, x.from, x.upTo, x.lastSeen, x.reader = map[string][]uint64{}, map[uint64][]*thlpb.After{}, 0, after+1, after, nil, nil
}

// Deleted answers, for each query, whether this service's transactions
// after its seqno changed its row (inserted, updated or deleted it; the
// name is the control API's, from when only deletes were asked about), as
// far as this host's THL holds them (apply/deleted.go; readChanges).
func (s *Service) Deleted(ctx context.Context, queries []apply.DeletedQuery) ([]bool, error) {
	out := make([]bool, len(queries))
	err := s.readChanges(ctx, queries, func(x *changeIndex) {
		for i, q := range queries {
			seqnos := x.keys[apply.TableRowKey(q.Schema, q.Table, q.Key)]
			j, _ := slices.BinarySearch(seqnos, q.After+1)
			out[i] = j < len(seqnos) && (q.UpTo == 0 || seqnos[j] <= q.UpTo)
		}
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// DeletePositions answers, for each query (its AfterOf set), the causal
// position of service AfterOf (Event.after) of this service's first
// transaction after its seqno (up to UpTo) that deleted its row (Key, a
// RowKey), plus one: 0 for no such transaction, 1 where it had applied
// none of AfterOf (apply.PositionsFunc).
func (s *Service) DeletePositions(ctx context.Context, queries []apply.DeletedQuery) ([]uint64, error) {
	out := make([]uint64, len(queries))
	err := s.readChanges(ctx, queries, func(x *changeIndex) {
		for i, q := range queries {
			seqnos := x.keys[apply.TableRowKey(q.Schema, q.Table, apply.DeletedKey(q.Key))]
			j, _ := slices.BinarySearch(seqnos, q.After+1)
			if j == len(seqnos) || q.UpTo != 0 && seqnos[j] > q.UpTo {
				continue
			}
			out[i] = 1
			for _, a := range x.afters[seqnos[j]] {
				if a.GetService() == q.AfterOf {
					out[i] = a.GetSeqno() + 1
				}
			}
		}
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// readChanges brings the index up to what the THL holds for queries (the
// least seqno they ask after, the unique keys they ask about) and runs f
// on it, locked; f is not run where the THL holds nothing after that
// seqno (nothing changed). On the master, its clients' transactions are
// in the database before they are in the THL: it reads once its
// extractor has stored everything the binlog holds at the question, so a
// change committed before the asking applier took its row's lock is seen.
func (s *Service) readChanges(ctx context.Context, queries []apply.DeletedQuery, f func(x *changeIndex)) error {
	if len(queries) == 0 {
		return nil
	}
	if err := s.extractedNow(ctx); err != nil {
		return err
	}
	least := queries[0].After
	for _, q := range queries {
		least = min(least, q.After)
	}
	last, ok := s.store.MaxSeqno()
	if !ok || last <= least {
		return nil
	}
	x := &s.changes
	x.mu.Lock()
	defer x.mu.Unlock()
	fresh := x.register(queries)
	if fresh || x.keys == nil || x.upTo < x.from || least+1 < x.from || last < x.upTo || x.changes > maxChangedSeqnos || !x.sameHistory(s) {
		x.reset(least)
	}
	if last > x.upTo {
		if last-x.upTo > maxChangedScan {
			x.reset(last)
			return fmt.Errorf("%d transactions of %s after seqno %d: too many to read", last-x.upTo, s.cfg.Name, x.upTo)
		}
		if err := x.index(ctx, s, last); err != nil {
			x.reset(last)
			return err
		}
	}
	f(x)
	return nil
}

// extractedNow, on a master, waits until its extractor has stored what
// its database's binlog holds now. A master whose database is down
// stored its binlog files' tail: nothing more was committed there.
func (s *Service) extractedNow(ctx context.Context) error {
	s.mu.Lock()
	role := s.role
	s.mu.Unlock()
	if role != RoleMaster {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, changedScanTime)
	defer cancel()
	x, err := s.onlineMaster(ctx, "the concurrent-change check")
	if errors.Is(err, errTailFinal) {
		return nil
	}
	if err != nil {
		return err
	}
	target, err := x.BinlogEnd(ctx)
	if err != nil {
		return fmt.Errorf("read the end of %s's binlog: %w", s.cfg.Name, err)
	}
	return waitExtracted(ctx, x, target)
}

// sameHistory says whether the last event indexed is still in the THL as
// it was (a reset or a new master's history starts the index again).
func (x *changeIndex) sameHistory(s *Service) bool {
	if x.lastSeen == nil || time.Since(x.checked) < historyCheck {
		return true
	}
	x.checked = time.Now()
	frags, err := s.store.Get(x.lastSeen.GetSeqno())
	if err != nil || len(frags) == 0 {
		return false
	}
	ev := frags[len(frags)-1]
	return ev.GetEpoch() == x.lastSeen.GetEpoch() && ev.GetEventId() == x.lastSeen.GetEventId()
}

// index reads the THL from upTo+1 to last into the index, with a reader
// kept from one question to the next.
func (x *changeIndex) index(ctx context.Context, s *Service, last uint64) error {
	ctx, cancel := context.WithTimeout(ctx, changedScanTime)
	defer cancel()
	if x.reader == nil {
		r, err := s.store.NewReader(x.upTo + 1)
		if err != nil {
			return fmt.Errorf("read %s from seqno %d: %w", s.cfg.Name, x.upTo+1, err)
		}
		x.reader = r
	}
	for {
		ev, err := x.reader.Next(ctx)
		if err != nil {
			return fmt.Errorf("read %s after seqno %d: %w", s.cfg.Name, x.upTo, err)
		}
		if ev.GetFragno() == 0 {
			x.after = ev.GetAfter()
		}
		for _, c := range ev.GetChanges() {
			if rc := c.GetRows(); rc != nil {
				x.add(rc, ev.GetSeqno(), apply.ChangedRowKeys(rc))
				if deleted := apply.DeletedRowKeys(rc); len(deleted) > 0 {
					x.add(rc, ev.GetSeqno(), deleted)
					if _, ok := x.afters[ev.GetSeqno()]; !ok && len(x.after) > 0 {
						x.afters[ev.GetSeqno()] = x.after
						x.changes++
					}
				}
				x.addReinserted(rc, apply.MadeRowKeys(rc))
				for _, cols := range x.uniques[[2]string{rc.GetSchema(), rc.GetTable()}] {
					x.add(rc, ev.GetSeqno(), apply.ChangedUniqueKeys(rc, cols))
				}
			}
		}
		if ev.GetLastFrag() {
			x.upTo, x.lastSeen = ev.GetSeqno(), ev
			if ev.GetSeqno() >= last {
				return nil
			}
		}
	}
}

// add notes that seqno changed the rows of rc's table with keys.
func (x *changeIndex) add(rc *thlpb.RowChange, seqno uint64, keys []string) {
	for _, k := range keys {
		k = apply.TableRowKey(rc.GetSchema(), rc.GetTable(), k)
		if seqnos := x.keys[k]; len(seqnos) == 0 || seqnos[len(seqnos)-1] != seqno {
			x.keys[k] = append(seqnos, seqno)
			x.changes++
		}
	}
}

// addReinserted notes, for the rows of rc's table with keys that rc
// makes, the seqno of the DELETE each follows, as apply.ReinsertedKey:
// the row was deleted then and is back (once for each DELETE).
func (x *changeIndex) addReinserted(rc *thlpb.RowChange, keys []string) {
	for _, k := range keys {
		deleted := x.keys[apply.TableRowKey(rc.GetSchema(), rc.GetTable(), apply.DeletedKey(k))]
		if len(deleted) == 0 {
			continue
		}
		d := deleted[len(deleted)-1]
		k = apply.TableRowKey(rc.GetSchema(), rc.GetTable(), apply.ReinsertedKey(k))
		if back := x.keys[k]; len(back) == 0 || back[len(back)-1] < d {
			x.keys[k] = append(back, d)
			x.changes++
		}
	}
}
