package service

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/carbidedb/carbide/internal/position"
	"github.com/carbidedb/carbide/internal/testutil"
	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

// A master whose database dies (its port refuses connections) reads the
// tail of the binlog files, the transactions its clients saw committed
// that the stream had not passed on, into its THL; Flush then says the
// THL is final (a failover's candidate fetches them).

// flushFinal waits until Flush says the THL is final, at seqno want.
func flushFinal(t *testing.T, s *Service, want int64) {
	t.Helper()
	testutil.Eventually(t, 5*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		if n, err := s.Flush(ctx); err != nil || n != want {
			return fmt.Errorf("flush = %d, %v; want %d", n, err, want)
		}
		return nil
	})
}

// TestMasterStoresBinlogTailWhenDatabaseDies: the database dies with two
// transactions the stream never passed on; the master stores them after
// the last, in its lineage, and its THL is final: Flush returns the last
// seqno, Locate refuses (ErrState) while nothing more can come. When the
// database is back the master continues after the tail, nothing twice.
func TestMasterStoresBinlogTailWhenDatabaseDies(t *testing.T) {
	h := newHarness(t)
	s := onlineMasterOf(t, h, 3) // seqnos 0..2, offsets 100..300
	h.binlog.die(2)
	flushFinal(t, s, 4)
	h.binlog.mu.Lock()
	from := h.binlog.tailFrom
	h.binlog.mu.Unlock()
	if from != localPos(300) {
		t.Errorf("the tail was read from %s, want after the last stored transaction (%s)", from, localPos(300))
	}
	for seqno := uint64(3); seqno <= 4; seqno++ {
		if ev := event(t, s, seqno); ev.GetEventId() != localID(seqno+1) || ev.GetSourceId() != "east2" || ev.GetEpoch() != 0 || !ev.GetLastFrag() {
			t.Errorf("seqno %d: %v; want the tail's transaction at %s", seqno, ev, localID(seqno+1))
		}
	}
	if st := s.Status(); st.GetState() != StateGoingOnline {
		t.Errorf("state %s while the database is down, want GOING-ONLINE", st.GetState())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, _, err := s.Locate(ctx, localPos(300)); !errors.Is(err, errTailFinal) || !errors.Is(err, ErrState) {
		t.Errorf("locate while the database is down: %v, want errTailFinal (ErrState)", err)
	}

	h.binlog.revive()
	waitState(t, s, StateOnline)
	h.binlog.commit(1)
	waitApplied(t, s, 5)
	if n, err := s.Flush(ctx); err != nil || n != 5 {
		t.Fatalf("flush once back = %d, %v; want 5", n, err)
	}
	if ev := event(t, s, 5); ev.GetEventId() != localID(6) {
		t.Fatalf("seqno 5 at %s, want %s (after the tail)", ev.GetEventId(), localID(6))
	}
	if frags, err := s.Store().Get(4); err != nil || len(frags) != 1 {
		t.Fatalf("seqno 4: %d fragments, %v; want one", len(frags), err)
	}
}

// TestMasterTailOfNothing: a master that stored nothing when its
// database died, and whose binlog files hold nothing more, has a final
// THL that is empty: Flush says -1.
func TestMasterTailOfNothing(t *testing.T) {
	h := newHarness(t)
	s := h.start(RoleMaster)
	if err := s.Online(OnlineOptions{}); err != nil {
		t.Fatal(err)
	}
	waitState(t, s, StateOnline)
	h.binlog.die(0)
	flushFinal(t, s, -1)
}

// TestMasterTailAfterPartialTransaction: extraction stopped by the
// database's death between two parts of a transaction: the tail drops
// the part stored and stores the transaction whole.
func TestMasterTailAfterPartialTransaction(t *testing.T) {
	h := newHarness(t)
	h.binlog.parts = 2
	s := onlineMasterOf(t, h, 2) // seqnos 0, 1
	h.binlog.change(func() {
		h.binlog.end += 100
		h.binlog.breakAt, h.binlog.breakErr = h.binlog.end, errConnReset
		h.binlog.down, h.binlog.streamed = true, h.binlog.end
	})
	flushFinal(t, s, 2)
	frags, err := s.Store().Get(2)
	if err != nil || len(frags) != 1 || !frags[0].GetLastFrag() || frags[0].GetEventId() != localID(3) {
		t.Fatalf("seqno 2: %v, %v; want it whole, at %s", frags, err, localID(3))
	}
	if _, ok := s.Store().Partial(); ok {
		t.Fatal("the THL still ends inside a transaction")
	}
}

// TestMasterTailStartsAfterLastOwnTransaction: the tail is read after
// the last transaction stored, when this host extracted it, and again
// from where the oldest XA transaction it left prepared began; when
// another host extracted the last (a promoted slave that extracted
// nothing yet), from where this run's extraction started.
func TestMasterTailStartsAfterLastOwnTransaction(t *testing.T) {
	gtid := position.Position{File: "local-bin.000001", Offset: 0, GTID: "0-1-5"}
	for _, c := range []struct {
		name         string
		source       string // who extracted seqnos 0 and 1
		prepared     bool   // seqno 1 left XA transactions prepared
		more         int    // transactions extracted in this run
		from         uint64 // where the tail is read from
		wantPrepared position.Position
		last, epoch  uint64
	}{
		{"XA prepared by the last", "east2", true, 0, 100, gtid, 2, 0},
		{"a transaction after it", "east2", true, 1, 200, position.Position{}, 3, 0},
		{"another host's last", "east1", false, 0, 100, position.Position{}, 2, 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			s := h.start(RoleMaster)
			storeEvents(t, s, 0, 0, c.source)
			ev := &thlpb.Event{Seqno: 1, LastFrag: true, EventId: eventID(1), SourceId: c.source}
			if c.source == "east2" {
				ev.EventId = localID(1)
			}
			if c.prepared {
				ev.PreparedFrom = gtid.String()
			}
			if err := s.Store().Append(ev); err != nil {
				t.Fatal(err)
			}
			h.db.setTracking(1)
			h.binlog.end = 100
			if err := s.Online(OnlineOptions{}); err != nil {
				t.Fatal(err)
			}
			waitState(t, s, StateOnline)
			if c.more > 0 {
				h.binlog.commit(c.more)
				waitApplied(t, s, int64(1+c.more))
			}
			h.binlog.die(1)
			flushFinal(t, s, int64(c.last))
			h.binlog.mu.Lock()
			from, prepared := h.binlog.tailFrom, h.binlog.tailPrepared
			h.binlog.mu.Unlock()
			if from != localPos(c.from) || prepared != c.wantPrepared {
				t.Errorf("the tail was read from %s, prepared from %s; want %s, %s", from, prepared, localPos(c.from), c.wantPrepared)
			}
			if ev := event(t, s, c.last); ev.GetEventId() != localID(c.from/100+1) || ev.GetEpoch() != c.epoch {
				t.Errorf("the tail's seqno %d at %s in epoch %d, want %s in epoch %d", c.last, ev.GetEventId(), ev.GetEpoch(), localID(c.from/100+1), c.epoch)
			}
		})
	}
}

