package apply

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
)

// A statement the applier sent runs on in the database after the applier
// stopped waiting for it: cancelling a query closes the client's
// connection, but the server finishes what it was executing (a block
// waiting on a lock another session holds: BEGIN, rows, tracking row and
// COMMIT, sent as one script) once it can. It would commit after the
// service stopped, behind the back of whatever comes next (a failover's
// candidate made master reads its tracking row to know what its database
// holds). So when a run ends, its sessions still executing a statement
// are killed, and the run returns once the database has ended them.

// orphanWait bounds how long endOrphans waits for the killed sessions to
// end (a rollback of a large block takes time).
const orphanWait = 30 * time.Second

// endOrphans kills the given sessions of this applier that the database
// still executes a statement for, and waits until they are gone.
func (a *Applier) endOrphans(sessions []int64) {
	var ids []string
	for _, id := range sessions {
		if id > 0 {
			ids = append(ids, fmt.Sprint(id))
		}
	}
	if len(ids) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), orphanWait)
	defer cancel()
	// A connection of its own: one from the applier's pool may be one of
	// the sessions (a channel's, returned to the pool).
	db := sql.OpenDB(a.connector)
	defer db.Close()
	db.SetMaxOpenConns(1)
	running := func() ([]int64, error) {
		rows, err := db.QueryContext(ctx, "SELECT ID FROM information_schema.PROCESSLIST WHERE ID IN ("+strings.Join(ids, ",")+") AND ID <> CONNECTION_ID() AND COMMAND NOT IN ('Sleep', 'Daemon')")
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		var out []int64
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				return nil, err
			}
			out = append(out, id)
		}
		return out, rows.Err()
	}
	killed := false
	for {
		left, err := running()
		if err != nil {
			a.cfg.Logger.Warn("apply: could not check that the stopped applier's statements ended", "error", err)
			return
		}
		if len(left) == 0 {
			if killed {
				a.cfg.Logger.Info("apply: the stopped applier's statements still running in the database were killed")
			}
			return
		}
		if !killed {
			for _, id := range left {
				// 1094: it ended meanwhile.
				if _, err := db.ExecContext(ctx, fmt.Sprintf("KILL CONNECTION %d", id)); err != nil && !isErrNo(err, 1094) {
					a.cfg.Logger.Warn("apply: kill a stopped applier session", "id", id, "error", err)
				}
			}
			killed = true
		}
		select {
		case <-ctx.Done():
			a.cfg.Logger.Error("apply: the stopped applier's statements still run in the database after being killed", "sessions", left)
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// isErrNo tells whether err is the database's error number n.
func isErrNo(err error, n uint16) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && me.Number == n
}

// sessionID reads conn's id in the database (PROCESSLIST's ID, KILL's
// argument). It is read before the session is set up: CONNECTION_ID()
// says the session's pseudo_thread_id once that is set.
func sessionID(ctx context.Context, conn *sql.Conn) (int64, error) {
	var id int64
	if err := conn.QueryRowContext(ctx, "SELECT CONNECTION_ID()").Scan(&id); err != nil {
		return 0, fmt.Errorf("read the applier session's connection id: %w", err)
	}
	return id, nil
}
