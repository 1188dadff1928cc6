package service

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/carbidedb/carbide/replicator/apply"
	"github.com/carbidedb/carbide/rpc/gen/replicatorpb"
	"github.com/carbidedb/carbide/rpc/gen/thlpb"
	"github.com/carbidedb/carbide/rpc/replstate"
)

// Version is reported by status.
var Version = "Carbide Replicator 0.1.0"

func (s *Service) uri(addr string) string {
	if addr == "" {
		return ""
	}
	scheme := "thl"
	if s.cfg.SSL {
		scheme = "thls"
	}
	return scheme + "://" + addr + "/"
}

// Status returns the service's status with the guide's field names.
func (s *Service) Status() *replicatorpb.ServiceStatus {
	s.mu.Lock()
	state, since, role := s.state, s.stateSince, s.role
	pending := s.pending
	sources := append([]string(nil), s.sources...)
	client, extractor := s.client, s.extractor
	s.mu.Unlock()
	applied, hasApplied := s.committed()
	s.mu.Lock()
	conflicts := s.conflicts
	s.mu.Unlock()

	store := s.Store()
	now := time.Now()
	st := &replicatorpb.ServiceStatus{Service: s.cfg.Name, Role: role, State: state, StateKind: replstate.Of(state), AppliedLastSeqno: -1, MinStoredSeqno: -1, MaxStoredSeqno: -1, PendingErrorSeqno: -1,
		Conflicts: conflicts}
	var last *thlpb.Event
	var hasLast bool
	if store != nil {
		if min, ok := store.MinSeqno(); ok {
			st.MinStoredSeqno = int64(min)
		}
		last, hasLast = store.Last()
	}
	if hasLast {
		st.MaxStoredSeqno = int64(last.GetSeqno())
		st.Epoch = last.GetEpoch()
	}
	var droppedText string
	st.Dropped, droppedText = s.droppedTail()
	currentEventID := "NONE"
	// appliedLastSeqno is the last transaction in this database: on a
	// slave its tracking row; on a master also what it extracted from its
	// own binlog, which is in its database (a transaction another master
	// extracted is in this database only if applied here: the tail a
	// forced failover gave up is stored but not applied). A master's last
	// stored transaction, when it extracted it, follows all it applied as
	// a slave (the greater of the two); otherwise the tracking row is the
	// last in its database.
	switch {
	case hasLast && role == RoleMaster && last.GetSourceId() == s.cfg.Host:
		st.AppliedLastSeqno = int64(last.GetSeqno())
		st.AppliedLastEventId = last.GetEventId()
		if t := last.GetSourceCommitTimeUs(); t > 0 && last.GetExtractTimeUs() > 0 {
			st.AppliedLatency = max(0, float64(last.GetExtractTimeUs()-t)/1e6)
		}
	case hasApplied:
		st.AppliedLastSeqno = int64(applied.Seqno)
		st.AppliedLastEventId = applied.EventID
		st.AppliedLatency = applied.AppliedLatency.Seconds()
	}
	if role == RoleMaster && extractor != nil {
		currentEventID = extractor.Stats().Position.String()
	}
	connectURI := ""
	if role == RoleSlave {
		if client != nil && client.Status().Source != "" {
			connectURI = s.uri(client.Status().Source)
		} else if len(sources) > 0 {
			connectURI = s.uri(sources[0])
		}
	}
	st.MasterConnectUri = connectURI
	if pending != nil {
		st.PendingError = pending.message
		st.PendingErrorSeqno = pending.seqno
		st.PendingErrorKind = pending.kind
		st.PendingExceptionMessage = pending.message
		if pending.sql != "" {
			st.PendingExceptionMessage = pending.message + "; statement: " + pending.sql
		}
	}
	relative := 0.0
	if hasLast && last.GetSourceCommitTimeUs() > 0 {
		relative = max(0, float64(now.UnixMicro()-last.GetSourceCommitTimeUs())/1e6)
	}
	pendingErr, pendingSeqno, pendingEvent := "NONE", "-1", "NONE"
	if pending != nil {
		pendingErr, pendingSeqno = pending.message, strconv.FormatInt(pending.seqno, 10)
		if pending.eventID != "" {
			pendingEvent = pending.eventID
		}
	}
	pipelineSource := connectURI
	if role == RoleMaster {
		pipelineSource = "jdbc:mysql:thin://" + s.cfg.DBAddr + "/"
	}
	f := map[string]string{
		"appliedLastEventId":      orNone(st.AppliedLastEventId),
		"appliedLastSeqno":        strconv.FormatInt(st.AppliedLastSeqno, 10),
		"appliedLatency":          fmt.Sprintf("%.3f", st.AppliedLatency),
		"autoRecoveryEnabled":     "false",
		"autoRecoveryTotal":       "0",
		"channels":                strconv.Itoa(max(1, s.cfg.Channels)),
		"clusterName":             s.cfg.Name,
		"conflicts":               strconv.FormatUint(conflicts, 10),
		"currentEventId":          currentEventID,
		"currentTimeMillis":       strconv.FormatInt(now.UnixMilli(), 10),
		"dataServerHost":          s.cfg.DBAddr,
		"droppedSeqnos":           droppedText,
		"extensions":              "",
		"host":                    s.cfg.Host,
		"latestEpochNumber":       strconv.FormatUint(st.Epoch, 10),
		"masterConnectUri":        orNone(connectURI),
		"masterListenUri":         s.uri(s.cfg.ListenAddr),
		"maximumStoredSeqNo":      strconv.FormatInt(st.MaxStoredSeqno, 10),
		"minimumStoredSeqNo":      strconv.FormatInt(st.MinStoredSeqno, 10),
		"offlineRequests":         "NONE",
		"pendingError":            pendingErr,
		"pendingErrorCode":        "NONE",
		"pendingErrorEventId":     pendingEvent,
		"pendingErrorSeqno":       pendingSeqno,
		"pendingExceptionMessage": orNone(st.PendingExceptionMessage),
		"pipelineSource":          orNone(pipelineSource),
		"relativeLatency":         fmt.Sprintf("%.3f", relative),
		"resourcePrecedence":      "99",
		"rmiPort":                 strconv.Itoa(s.cfg.RMIPort),
		"role":                    role,
		"seqnoType":               "java.lang.Long",
		"serviceName":             s.cfg.Name,
		"serviceType":             "local",
		"simpleServiceName":       s.cfg.Name,
		"siteName":                "default",
		"sourceId":                s.cfg.Host,
		"state":                   state,
		"timeInStateSeconds":      fmt.Sprintf("%.3f", now.Sub(since).Seconds()),
		"timezone":                "GMT",
		"transitioningTo":         "",
		"uptimeSeconds":           fmt.Sprintf("%.3f", now.Sub(s.start).Seconds()),
		"useSSLConnection":        strconv.FormatBool(s.cfg.SSL),
		"version":                 Version,
	}
	if w, since := s.applierWaiting(); w != "" {
		st.WaitingFor, st.WaitingSeconds = w, now.Sub(since).Seconds()
		f["waitingFor"] = fmt.Sprintf("%s (for %.0f s)", w, st.WaitingSeconds)
	}
	if role == RoleSlave && client != nil {
		// Why a slave going online is not connected yet (a source down, a
		// TLS mismatch while a rolling change is half done).
		if cs := client.Status(); !cs.Connected && cs.LastError != "" {
			f["masterConnectError"] = cs.LastError
		}
	}
	names := make([]string, 0, len(f))
	for n := range f {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		st.Fields = append(st.Fields, &replicatorpb.Field{Name: n, Value: f[n]})
	}
	return st
}

