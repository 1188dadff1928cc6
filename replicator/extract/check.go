package extract

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"

	gomysql "github.com/go-sql-driver/mysql"

	"github.com/carbidedb/carbide/internal/position"
)

// serverInfo is what the extractor learns from the server before reading.
type serverInfo struct {
	flavor  string
	version string
	major   int
	minor   int
}

// server reads the version and decides the flavor.
func (x *Extractor) server(ctx context.Context) (serverInfo, error) {
	var si serverInfo
	if err := x.db.QueryRowContext(ctx, "SELECT VERSION()").Scan(&si.version); err != nil {
		return si, x.connectError(err)
	}
	si.flavor = x.cfg.Flavor
	if si.flavor == "" {
		si.flavor = FlavorMySQL
		if strings.Contains(strings.ToLower(si.version), "mariadb") {
			si.flavor = FlavorMariaDB
		}
	}
	parts := strings.SplitN(si.version, ".", 3)
	if len(parts) >= 2 {
		si.major, _ = strconv.Atoi(parts[0])
		si.minor, _ = strconv.Atoi(parts[1])
	}
	return si, nil
}

func (x *Extractor) connectError(err error) error {
	return errorf(ErrConnect, "query the database at %s as %s: %w", x.cfg.Addr, x.cfg.User, err)
}

// Check verifies that the server writes what the extractor needs: the
// binlog on, binlog_format=ROW and binlog_row_image=FULL, and a server id
// other than the extractor's. It returns notes for what works but is not
// recommended (binlog_row_metadata other than FULL).
func (x *Extractor) Check(ctx context.Context) (notes []string, err error) {
	var logBin, format, image string
	var serverID uint32
	if err := x.db.QueryRowContext(ctx,
		"SELECT @@GLOBAL.log_bin, @@GLOBAL.binlog_format, @@GLOBAL.binlog_row_image, @@GLOBAL.server_id").
		Scan(&logBin, &format, &image, &serverID); err != nil {
		return nil, x.connectError(err)
	}
	addr := x.cfg.Addr
	switch {
	case logBin != "1" && !strings.EqualFold(logBin, "ON"):
		return nil, errorf(ErrServerSetup, "binary logging is off on %s; the replicator reads the binlog: set log-bin=mysql-bin in my.cnf and restart the database", addr)
	case !strings.EqualFold(format, "ROW"):
		return nil, errorf(ErrServerSetup, "binlog_format is %s on %s; the replicator needs row events: set binlog-format=ROW in my.cnf and restart the database", format, addr)
	case !strings.EqualFold(image, "FULL"):
		return nil, errorf(ErrServerSetup, "binlog_row_image is %s on %s; the replicator needs whole rows: set binlog-row-image=FULL in my.cnf and restart the database", image, addr)
	case serverID == x.cfg.ServerID:
		return nil, errorf(ErrServerSetup, "the database at %s has server_id %d, the id the extractor registers with; give the extractor another ServerID", addr, serverID)
	}
	var me *gomysql.MySQLError
	var valueOpts string
	err = x.db.QueryRowContext(ctx, "SELECT @@GLOBAL.binlog_row_value_options").Scan(&valueOpts)
	switch {
	case errors.As(err, &me) && me.Number == 1193: // MariaDB: no partial JSON updates
	case err != nil:
		return nil, x.connectError(err)
	case strings.Contains(strings.ToUpper(valueOpts), "PARTIAL_JSON"):
		return nil, errorf(ErrServerSetup, "binlog_row_value_options is %s on %s; the replicator needs whole JSON values: set binlog-row-value-options='' in my.cnf and restart the database", valueOpts, addr)
	}
	var meta string
	err = x.db.QueryRowContext(ctx, "SELECT @@GLOBAL.binlog_row_metadata").Scan(&meta)
	switch {
	case errors.As(err, &me) && me.Number == 1193: // unknown system variable: older than MariaDB 10.5 / MySQL 8.0.1
		notes = append(notes, fmt.Sprintf("the database at %s does not log column names (no binlog_row_metadata); the extractor reads them from information_schema, which is wrong for events written before a later ALTER TABLE", addr))
	case err != nil:
		return nil, x.connectError(err)
	case !strings.EqualFold(meta, "FULL"):
		notes = append(notes, fmt.Sprintf("binlog_row_metadata is %s on %s; the extractor reads column names from information_schema, which is wrong for events written before a later ALTER TABLE: set binlog-row-metadata=FULL in my.cnf", meta, addr))
	}
	return notes, nil
}

