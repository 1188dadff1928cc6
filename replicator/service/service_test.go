package service

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/carbidedb/carbide/replicator/apply"
	"github.com/carbidedb/carbide/replicator/stream"
	"github.com/carbidedb/carbide/replicator/thl"
	"github.com/carbidedb/carbide/rpc/gen/replicatorpb"
)

func TestSlaveOnlineOffline(t *testing.T) {
	h := newHarness(t)
	h.src.add(4)
	s := h.start(RoleSlave)
	if got := s.State(); got != StateOffline {
		t.Fatalf("a new service is %s, want %s", got, StateOffline)
	}
	if err := s.Online(OnlineOptions{}); err != nil {
		t.Fatal(err)
	}
	waitState(t, s, StateOnline)
	waitApplied(t, s, 4)
	if err := s.Online(OnlineOptions{}); err != nil {
		t.Fatalf("online while ONLINE: %v, want nil (nothing to do)", err)
	}
	if err := s.Online(OnlineOptions{SkipSeqnos: []uint64{5}}); !errors.Is(err, ErrState) {
		t.Fatalf("online -skip-seqno while ONLINE: %v, want ErrState", err)
	}
	if got := field(s, "masterConnectUri"); got != "thl://east1:2112/" {
		t.Fatalf("masterConnectUri = %s", got)
	}
	h.src.add(6)
	waitApplied(t, s, 6)
	offline(t, s)
	if got := s.State(); got != StateOffline {
		t.Fatalf("after offline: %s", got)
	}
	if got := s.Counters().AppliedEvents; got != 7 {
		t.Fatalf("applied events counted: %d, want 7", got)
	}
	if want := []uint64{0, 1, 2, 3, 4, 5, 6}; !slices.Equal(h.db.applied, want) {
		t.Fatalf("applied %v, want %v", h.db.applied, want)
	}
	// Online again continues after the tracking row.
	h.src.add(8)
	if err := s.Online(OnlineOptions{}); err != nil {
		t.Fatal(err)
	}
	waitApplied(t, s, 8)
	offline(t, s)
	if want := []uint64{0, 1, 2, 3, 4, 5, 6, 7, 8}; !slices.Equal(h.db.applied, want) {
		t.Fatalf("applied %v, want %v", h.db.applied, want)
	}
}

// TestApplyErrorThenSkip: a transaction that fails stops the pipeline
// OFFLINE:ERROR naming it; online -skip-seqno goes past it.
func TestApplyErrorThenSkip(t *testing.T) {
	h := newHarness(t)
	h.db.failAt[3] = &mysql.MySQLError{Number: 1062, Message: "Duplicate entry '1' for key 'PRIMARY'"}
	h.src.add(5)
	s := h.start(RoleSlave)
	if err := s.Online(OnlineOptions{}); err != nil {
		t.Fatal(err)
	}
	waitState(t, s, StateError)
	st := s.Status()
	if st.GetPendingErrorSeqno() != 3 || !strings.Contains(st.GetPendingError(), "Event application failed: seqno=3") ||
		!strings.Contains(st.GetPendingError(), "Duplicate entry") {
		t.Fatalf("pending error seqno %d: %q", st.GetPendingErrorSeqno(), st.GetPendingError())
	}
	if k := st.GetPendingErrorKind(); k != replicatorpb.PendingErrorKind_PENDING_ERROR_KIND_APPLY {
		t.Fatalf("pending error kind %v, want APPLY", k)
	}
	if got := st.GetPendingExceptionMessage(); !strings.Contains(got, "statement: INSERT INTO t VALUES (1)") {
		t.Fatalf("pendingExceptionMessage = %q, want the statement", got)
	}
	if got := field(s, "pendingErrorEventId"); got != eventID(3) {
		t.Fatalf("pendingErrorEventId = %s, want %s", got, eventID(3))
	}
	if st.GetAppliedLastSeqno() != 2 {
		t.Fatalf("appliedLastSeqno = %d, want 2", st.GetAppliedLastSeqno())
	}
	if got := s.Counters().Errors; got != 1 {
		t.Fatalf("errors counted: %d", got)
	}
	if err := s.SetRole(RoleMaster, ""); !errors.Is(err, ErrState) {
		t.Fatalf("setrole while OFFLINE:ERROR: %v, want ErrState", err)
	}
	h.db.failAt[3] = errors.New("still failing") // skipped: not applied
	if err := s.Online(OnlineOptions{SkipSeqnos: []uint64{3}}); err != nil {
		t.Fatal(err)
	}
	waitApplied(t, s, 5)
	if st := s.Status(); st.GetState() != StateOnline || st.GetPendingErrorSeqno() != -1 || st.GetPendingError() != "" {
		t.Fatalf("after the skip: %s, pending %d %q", st.GetState(), st.GetPendingErrorSeqno(), st.GetPendingError())
	}
	if want := []uint64{0, 1, 2, 4, 5}; !slices.Equal(h.db.applied, want) {
		t.Fatalf("applied %v, want %v (3 skipped)", h.db.applied, want)
	}
}

