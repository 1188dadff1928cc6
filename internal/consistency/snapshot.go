package consistency

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"
)

// MarkerTable is the table of a service's tracking schema a check's
// markers are written to; the extractor keeps its service's own writes to
// it (like its heartbeat table's), so they travel.
const MarkerTable = "consistency"

// MarkerDDL creates the marker table in schema (quoted).
func MarkerDDL(schema string) string {
	return "CREATE TABLE IF NOT EXISTS " + schema + "." + MarkerTable + ` (
  check_id BIGINT UNSIGNED NOT NULL,
  chunk INT UNSIGNED NOT NULL,
  db VARCHAR(64) NOT NULL DEFAULT '',
  tbl VARCHAR(64) NOT NULL DEFAULT '',
  boundaries TEXT,
  query MEDIUMTEXT,
  master VARCHAR(128) NOT NULL DEFAULT '',
  ts TIMESTAMP(6) NULL,
  PRIMARY KEY (check_id, chunk)
) ENGINE=InnoDB`
}

// Snapshot is one host's checksum of a chunk and, from the same
// consistent snapshot, where each stream applied there stood.
type Snapshot struct {
	Count int64
	CRC   string
	// Tracking is each tracking schema's service and the seqno its
	// tracking row held (-1 for none applied).
	Tracking map[string]int64
	// BinlogPos is the binlog position the snapshot matches
	// ("file:pos"): where a service this host is the master of stood.
	BinlogPos string
	Took      time.Duration
	// Rows maps each row's key to its hash, for a rows query.
	Rows map[string]string
}

// MaxListedRows bounds a rows query's answer: a chunk checked row by row
// holds at most this many.
const MaxListedRows = 50_000

// listRows runs a rows query: the rows, their count and the XOR of their
// hashes (what the checksum query would say).
func listRows(ctx context.Context, conn *sql.Conn, query string, snap *Snapshot) error {
	rows, err := conn.QueryContext(ctx, query)
	if err != nil {
		return fmt.Errorf("list rows: %w", err)
	}
	defer rows.Close()
	snap.Rows = map[string]string{}
	var crc uint64
	for rows.Next() {
		var key, hash string
		if err := rows.Scan(&key, &hash); err != nil {
			return err
		}
		if len(snap.Rows) >= MaxListedRows {
			return fmt.Errorf("the chunk holds more than %d rows: too many to list", MaxListedRows)
		}
		snap.Rows[key] = hash
		h, _ := strconv.ParseUint(hash, 16, 64)
		crc ^= h
	}
	snap.Count, snap.CRC = int64(len(snap.Rows)), strconv.FormatUint(crc, 16)
	return rows.Err()
}

// Compute runs query in one consistent snapshot on conn, with the tracking
// rows and binlog position of the same snapshot. It changes conn's
// session (isolation, time zone, character set): the caller does not give
// it back to a pool that other code uses.
func Compute(ctx context.Context, conn *sql.Conn, query string) (Snapshot, error) {
	begin := time.Now()
	var schemas []string
	// SHOW DATABASES, not information_schema.tables: that one opens every
	// table's definition, and a check runs this for every chunk.
	rows, err := conn.QueryContext(ctx, "SHOW DATABASES LIKE 'tungsten\\_%'")
	if err != nil {
		return Snapshot{}, fmt.Errorf("list tracking schemas: %w", err)
	}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			rows.Close()
			return Snapshot{}, err
		}
		schemas = append(schemas, s)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return Snapshot{}, err
	}
	// TIMESTAMP columns render in the session's zone: every host the same.
	for _, q := range []string{"SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ", "SET time_zone = '+00:00', NAMES utf8mb4",
		"START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY"} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return Snapshot{}, fmt.Errorf("%s: %w", q, err)
		}
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
	snap := Snapshot{Tracking: map[string]int64{}}
	var file, pos string
	rows, err = conn.QueryContext(ctx, "SHOW STATUS LIKE 'binlog_snapshot_%'")
	if err != nil {
		return Snapshot{}, fmt.Errorf("binlog position of the snapshot: %w", err)
	}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			rows.Close()
			return Snapshot{}, err
		}
		switch strings.ToLower(k) {
		case "binlog_snapshot_file":
			file = v
		case "binlog_snapshot_position":
			pos = v
		}
	}
	rows.Close()
	if file != "" {
		snap.BinlogPos = file + ":" + pos
	}
	for _, s := range schemas {
		var seqno int64
		err := conn.QueryRowContext(ctx, "SELECT seqno FROM "+QuoteIdent(s)+".trep_commit_seqno WHERE task_id = 0").Scan(&seqno)
		var me *mysql.MySQLError
		switch {
		case errors.As(err, &me) && me.Number == 1146:
			continue // a tungsten_ schema without a tracking table
		case err == sql.ErrNoRows:
			seqno = -1
		case err != nil:
			return Snapshot{}, fmt.Errorf("tracking row of %s: %w", s, err)
		}
		snap.Tracking[strings.TrimPrefix(s, "tungsten_")] = seqno
	}
	if strings.HasPrefix(query, rowsPrefix) {
		if err := listRows(ctx, conn, query, &snap); err != nil {
			return Snapshot{}, err
		}
	} else if err := conn.QueryRowContext(ctx, query).Scan(&snap.Count, &snap.CRC); err != nil {
		return Snapshot{}, fmt.Errorf("checksum: %w", err)
	}
	snap.Took = time.Since(begin)
	return snap, nil
}

// Result is what one host computed for one chunk of a check.
type Result struct {
	CheckID uint64
	Chunk   uint32
	Host    string
	// Seqno is the marker's seqno where a host applied it; the master
	// records its own result when it writes the marker (Seqno 0).
	Seqno uint64
	Snapshot
	Err string
}

// Registry keeps the results of a service's latest checks (in memory:
// a check whose results a restart lost is run again).
type Registry struct {
	mu     sync.Mutex
	checks map[uint64][]Result
	order  []uint64
}

// keepChecks is how many checks a registry keeps.
const keepChecks = 32

// Add records r.
func (g *Registry) Add(r Result) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.checks == nil {
		g.checks = map[uint64][]Result{}
	}
	if _, ok := g.checks[r.CheckID]; !ok {
		g.order = append(g.order, r.CheckID)
		if len(g.order) > keepChecks {
			delete(g.checks, g.order[0])
			g.order = g.order[1:]
		}
	}
	g.checks[r.CheckID] = append(g.checks[r.CheckID], r)
}

// Results returns check id's results so far.
func (g *Registry) Results(id uint64) []Result {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]Result(nil), g.checks[id]...)
}