func orNone(s string) string {
	if s == "" {
		return "NONE"
	}
	return s
}

// readRetry is how long Status waits before reading the tracking row
// again after a read failed (the database down).
const readRetry = 5 * time.Second

// committed returns the tracking row: while a run goes, as its applier
// (a master's tracker) committed it; otherwise as last read from the
// database, read again when a run ended since (its last commit may have
// failed after the database had it) or at the first ask after start. When
// the database cannot be read, it is what the last run committed.
func (s *Service) committed() (apply.Position, bool) {
	s.mu.Lock()
	a, done := s.applier, s.done
	read := a == nil && !s.runningLocked() && s.applyStale && !s.applyRead && time.Since(s.applyReadAt) >= readRetry
	if !read {
		defer s.mu.Unlock()
		if a != nil {
			s.lastApply, s.hasApply = a.Position()
			s.conflicts = a.Conflicts()
		}
		return s.lastApply, s.hasApply
	}
	s.applyRead = true
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	pos, ok, conflicts, err := s.readTracking(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.applyRead = false
	switch {
	case err != nil:
		s.applyReadAt = time.Now()
		s.log.Debug("read the tracking row for status", "error", err)
	case s.done == done && !s.runningLocked():
		s.lastApply, s.hasApply, s.applyStale = pos, ok, false
		s.conflicts = conflicts
	}
	return s.lastApply, s.hasApply
}

// readTracking reads the tracking row, and the count of conflict
// records, from the database.
func (s *Service) readTracking(ctx context.Context) (apply.Position, bool, uint64, error) {
	a, err := s.openApplier(ctx)
	if err != nil {
		return apply.Position{}, false, 0, err
	}
	defer a.Close()
	pos, ok := a.Position()
	return pos, ok, a.Conflicts(), nil
}

// Conflicts returns the latest limit conflicts recorded in the service's
// tracking schema, newest first.
func (s *Service) Conflicts(ctx context.Context, limit int) ([]apply.Conflict, error) {
	db, err := s.openDB()
	if err != nil {
		return nil, err
	}
	defer db.Close()
	return apply.ReadConflicts(ctx, db, s.cfg.Name, limit)
}

// runningLocked reports whether a pipeline run goes (s.mu held).
func (s *Service) runningLocked() bool {
	if s.done == nil {
		return false
	}
	select {
	case <-s.done:
		return false
	default:
		return true
	}
}

// applierWaiting is what the running applier holds a transaction for,
// and since when.
func (s *Service) applierWaiting() (string, time.Time) {
	s.mu.Lock()
	a := s.applier
	s.mu.Unlock()
	if a == nil {
		return "", time.Time{}
	}
	return a.Waiting()
}
