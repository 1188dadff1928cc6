package testutil

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/carbidedb/carbide/internal/mysqld"
)

// queryTimeout bounds each helper query so a hung server fails the test
// instead of stalling it.
const queryTimeout = 30 * time.Second

// DB opens a root pool to srv over TCP, closed when the test ends.
func DB(t testing.TB, srv *mysqld.Server) *sql.DB {
	t.Helper()
	db, err := srv.DB()
	if err != nil {
		t.Fatalf("open root connection to %s: %v", srv.Addr(), err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// Exec runs a statement and fails the test on error.
func Exec(t testing.TB, db *sql.DB, query string, args ...any) sql.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), queryTimeout)
	defer cancel()
	res, err := db.ExecContext(ctx, query, args...)
	if err != nil {
		t.Fatalf("exec %q: %v", query, err)
	}
	return res
}

// QueryRow runs a query that returns one row, scans it into dest and fails
// the test on error (no row included).
func QueryRow(t testing.TB, db *sql.DB, query string, args []any, dest ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), queryTimeout)
	defer cancel()
	if err := db.QueryRowContext(ctx, query, args...).Scan(dest...); err != nil {
		t.Fatalf("query %q: %v", query, err)
	}
}

// QueryString runs a query that returns one value and returns it as a
// string ("NULL" for NULL).
func QueryString(t testing.TB, db *sql.DB, query string, args ...any) string {
	t.Helper()
	var v sql.NullString
	QueryRow(t, db, query, args, &v)
	if !v.Valid {
		return "NULL"
	}
	return v.String
}
