package fencing

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/carbidedb/carbide/internal/position"
)

// Orphans lists the transactions host's binlog holds after the event id
// its replicator last extracted as master ("mysql-bin.000002:0000…1234"):
// writes the primary committed that never reached the site, which a
// recover would silently keep on that host alone. Each is described by
// its GTID and the tables it touched.
func (d *Databases) Orphans(ctx context.Context, host, eventID string) ([]string, error) {
	p, err := position.Parse(eventID)
	if err != nil {
		return nil, err
	}
	file, off := p.File, p.Offset
	db, err := d.DB(host)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	files, err := binlogFiles(ctx, db)
	if err != nil {
		return nil, err
	}
	var out []string
	started := false
	for _, f := range files {
		if f == file {
			started = true
		}
		if !started {
			continue
		}
		q := "SHOW BINLOG EVENTS IN '" + strings.ReplaceAll(f, "'", "") + "'"
		if f == file {
			q += " FROM " + strconv.FormatUint(off, 10)
		}
		rows, err := db.QueryContext(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("%s on %s: %w", q, host, err)
		}
		cur := -1
		for rows.Next() {
			var logName, evType string
			var infoN sql.NullString
			var p, serverID, end int64
			if err := rows.Scan(&logName, &p, &evType, &serverID, &end, &infoN); err != nil {
				rows.Close()
				return nil, err
			}
			info := infoN.String
			switch evType {
			case "Gtid":
				out = append(out, strings.TrimPrefix(info, "BEGIN "))
				cur = len(out) - 1
			case "Table_map", "Annotate_rows":
				if cur >= 0 && evType == "Table_map" {
					if j := strings.Index(info, "("); j >= 0 && strings.HasSuffix(info, ")") {
						t := info[j+1 : len(info)-1]
						if !strings.Contains(out[cur], t) {
							out[cur] += " " + t
						}
					}
				}
			case "Query":
				if cur >= 0 && info != "COMMIT" && !strings.HasPrefix(info, "BEGIN") {
					s := info
					if len(s) > 60 {
						s = s[:60] + "…"
					}
					out[cur] += " `" + s + "`"
				}
			}
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, err
		}
	}
	if !started {
		return nil, fmt.Errorf("%s no longer has binlog %s", host, file)
	}
	return out, nil
}

func binlogFiles(ctx context.Context, db *sql.DB) ([]string, error) {
	rows, err := db.QueryContext(ctx, "SHOW BINARY LOGS")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out []string
	for rows.Next() {
		vals := make([]any, len(cols))
		var name string
		vals[0] = &name
		for i := 1; i < len(cols); i++ {
			vals[i] = new(sql.RawBytes)
		}
		if err := rows.Scan(vals...); err != nil {
			return nil, err
		}
		out = append(out, name)
	}
	return out, rows.Err()
}