// TestMasterTailNotFinal: the THL is not called final when the database
// still answers (its stream dropped, its binlog files may grow: no tail is
// read), nor when its binlog files cannot be read: the master retries
// (GOING-ONLINE) and Flush refuses (ErrState) until it is back.
func TestMasterTailNotFinal(t *testing.T) {
	for _, c := range []struct {
		name      string
		listening bool // the database's port accepts connections
		tailErr   error
		tailRead  bool
	}{
		{"database answers", true, nil, false},
		{"binlog files unreadable", false, errors.New("open local-bin.000001: permission denied"), true},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			cfg := h.config(RoleMaster)
			if c.listening {
				l, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { l.Close() })
				cfg.DBAddr = l.Addr().String()
			}
			h.binlog.tailErr = c.tailErr
			h.binlog.commit(3)
			s, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			if err := s.Online(OnlineOptions{FromEvent: localID(0)}); err != nil {
				t.Fatal(err)
			}
			waitApplied(t, s, 2)
			h.binlog.die(2)
			waitState(t, s, StateGoingOnline) // the first run has ended
			h.binlog.mu.Lock()
			read := h.binlog.tailRead
			h.binlog.mu.Unlock()
			if read != c.tailRead {
				t.Errorf("tail read: %v, want %v", read, c.tailRead)
			}
			if max, _ := s.Store().MaxSeqno(); max != 2 {
				t.Errorf("THL ends at %d, want 2: no tail", max)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			if n, err := s.Flush(ctx); !errors.Is(err, ErrState) || errors.Is(err, errTailFinal) {
				t.Errorf("flush = %d, %v; want ErrState, not final", n, err)
			}
		})
	}
}

// TestDatabaseDown: the database is down when its port refuses
// connections; a port that accepts them, or an address that cannot be
// dialled for another reason, is not that.
func TestDatabaseDown(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := closed.Addr().String()
	closed.Close()
	for _, c := range []struct {
		addr string
		want bool
	}{
		{l.Addr().String(), false},
		{refused, true},
		{"127.0.0.1", false}, // no port: not a refusal
	} {
		s := &Service{cfg: Config{DBAddr: c.addr}}
		if got := s.databaseDown(); got != c.want {
			t.Errorf("databaseDown(%s) = %v, want %v", c.addr, got, c.want)
		}
	}
}