// TestStageFailureNamesSeqno: the THL client stopping on an event it
// cannot take stops the pipeline, naming the event's seqno.
func TestStageFailureNamesSeqno(t *testing.T) {
	h := newHarness(t)
	h.src.add(6)
	h.src.err = &stream.LimitError{Seqno: 7, Source: "east1:2112", Limit: 4 << 20, Detail: "message too large"}
	s := h.start(RoleSlave)
	if err := s.Online(OnlineOptions{}); err != nil {
		t.Fatal(err)
	}
	waitState(t, s, StateError)
	if st := s.Status(); st.GetPendingErrorSeqno() != 7 || !strings.Contains(st.GetPendingError(), "seqno 7") {
		t.Fatalf("pending error seqno %d: %q", st.GetPendingErrorSeqno(), st.GetPendingError())
	}
	// Offline from OFFLINE:ERROR is OFFLINE:NORMAL; online clears the error.
	offline(t, s)
	if got := s.State(); got != StateOffline {
		t.Fatalf("offline from OFFLINE:ERROR: %s", got)
	}
	h.src.mu.Lock()
	h.src.err = nil
	h.src.mu.Unlock()
	if err := s.Online(OnlineOptions{}); err != nil {
		t.Fatal(err)
	}
	waitState(t, s, StateOnline)
	if st := s.Status(); st.GetPendingErrorSeqno() != -1 {
		t.Fatalf("pending error after online: %d %q", st.GetPendingErrorSeqno(), st.GetPendingError())
	}
}

// TestUnreachableDatabaseRetried: a lost database connection is retried
// (GOING-ONLINE), not an error.
func TestUnreachableDatabaseRetried(t *testing.T) {
	h := newHarness(t)
	h.db.failAt[2] = fmt.Errorf("commit: %w", driver.ErrBadConn)
	h.src.add(4)
	s := h.start(RoleSlave)
	if err := s.Online(OnlineOptions{}); err != nil {
		t.Fatal(err)
	}
	waitApplied(t, s, 4)
	if got := s.State(); got != StateOnline {
		t.Fatalf("state %s", got)
	}
	if got := s.Counters().Errors; got != 0 {
		t.Fatalf("errors counted: %d", got)
	}
}

func TestOnlineRefusals(t *testing.T) {
	h := newHarness(t)
	s := h.start(RoleSlave)
	if err := s.Online(OnlineOptions{FromEvent: "mysql-bin.000001:0000000000000100"}); !errors.Is(err, ErrRole) {
		t.Fatalf("-from-event on a slave: %v, want ErrRole", err)
	}
	if err := s.SetRole(RoleMaster, ""); err != nil {
		t.Fatal(err)
	}
	if err := s.Online(OnlineOptions{FromEvent: "nonsense"}); !errors.Is(err, ErrInput) {
		t.Fatalf("a bad -from-event: %v, want ErrInput", err)
	}
	if got := s.State(); got != StateOffline {
		t.Fatalf("after refusals: %s", got)
	}
}

