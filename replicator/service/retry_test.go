package service

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/carbidedb/carbide/replicator/apply"
)

// TestLockConflictAppliesAgain: a block the database rolled back for a
// deadlock or a lock wait timeout (the cluster and cross-site appliers
// write the same rows on every host) runs the pipeline again from the
// tracking row instead of stopping the service; the same block failing
// that way more than maxLockRetries times in a row stops it, saying so.
// Any other SQL error stops it at once.
func TestLockConflictAppliesAgain(t *testing.T) {
	deadlock := &apply.Error{Seqno: 5, Err: &mysql.MySQLError{Number: 1213, Message: "Deadlock found when trying to get lock"}}
	s := &Service{log: slog.New(slog.DiscardHandler)}
	runs := 0
	err := s.retryUnreachable(context.Background(), func(context.Context) error {
		if runs++; runs <= 3 {
			return deadlock
		}
		return nil
	})
	if err != nil || runs != 4 {
		t.Errorf("three deadlocks then success: %v after %d runs, want nil after 4", err, runs)
	}
	runs = 0
	err = s.retryUnreachable(context.Background(), func(context.Context) error { runs++; return deadlock })
	if !errors.Is(err, apply.ErrApply) || runs != maxLockRetries+1 {
		t.Errorf("deadlocks for ever: %v after %d runs, want the apply error after %d", err, runs, maxLockRetries+1)
	}
	runs = 0
	dup := &apply.Error{Seqno: 5, Err: &mysql.MySQLError{Number: 1062, Message: "Duplicate entry"}}
	if err := s.retryUnreachable(context.Background(), func(context.Context) error { runs++; return dup }); !errors.Is(err, dup) || runs != 1 {
		t.Errorf("a duplicate key: %v after %d runs, want it at once", err, runs)
	}
}

// TestUnreachableKinds: a statement on a session the server dropped
// (database/sql then says the connection is closed: TestScenarioMaintenance
// met it when a restart caught the applier reading a table's columns) is
// the database being unreachable, retried; a refused statement is not.
func TestUnreachableKinds(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{&apply.Error{Seqno: 1142, Err: fmt.Errorf("read columns of app.west: %w", sql.ErrConnDone)}, true},
		{fmt.Errorf("x: %w", mysql.ErrInvalidConn), true},
		{&mysql.MySQLError{Number: 1927}, true},
		{&apply.Error{Seqno: 5, Err: &mysql.MySQLError{Number: 1062}}, false},
	} {
		if got := dbUnreachable(c.err); got != c.want {
			t.Errorf("dbUnreachable(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}
