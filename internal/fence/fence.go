package fence

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
)

// Once kills the sessions of every account but keep (the replication
// user) and the server's own threads, so that their open transactions
// roll back, then sets read_only and checks it holds. The kill comes
// first: SET GLOBAL read_only waits for running statements, and a long
// write would commit after another primary took writes. It returns how
// many sessions it killed.
func Once(ctx context.Context, db *sql.DB, keep string) (int, error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	rows, err := conn.QueryContext(ctx, `SELECT ID FROM information_schema.PROCESSLIST
		WHERE USER NOT IN (?, 'system user', 'event_scheduler', 'unauthenticated user') AND ID <> CONNECTION_ID()
		AND COMMAND NOT IN ('Daemon', 'Binlog Dump', 'Slave_IO', 'Slave_SQL', 'Slave_worker')`, keep)
	if err != nil {
		return 0, err
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if rows.Scan(&id) == nil {
			ids = append(ids, id)
		}
	}
	rows.Close()
	killed := 0
	for _, id := range ids {
		// A session that ended meanwhile is "Unknown thread id".
		if _, err := conn.ExecContext(ctx, "KILL CONNECTION "+strconv.FormatInt(id, 10)); err == nil {
			killed++
		}
	}
	if _, err := conn.ExecContext(ctx, "SET GLOBAL read_only = ON"); err != nil {
		return killed, err
	}
	var ro bool
	if err := conn.QueryRowContext(ctx, "SELECT @@global.read_only").Scan(&ro); err != nil {
		return killed, err
	}
	if !ro {
		return killed, errors.New("read_only is still OFF after SET GLOBAL read_only = ON")
	}
	return killed, nil
}