// CurrentPosition returns the end of the server's binlog: where a new
// master starts extracting. On MariaDB the GTID is @@gtid_binlog_pos at
// that point (the last GTID of each replication domain).
func (x *Extractor) CurrentPosition(ctx context.Context) (position.Position, error) {
	si, err := x.server(ctx)
	if err != nil {
		return position.Position{}, err
	}
	// SHOW MASTER STATUS and @@gtid_binlog_pos are two statements: read the
	// GTID on both sides and retry until no commit came in between.
	for range 10 {
		var before, after string
		if si.flavor == FlavorMariaDB {
			if err := x.db.QueryRowContext(ctx, "SELECT @@GLOBAL.gtid_binlog_pos").Scan(&before); err != nil {
				return position.Position{}, x.connectError(err)
			}
		}
		p, err := x.masterStatus(ctx)
		if err != nil {
			return p, err
		}
		if si.flavor != FlavorMariaDB {
			return p, nil
		}
		if err := x.db.QueryRowContext(ctx, "SELECT @@GLOBAL.gtid_binlog_pos").Scan(&after); err != nil {
			return position.Position{}, x.connectError(err)
		}
		if before == after {
			p.GTID = after
			return p, nil
		}
	}
	return position.Position{}, errorf(ErrConnect, "the binlog of %s moved during every one of 10 reads of its position; try again when it is less busy", x.cfg.Addr)
}

// BinlogEnd returns where the server's binlog ends now (file and offset,
// no GTID): one query, for a wait until extraction gets there.
func (x *Extractor) BinlogEnd(ctx context.Context) (position.Position, error) {
	if _, err := x.server(ctx); err != nil {
		return position.Position{}, err
	}
	return x.masterStatus(ctx)
}

// masterStatus runs SHOW MASTER STATUS (SHOW BINARY LOG STATUS on MySQL
// 8.4 and later).
func (x *Extractor) masterStatus(ctx context.Context) (position.Position, error) {
	var p position.Position
	rows, err := x.db.QueryContext(ctx, "SHOW MASTER STATUS")
	var me *gomysql.MySQLError
	if errors.As(err, &me) && me.Number == 1064 {
		rows, err = x.db.QueryContext(ctx, "SHOW BINARY LOG STATUS")
	}
	if err != nil {
		return p, x.connectError(err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return p, x.connectError(err)
	}
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return p, x.connectError(err)
		}
		return p, errorf(ErrServerSetup, "SHOW MASTER STATUS on %s returned nothing: binary logging is off; set log-bin=mysql-bin in my.cnf and restart the database", x.cfg.Addr)
	}
	vals := make([]sql.RawBytes, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil || len(vals) < 2 {
		return p, x.connectError(fmt.Errorf("SHOW MASTER STATUS: %v", err))
	}
	p.File = string(vals[0])
	p.Offset, err = strconv.ParseUint(string(vals[1]), 10, 64)
	if err != nil {
		return p, x.connectError(fmt.Errorf("SHOW MASTER STATUS position %q: %v", vals[1], err))
	}
	return p, rows.Err()
}

// loadCollations reads collation ids and names, so session variables name
// them; on failure the ids stay numbers.
func (x *Extractor) loadCollations(ctx context.Context) collations {
	c := collations{}
	rows, err := x.db.QueryContext(ctx, "SELECT ID, COLLATION_NAME, CHARACTER_SET_NAME FROM information_schema.COLLATIONS WHERE ID IS NOT NULL")
	if err != nil {
		x.log.Warn("cannot read collation names; session character sets stay numeric", "err", err)
		return c
	}
	defer rows.Close()
	for rows.Next() {
		var id uint64
		var name, cs sql.NullString
		if err := rows.Scan(&id, &name, &cs); err != nil {
			x.log.Warn("cannot read collation names; session character sets stay numeric", "err", err)
			return c
		}
		c[id] = collation{name: name.String, charset: cs.String}
	}
	return c
}
