package apply

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/go-sql-driver/mysql"
)

// How a block's SQL reaches the database. A multi-statement query costs
// a packet and a client read per statement: the server flushes each
// statement's result on its own (a block of 10 sysbench transactions, 42
// results, took ~65 reads and ~600 µs of this process's CPU; as one
// compound statement, 2 reads and ~80 µs). So where the server has
// anonymous compound statements (MariaDB's BEGIN NOT ATOMIC … END) and the
// SQL is row changes only, the whole script goes as one statement with one
// result: INSERT, UPDATE, DELETE, SET foreign_key_checks and BINLOG all
// run inside one, in order, and the first error stops it as it stops a
// multi-statement query. Scripts holding a statement from the source
// (USE, SET TIMESTAMP and the statement itself, which a stored program may
// refuse) go as multi-statement queries, cut after every BINLOG statement
// (execCut).

// execer runs SQL: a connection or the applier's session.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// script is part of a block's SQL to send: sql[from:to], after BEGIN
// when begin is set, followed by tail (the tracking update, tailRows rows)
// and COMMIT when commit is set. compound says it may go as one compound
// statement. check (conflict detection) makes every guarded statement
// (marks.rows) have matched exactly one row before the script commits:
// where the server answers a compound statement with the rows its
// statements matched in all, that sum is compared (no work for the
// server); elsewhere a guard statement follows each (marks.text), in the
// form guard (a multi-statement script's).
type script struct {
	begin    bool
	sql      []byte
	from, to int
	marks    marks
	tail     []byte
	tailRows int
	commit   bool
	compound bool
	check    bool
	guard    string
}

// compoundOpen and compoundClose wrap a compound script; a transaction
// begins inside one with START TRANSACTION (BEGIN opens a block there).
const (
	compoundOpen  = "BEGIN NOT ATOMIC "
	compoundBegin = "START TRANSACTION;"
	compoundClose = ";END"
)

// errRowCount: a compound script's statements matched other than the rows
// they must (a guarded statement matched none): a conflict.
var errRowCount = errors.New("apply: a row change did not find its row")

// exec sends s on conn: in one round trip as a compound statement (and
// COMMIT in another when the count is checked), or as multi-statement
// queries cut after every BINLOG statement (execCut).
func (s script) exec(ctx context.Context, conn execer) error {
	guard := ""
	if s.check {
		guard = s.guard
	}
	if !s.compound {
		prefix, suffix := "", string(s.tail)
		if s.begin {
			prefix = "BEGIN;"
		}
		if s.commit {
			suffix += "COMMIT"
		}
		return execCut(ctx, conn, prefix, s.sql, s.from, s.to, s.marks, guard, suffix)
	}
	// BINLOG statements count rows of their own: a script holding one
	// checks each statement with a guard instead.
	counted := s.check && !s.marks.hasCut(s.from, s.to)
	body := s.sql[s.from:s.to]
	if s.check && !counted {
		body = []byte(s.marks.text(s.sql, s.from, s.to, guardCompound))
	}
	tail := trimSemicolon(s.tail)
	commit := s.commit && !counted
	if len(body) == 0 && len(tail) == 0 && !s.begin && !s.commit {
		return nil
	}
	q := make([]byte, 0, len(compoundOpen)+len(compoundBegin)+len(body)+len(tail)+len(";COMMIT")+len(compoundClose))
	q = append(q, compoundOpen...)
	if s.begin {
		q = append(q, compoundBegin...)
	}
	q = append(q, body...)
	if len(tail) > 0 {
		q = append(trimSemicolon(q), ';')
		q = append(q, tail...)
	}
	if commit {
		q = append(trimSemicolon(q), ";COMMIT"...)
	}
	q = trimSemicolon(q)
	q = append(q, compoundClose...)
	res, err := conn.ExecContext(ctx, string(q))
	if err != nil || !counted {
		return err
	}
	want := s.marks.expect(s.from, s.to) + s.tailRows
	if got, err := res.RowsAffected(); err != nil || got != int64(want) {
		return fmt.Errorf("%w: its statements matched %d rows, %d expected", errRowCount, got, want)
	}
	if s.commit {
		_, err = conn.ExecContext(ctx, "COMMIT")
	}
	return err
}

func trimSemicolon(b []byte) []byte {
	for len(b) > 0 && b[len(b)-1] == ';' {
		b = b[:len(b)-1]
	}
	return b
}

// execCut runs prefix, sql[from:to] and suffix on conn as one script, in
// as many round trips as it has BINLOG statements before its end (cuts):
// MariaDB answers the statements after a BINLOG statement of the same
// multi-statement packet out of protocol order (the client then reads
// "commands out of sync"), so every BINLOG statement ends its packet.
// guard, when set, follows every guarded statement (marks.text).
func execCut(ctx context.Context, conn execer, prefix string, sql []byte, from, to int, m marks, guard, suffix string) error {
	start := from
	for _, c := range m.cuts {
		if c <= start || c > to {
			continue
		}
		if _, err := conn.ExecContext(ctx, prefix+m.text(sql, start, c, guard)); err != nil {
			return err
		}
		prefix, start = "", c
	}
	q := prefix + m.text(sql, start, to, guard) + suffix
	if q == "" {
		return nil
	}
	_, err := conn.ExecContext(ctx, q)
	return err
}

// compoundRefused reports whether err is the server refusing a compound
// statement itself (its syntax, or a statement a stored program may not
// hold), rather than a row change inside it failing.
func compoundRefused(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && (me.Number == 1064 || me.Number == 1314)
}

// send sends s on conn; a compound statement the server refuses turns
// compound scripts off for this applier (the caller's error path then
// applies the block again as multi-statement queries).
func (a *Applier) send(ctx context.Context, conn execer, s script) error {
	err := s.exec(ctx, conn)
	if err != nil && s.compound && compoundRefused(err) && a.compound.CompareAndSwap(true, false) {
		a.compoundOff.Store(true)
		a.cfg.Logger.Warn("the database refused a compound statement; sending blocks as multi-statement queries from now on", "error", err)
	}
	return err
}

// compoundFor reports whether blk's SQL may go as compound statements:
// the database has them and blk holds row changes only.
func (a *Applier) compoundFor(blk *block) bool { return a.compound.Load() && !blk.serial }
