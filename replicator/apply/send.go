package apply

import (
	"context"
	"database/sql"
	"errors"

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
// when begin is set, followed by tail (the tracking update and COMMIT, or
// nothing). compound says it may go as one compound statement. check
// (conflict detection): the rows its statements first change are verified
// before it is sent (verify.go), or by precheck, its first statement
// when compound (precheck.go), and a guard follows each statement marked
// for one (marks.guards), in the form guard (a multi-statement script's).
// askGuard, when compound, ends it before tail (deleted.go).
type script struct {
	begin    bool
	sql      []byte
	from, to int
	marks    marks
	tail     []byte
	compound bool
	check    bool
	guard    string
	precheck []byte
	askGuard []byte
}

// compoundOpen and compoundClose wrap a compound script; a transaction
// begins inside one with START TRANSACTION (BEGIN opens a block there).
const (
	compoundOpen  = "BEGIN NOT ATOMIC "
	compoundBegin = "START TRANSACTION;"
	compoundClose = ";END"
)

// exec sends s on conn: in one round trip as a compound statement, or as
// multi-statement queries cut after every BINLOG statement (execCut).
func (s script) exec(ctx context.Context, conn execer) error {
	if !s.compound {
		prefix := ""
		if s.begin {
			prefix = "BEGIN;"
		}
		guard := ""
		if s.check {
			guard = s.guard
		}
		return execCut(ctx, conn, prefix, s.sql, s.from, s.to, s.marks, guard, string(s.tail))
	}
	body := s.sql[s.from:s.to]
	if s.check && len(s.marks.guards) > 0 {
		body = []byte(s.marks.text(s.sql, s.from, s.to, guardCompound))
	}
	tail := trimSemicolon(s.tail)
	if len(body) == 0 && len(tail) == 0 && !s.begin && len(s.precheck) == 0 {
		return nil
	}
	q := make([]byte, 0, len(compoundOpen)+len(compoundBegin)+len(s.precheck)+len(body)+len(s.askGuard)+len(tail)+len(compoundClose)+1)
	q = append(q, compoundOpen...)
	if s.begin {
		q = append(q, compoundBegin...)
	}
	q = append(q, s.precheck...)
	q = append(q, body...)
	if len(s.askGuard) > 0 {
		if len(q) > 0 && q[len(q)-1] != ';' {
			q = append(q, ';')
		}
		q = append(q, s.askGuard...)
	}
	if len(tail) > 0 {
		q = append(q, tail...)
	} else {
		q = trimSemicolon(q)
	}
	q = append(q, compoundClose...)
	_, err := conn.ExecContext(ctx, string(q))
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

// send sends s on conn, verifying the rows it first changes when it checks
// them: in its own statement when compound (precheck) and the query stays
// within max_allowed_packet, else by locking reads before it (verify). A
// compound statement the server refuses turns compound scripts off for
// this applier (the caller's error path then applies the block again as
// multi-statement queries).
func (a *Applier) send(ctx context.Context, conn *sql.Conn, s script) error {
	if s.check {
		if cs := s.marks.checksIn(s.from, s.to); len(cs) > 0 {
			rest := cs
			if s.compound && !a.noPrecheck {
				pre, left, err := a.precheck(cs)
				if err != nil {
					return err
				}
				if len(pre)+s.to-s.from+len(s.askGuard)+len(s.tail)+queryOverhead <= a.maxQuery {
					s.precheck, rest = pre, left
					a.prechecks.Add(1)
				}
			}
			if len(rest) > 0 {
				if err := a.verify(ctx, conn, rest, s.begin); err != nil {
					return err
				}
				s.begin = false
			}
		}
	}
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
