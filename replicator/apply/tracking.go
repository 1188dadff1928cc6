package apply

import (
	"context"
	"database/sql"

	"fmt"
	"strconv"
	"time"

	"github.com/carbidedb/carbide/internal/consistency"
	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

// TrackingSchema is the schema holding a service's applied position.
func TrackingSchema(service string) string { return "tungsten_" + service }

// Position is the last transaction applied (the tracking row).
type Position struct {
	Seqno           uint64
	Fragno          uint32
	LastFrag        bool
	Epoch           uint64
	EventID         string
	SourceID        string
	Shard           string
	AppliedLatency  time.Duration
	UpdateTimestamp time.Time
	ExtractTime     time.Time
}

// trackingDDL creates the tracking schema and its tables; it runs with
// sql_log_bin=0: every host makes its own.
func trackingDDL(service string) []string {
	s := string(quoteIdent(nil, TrackingSchema(service)))
	return []string{
		"CREATE DATABASE IF NOT EXISTS " + s,
		"CREATE TABLE IF NOT EXISTS " + s + `.trep_commit_seqno (
  task_id INT UNSIGNED NOT NULL PRIMARY KEY,
  seqno BIGINT NOT NULL DEFAULT -1,
  fragno SMALLINT UNSIGNED NOT NULL DEFAULT 0,
  last_frag CHAR(1) NOT NULL DEFAULT '1',
  source_id VARCHAR(128) NOT NULL DEFAULT '',
  epoch_number BIGINT NOT NULL DEFAULT -1,
  eventid VARCHAR(255) NOT NULL DEFAULT '',
  applied_latency INT NOT NULL DEFAULT 0,
  update_timestamp TIMESTAMP(6) NULL,
  shard_id VARCHAR(128) NOT NULL DEFAULT '',
  extract_timestamp TIMESTAMP(6) NULL
) ENGINE=InnoDB`,
		"CREATE TABLE IF NOT EXISTS " + s + `.heartbeat (
  id BIGINT NOT NULL PRIMARY KEY,
  seqno BIGINT NOT NULL DEFAULT 0,
  eventid VARCHAR(255) NOT NULL DEFAULT '',
  source_tstamp TIMESTAMP(6) NULL,
  target_tstamp TIMESTAMP(6) NULL,
  lag_millis BIGINT NOT NULL DEFAULT 0,
  salt BIGINT NOT NULL DEFAULT 0,
  name VARCHAR(128) NOT NULL DEFAULT ''
) ENGINE=InnoDB`,
		"INSERT IGNORE INTO " + s + ".trep_commit_seqno (task_id) VALUES (0)",
		// The last seqno that changed rows of each table, and that deleted
		// some (deleted.go).
		"CREATE TABLE IF NOT EXISTS " + s + `.changes (
  schema_name VARCHAR(64) NOT NULL,
  table_name VARCHAR(64) NOT NULL,
  seqno BIGINT NOT NULL,
  deleted BIGINT NULL,
  PRIMARY KEY (schema_name, table_name)
) ENGINE=InnoDB`,
		// Changes applied from here on are marked: those of an earlier
		// run, or made by clients while this host was the master, may
		// not be.
		"INSERT INTO " + s + ".changes (schema_name, table_name, seqno, deleted) SELECT '', '', seqno, seqno FROM " + s +
			".trep_commit_seqno WHERE task_id = 0 ON DUPLICATE KEY UPDATE seqno = VALUES(seqno), deleted = VALUES(deleted)",
		// An earlier version marked deletes only, in a table of that name.
		"DROP TABLE IF EXISTS " + s + ".deletes",
		conflictsDDL(s),
		consistency.MarkerDDL(s),
	}
}

// readPosition reads task 0's tracking row; ok is false when nothing was
// applied yet.
func readPosition(ctx context.Context, q queryer, service string) (Position, bool, error) {
	s := string(quoteIdent(nil, TrackingSchema(service)))
	rows, err := q.QueryContext(ctx, "SELECT seqno, fragno, last_frag, epoch_number, eventid, source_id, shard_id, applied_latency, IFNULL(UNIX_TIMESTAMP(update_timestamp), 0), IFNULL(UNIX_TIMESTAMP(extract_timestamp), 0) FROM "+s+".trep_commit_seqno WHERE task_id = 0")
	if err != nil {
		return Position{}, false, fmt.Errorf("read %s.trep_commit_seqno: %w", TrackingSchema(service), err)
	}
	defer rows.Close()
	if !rows.Next() {
		return Position{}, false, rows.Err()
	}
	var seqno, epoch int64
	var p Position
	var lastFrag string
	var latency int64
	var upd, ext string
	if err := rows.Scan(&seqno, &p.Fragno, &lastFrag, &epoch, &p.EventID, &p.SourceID, &p.Shard, &latency, &upd, &ext); err != nil {
		return Position{}, false, err
	}
	if seqno < 0 {
		return Position{}, false, nil
	}
	p.Seqno, p.Epoch, p.LastFrag = uint64(seqno), uint64(max(epoch, 0)), lastFrag == "1"
	p.AppliedLatency = time.Duration(latency) * time.Millisecond
	p.UpdateTimestamp = unixString(upd)
	p.ExtractTime = unixString(ext)
	return p, true, nil
}

func unixString(s string) time.Time {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f == 0 {
		return time.Time{}
	}
	return time.Unix(0, int64(f*1e9)).UTC()
}

// appendTrackingUpdate appends the statement recording ev as applied.
func appendTrackingUpdate(b []byte, service string, ev *thlpb.Event, now time.Time) []byte {
	latency := int64(0)
	if t := ev.GetSourceCommitTimeUs(); t > 0 {
		latency = max(0, now.UnixMilli()-t/1000)
	}
	b = append(b, "UPDATE "...)
	b = quoteIdent(b, TrackingSchema(service))
	b = append(b, ".trep_commit_seqno SET seqno="...)
	b = strconv.AppendUint(b, ev.GetSeqno(), 10)
	b = append(b, ",fragno="...)
	b = strconv.AppendUint(b, uint64(ev.GetFragno()), 10)
	b = append(b, ",last_frag="...)
	if ev.GetLastFrag() {
		b = append(b, "'1'"...)
	} else {
		b = append(b, "'0'"...)
	}
	b = append(b, ",source_id="...)
	b = quoteString(b, []byte(ev.GetSourceId()))
	b = append(b, ",epoch_number="...)
	b = strconv.AppendUint(b, ev.GetEpoch(), 10)
	b = append(b, ",eventid="...)
	b = quoteString(b, []byte(ev.GetEventId()))
	b = append(b, ",applied_latency="...)
	b = strconv.AppendInt(b, latency, 10)
	b = append(b, ",update_timestamp=NOW(6),shard_id="...)
	b = quoteString(b, []byte(ev.GetShard()))
	b = append(b, ",extract_timestamp="...)
	if t := ev.GetExtractTimeUs(); t > 0 {
		b = append(b, "FROM_UNIXTIME("...)
		b = strconv.AppendFloat(b, float64(t)/1e6, 'f', 6, 64)
		b = append(b, ')')
	} else {
		b = append(b, "NULL"...)
	}
	return append(b, " WHERE task_id=0;"...)
}

// appendTrackingTouch appends a write of the tracking row that leaves the
// position as it is: it marks a binlog group as the applier's (loop
// prevention) before the transaction it belongs to is complete.
func appendTrackingTouch(b []byte, service string) []byte {
	b = append(b, "UPDATE "...)
	b = quoteIdent(b, TrackingSchema(service))
	return append(b, ".trep_commit_seqno SET update_timestamp=NOW(6) WHERE task_id=0;"...)
}

// dropTracking removes the tracking schema (trepctl reset -db).
func dropTracking(ctx context.Context, conn *sql.Conn, service string) error {
	if _, err := conn.ExecContext(ctx, "SET SESSION sql_log_bin=0"); err != nil {
		return err
	}
	_, err := conn.ExecContext(ctx, "DROP DATABASE IF EXISTS "+string(quoteIdent(nil, TrackingSchema(service))))
	if _, err2 := conn.ExecContext(ctx, "SET SESSION sql_log_bin=1"); err == nil {
		err = err2
	}
	return err
}