// TestRoleSurvivesRestart: setrole's role and source are kept in the
// role file and override the configured ones at the next start.
func TestRoleSurvivesRestart(t *testing.T) {
	h := newHarness(t)
	s := h.start(RoleSlave)
	if err := s.Online(OnlineOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetRole(RoleMaster, ""); !errors.Is(err, ErrState) {
		t.Fatalf("setrole while online: %v, want ErrState", err)
	}
	offline(t, s)
	if err := s.SetRole("primary", ""); !errors.Is(err, ErrInput) {
		t.Fatalf("setrole primary: %v, want ErrInput", err)
	}
	if err := s.SetRole(RoleSlave, "http://east3:2112/"); !errors.Is(err, ErrInput) {
		t.Fatalf("setrole with an http URI: %v, want ErrInput", err)
	}
	if err := s.SetRole(RoleMaster, ""); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = h.start(RoleSlave)
	if got := s.Role(); got != RoleMaster {
		t.Fatalf("role after restart: %s, want master (from the role file)", got)
	}
	if err := s.SetRole(RoleSlave, "thl://east3:2112/"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = h.start(RoleMaster)
	if got, uri := s.Role(), field(s, "masterConnectUri"); got != RoleSlave || uri != "thl://east3:2112/" {
		t.Fatalf("after restart: role %s, source %s; want slave of thl://east3:2112/", got, uri)
	}
	s.Close()
	if err := os.WriteFile(h.config(RoleSlave).RoleFile, []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := New(h.config(RoleSlave)); err == nil || !strings.Contains(err.Error(), "is damaged") {
		t.Fatalf("a damaged role file: %v", err)
	}
}

func TestParseURI(t *testing.T) {
	for _, c := range []struct {
		uri, addr string
		ok        bool
	}{
		{"thl://east1:2112/", "east1:2112", true},
		{"thls://east1:2112", "east1:2112", true},
		{"thl://[::1]:2112/", "[::1]:2112", true},
		{"thl://east1/", "", false},
		{"east1:2112", "", false},
		{"http://east1:2112/", "", false},
	} {
		addr, err := ParseURI(c.uri)
		if (err == nil) != c.ok || addr != c.addr {
			t.Errorf("ParseURI(%q) = %q, %v", c.uri, addr, err)
		}
		if err != nil && !errors.Is(err, ErrInput) {
			t.Errorf("ParseURI(%q): %v is not ErrInput", c.uri, err)
		}
	}
}

// TestDBUnreachable: which errors mean the database did not answer (the
// run is retried) rather than refused something (OFFLINE:ERROR).
func TestDBUnreachable(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{&mysql.MySQLError{Number: 1053, Message: "Server shutdown in progress"}, true},
		{&mysql.MySQLError{Number: 1927, Message: "Connection was killed"}, true},
		{&mysql.MySQLError{Number: 1040, Message: "Too many connections"}, true},
		{&mysql.MySQLError{Number: 1062, Message: "Duplicate entry"}, false},
		{&apply.Error{Seqno: 3, Err: &mysql.MySQLError{Number: 1062}}, false},
		{&apply.Error{Seqno: 3, Err: driver.ErrBadConn}, true},
		{fmt.Errorf("read: %w", io.ErrUnexpectedEOF), true},
		{mysql.ErrInvalidConn, true},
		{&net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, true},
		{fmt.Errorf("x: %w", syscall.ECONNRESET), true},
		{context.Canceled, false},
		{errors.New("the extractor does not support XA"), false},
	} {
		if got := dbUnreachable(c.err); got != c.want {
			t.Errorf("dbUnreachable(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

// TestMasterExtracts: a master stores what its extractor reads, continues
// after its last stored event when it comes back online, and reports it.
func TestMasterExtracts(t *testing.T) {
	h := newHarness(t)
	h.binlog.commit(3)
	s := h.start(RoleMaster)
	if err := s.Online(OnlineOptions{FromEvent: "local-bin.000001:0000000000000000"}); err != nil {
		t.Fatal(err)
	}
	waitState(t, s, StateOnline)
	waitApplied(t, s, 2)
	ctx := context.Background()
	if n, err := s.Flush(ctx); err != nil || n != 2 {
		t.Fatalf("flush = %d, %v; want 2", n, err)
	}
	if got := field(s, "pipelineSource"); got != "jdbc:mysql:thin://127.0.0.1:1/" {
		t.Fatalf("pipelineSource = %s", got)
	}
	offline(t, s)
	if seqno, ok := h.db.tracking(); !ok || seqno != 2 {
		t.Fatalf("tracking row at %d (%v), want 2: a master records what it extracted", seqno, ok)
	}
	h.binlog.commit(2)
	if err := s.Online(OnlineOptions{}); err != nil {
		t.Fatal(err)
	}
	waitApplied(t, s, 4)
	offline(t, s)
	for seqno := uint64(0); seqno <= 4; seqno++ {
		frags, err := s.Store().Get(seqno)
		if err != nil || len(frags) != 1 || frags[0].GetSourceId() != "east2" || frags[0].GetEpoch() != 0 ||
			frags[0].GetEventId() != fmt.Sprintf("local-bin.000001:%016d", 100*(seqno+1)) {
			t.Fatalf("seqno %d: %v %v", seqno, frags, err)
		}
	}
	if _, err := s.Flush(ctx); !errors.Is(err, ErrState) {
		t.Fatalf("flush while offline: %v, want ErrState", err)
	}
}

// TestPendingKind: the kind of what stopped a run reaches the status
// whatever the words around it, so that callers never read the words.
func TestPendingKind(t *testing.T) {
	for _, c := range []struct {
		err  error
		want replicatorpb.PendingErrorKind
	}{
		{fmt.Errorf("connect east1: %w", fmt.Errorf("%w at seqno 4: the client has epoch 1", stream.ErrDiverged)), replicatorpb.PendingErrorKind_PENDING_ERROR_KIND_DIVERGED},
		{&stream.LimitError{Seqno: 3}, replicatorpb.PendingErrorKind_PENDING_ERROR_KIND_TOO_LARGE},
		{fmt.Errorf("open: %w", thl.ErrCorrupt), replicatorpb.PendingErrorKind_PENDING_ERROR_KIND_THL},
		{fmt.Errorf("run: %w", &apply.Error{Seqno: 2, Err: errors.New("Duplicate entry")}), replicatorpb.PendingErrorKind_PENDING_ERROR_KIND_APPLY},
		{errors.New("the history diverged (words only)"), replicatorpb.PendingErrorKind_PENDING_ERROR_KIND_UNSPECIFIED},
	} {
		if got := pendingKind(c.err); got != c.want {
			t.Errorf("pendingKind(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}
