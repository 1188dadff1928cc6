package stream

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/carbidedb/carbide/internal/testutil"
	"github.com/carbidedb/carbide/replicator/thl"
	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

// The history of a forced failover: seqnos 0 to 2 are common; east1's 3
// to 5 (epoch 3: its lineage began there) were stored by east2 but never
// applied, so east2, made master, dropped them from its THL and extracted
// its own 3, 4, … in a new epoch that is 3 as well. Binlog positions may
// match on two hosts; the GTID's server id (1 on east1, 2 on east2) does
// not.

func oldEvent(seqno uint64) *thlpb.Event {
	epoch := uint64(0)
	if seqno >= 3 {
		epoch = 3
	}
	return &thlpb.Event{Seqno: seqno, Epoch: epoch, LastFrag: true, SourceId: "east1",
		EventId: fmt.Sprintf("mysql-bin.000001:%016d;0-1-%d", 1000+100*seqno, seqno+1)}
}

func newEvent(seqno uint64) *thlpb.Event {
	return &thlpb.Event{Seqno: seqno, Epoch: 3, LastFrag: true, SourceId: "east2",
		EventId: fmt.Sprintf("mysql-bin.000001:%016d;0-2-%d", 1000+100*seqno, seqno+1)}
}

func appendAll(t *testing.T, s *thl.Store, evs ...*thlpb.Event) {
	t.Helper()
	for _, e := range evs {
		if err := s.Append(e); err != nil {
			t.Fatal(err)
		}
	}
}

// promoted makes a store that held old 0 to 5 drop 3 to 5 and extract new
// up to seqno upTo (none when upTo < 3).
func promoted(t *testing.T, s *thl.Store, upTo uint64) {
	t.Helper()
	if err := s.Truncate(2); err != nil {
		t.Fatal(err)
	}
	for seqno := uint64(3); seqno <= upTo; seqno++ {
		appendAll(t, s, newEvent(seqno))
	}
}

// TestReplicasOfATruncatedPrimary: a replica that stored a seqno the new
// primary dropped stops with "diverged" naming the seqno, whatever the
// new primary extracted since; one that stored only what both hold
// follows the new history.
func TestReplicasOfATruncatedPrimary(t *testing.T) {
	cases := []struct {
		name          string
		stored        uint64 // the replica holds old 0..stored
		extracted     uint64 // the new primary extracted new 3..extracted
		wantDivergeAt string // "" : it follows
	}{
		{"stored all, primary extracted more", 5, 7, "diverged at seqno 5"},
		{"stored all, primary extracted less", 5, 4, "diverged at seqno 5"},
		{"stored all, primary extracted nothing", 5, 2, "diverged at seqno 3"},
		{"stored part", 3, 7, "diverged at seqno 3"},
		{"stored only the common part", 2, 7, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			primary, replica := openStore(t), openStore(t)
			for seqno := uint64(0); seqno <= 5; seqno++ {
				appendAll(t, primary, oldEvent(seqno))
			}
			for seqno := uint64(0); seqno <= tc.stored; seqno++ {
				appendAll(t, replica, oldEvent(seqno))
			}
			promoted(t, primary, tc.extracted)
			c, _ := NewClient(ClientConfig{Service: "east", ClientHost: "east3", Sources: []string{serve(t, primary)}, Logger: testutil.Logger(t)})
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if tc.wantDivergeAt == "" {
				done := make(chan error, 1)
				go func() { done <- c.Run(ctx, fetchStore{replica}) }()
				testutil.Eventually(t, 5*time.Second, func() error {
					if m, _ := replica.MaxSeqno(); m != tc.extracted {
						return fmt.Errorf("replica max %d, want %d", m, tc.extracted)
					}
					return nil
				})
				cancel()
				if err := <-done; err != nil {
					t.Fatal(err)
				}
				if ev, _ := replica.Last(); ev.GetSourceId() != "east2" {
					t.Fatalf("the replica's last is from %s", ev.GetSourceId())
				}
				return
			}
			err := c.Run(ctx, fetchStore{replica})
			if !errors.Is(err, ErrDiverged) || !strings.Contains(err.Error(), tc.wantDivergeAt) {
				t.Fatalf("err = %v, want %q", err, tc.wantDivergeAt)
			}
			if m, _ := replica.MaxSeqno(); m != tc.stored {
				t.Fatalf("the replica's log changed: max %d, want %d", m, tc.stored)
			}
		})
	}
}

// TestReplicaStreamingWhileSourceDrops: a replica streaming from east2
// (then a replica itself) has fetched old 0 to 5 when east2 becomes master
// and drops 3 to 5: its stream ends, and its next connection is refused
// as diverged; it does not take east2's new 3 onwards after its old 5.
func TestReplicaStreamingWhileSourceDrops(t *testing.T) {
	primary, replica := openStore(t), openStore(t)
	for seqno := uint64(0); seqno <= 5; seqno++ {
		appendAll(t, primary, oldEvent(seqno))
	}
	c, _ := NewClient(ClientConfig{Service: "east", ClientHost: "east3", Sources: []string{serve(t, primary)}, MinBackoff: 10 * time.Millisecond, Logger: testutil.Logger(t)})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, fetchStore{replica}) }()
	testutil.Eventually(t, 5*time.Second, func() error {
		if m, _ := replica.MaxSeqno(); m != 5 {
			return fmt.Errorf("replica max %d", m)
		}
		return nil
	})
	promoted(t, primary, 8)
	select {
	case err := <-done:
		// At 3 when it reconnects before east2's new 3 is stored, at 5
		// after.
		if !errors.Is(err, ErrDiverged) || !regexp.MustCompile(`diverged at seqno [345]\b`).MatchString(err.Error()) {
			t.Fatalf("err = %v, want diverged at seqno 3 to 5", err)
		}
	case <-ctx.Done():
		t.Fatal("the replica still fetches from a source that dropped its seqnos 3 to 5")
	}
	if ev, _ := replica.Last(); ev.GetSeqno() != 5 || ev.GetSourceId() != "east1" {
		t.Fatalf("the replica's last is seqno %d from %s, want 5 from east1", ev.GetSeqno(), ev.GetSourceId())
	}
}
