package apply

import (
	"context"
	"database/sql"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

// The conflict log: tungsten_<service>.conflicts, made with the tracking
// tables (sql_log_bin=0: every host has its own). A record is written in
// the database transaction that carries out its decision, with the
// tracking row, so a restart never records a conflict twice; that
// transaction writes the tracking schema, so the extractor drops it and
// the record never replicates.

func conflictsDDL(schema string) string {
	return "CREATE TABLE IF NOT EXISTS " + schema + `.conflicts (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  seqno BIGINT NOT NULL,
  fragno SMALLINT UNSIGNED NOT NULL,
  change_no INT UNSIGNED NOT NULL,
  row_no INT UNSIGNED NOT NULL,
  origin VARCHAR(128) NOT NULL,
  schema_name VARCHAR(64) NOT NULL,
  table_name VARCHAR(64) NOT NULL,
  row_key TEXT NOT NULL,
  action VARCHAR(6) NOT NULL,
  kind VARCHAR(16) NOT NULL,
  before_image LONGTEXT NULL,
  target_image LONGTEXT NULL,
  after_image LONGTEXT NULL,
  policy VARCHAR(8) NOT NULL,
  decision VARCHAR(8) NOT NULL,
  source_commit_time TIMESTAMP(6) NULL,
  detected_at TIMESTAMP(6) NOT NULL,
  KEY (seqno)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`
}

// appendConflictInsert appends the statement recording c.
func appendConflictInsert(b []byte, service string, c *Conflict) []byte {
	b = append(b, "INSERT INTO "...)
	b = quoteIdent(b, TrackingSchema(service))
	b = append(b, ".conflicts (seqno,fragno,change_no,row_no,origin,schema_name,table_name,row_key,action,kind,"+
		"before_image,target_image,after_image,policy,decision,source_commit_time,detected_at) VALUES ("...)
	b = strconv.AppendUint(b, c.Seqno, 10)
	b = append(b, ',')
	b = strconv.AppendUint(b, uint64(c.Fragno), 10)
	b = append(b, ',')
	b = strconv.AppendInt(b, int64(c.Change), 10)
	b = append(b, ',')
	b = strconv.AppendInt(b, int64(c.Row), 10)
	for _, s := range []string{c.Origin, c.Schema, c.Table, c.Key, c.Action, c.Kind} {
		b = append(b, ",_utf8mb4"...)
		b = quoteString(b, []byte(s))
	}
	for _, s := range []string{c.Before, c.Target, c.After} {
		if s == "" {
			b = append(b, ",NULL"...)
			continue
		}
		b = append(b, ",_utf8mb4"...)
		b = quoteString(b, []byte(s))
	}
	b = append(b, ",'"...)
	b = append(b, c.Policy...)
	b = append(b, "','"...)
	b = append(b, c.Decision...)
	b = append(b, "',"...)
	b = appendTime(b, c.SourceCommit)
	b = append(b, ',')
	b = appendTime(b, c.DetectedAt)
	return append(b, ");"...)
}

func appendTime(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(b, "NULL"...)
	}
	b = append(b, "FROM_UNIXTIME("...)
	b = strconv.AppendFloat(b, float64(t.UnixMicro())/1e6, 'f', 6, 64)
	return append(b, ')')
}

// ReadConflicts returns the latest limit conflicts recorded for service,
// newest first.
func ReadConflicts(ctx context.Context, db *sql.DB, service string, limit int) ([]Conflict, error) {
	s := string(quoteIdent(nil, TrackingSchema(service)))
	rows, err := db.QueryContext(ctx, `SELECT id, seqno, fragno, change_no, row_no, origin, schema_name, table_name, row_key, action, kind,
		IFNULL(before_image, ''), IFNULL(target_image, ''), IFNULL(after_image, ''), policy, decision,
		IFNULL(UNIX_TIMESTAMP(source_commit_time), 0), UNIX_TIMESTAMP(detected_at)
		FROM `+s+`.conflicts ORDER BY id DESC LIMIT ?`, limit)
	if err != nil {
		if isErrNo(err, 1146) || isErrNo(err, 1049) {
			return nil, nil // no applier made the table yet: no conflicts
		}
		return nil, fmt.Errorf("read %s.conflicts: %w", TrackingSchema(service), err)
	}
	defer rows.Close()
	var out []Conflict
	for rows.Next() {
		var c Conflict
		var policy, decision, commit, detected string
		if err := rows.Scan(&c.ID, &c.Seqno, &c.Fragno, &c.Change, &c.Row, &c.Origin, &c.Schema, &c.Table, &c.Key, &c.Action, &c.Kind,
			&c.Before, &c.Target, &c.After, &policy, &decision, &commit, &detected); err != nil {
			return nil, err
		}
		c.Policy, c.Decision = Policy(policy), Decision(decision)
		c.SourceCommit, c.DetectedAt = unixString(commit), unixString(detected)
		out = append(out, c)
	}
	return out, rows.Err()
}

// countConflicts counts the conflicts recorded for service.
func countConflicts(ctx context.Context, q queryer, service string) (uint64, error) {
	var n uint64
	err := q.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+string(quoteIdent(nil, TrackingSchema(service)))+".conflicts").Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count %s.conflicts: %w", TrackingSchema(service), err)
	}
	return n, nil
}

// maxLoggedValue bounds one value in a logged row image; a longer one is
// cut, with its length and MD5 (what conflict detection compares).
const maxLoggedValue = 64 << 10

// imageJSON renders a row image of t as a JSON object by column name: the
// columns the event writes (target[i] >= 0), in the event's order.
func imageJSON(t *table, target []int, img []*thlpb.Value) string {
	if img == nil {
		return ""
	}
	var b []byte
	b = append(b, '{')
	first := true
	for i, j := range target {
		if j < 0 || i >= len(img) {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendJSONString(b, []byte(t.columns[j].name))
		b = append(b, ':')
		b = appendJSONValue(b, img[i])
	}
	return string(append(b, '}'))
}

// appendJSONValue appends v as JSON: numbers as numbers, strings as
// strings when they are UTF-8, else as "0x" and their bytes in hex.
func appendJSONValue(b []byte, v *thlpb.Value) []byte {
	switch x := v.GetValue().(type) {
	case nil, *thlpb.Value_Null:
		return append(b, "null"...)
	case *thlpb.Value_Int:
		return strconv.AppendInt(b, x.Int, 10)
	case *thlpb.Value_Uint:
		return strconv.AppendUint(b, x.Uint, 10)
	case *thlpb.Value_Float:
		return strconv.AppendFloat(b, float64(x.Float), 'g', -1, 32)
	case *thlpb.Value_Double:
		return strconv.AppendFloat(b, x.Double, 'g', -1, 64)
	case *thlpb.Value_Decimal:
		return appendJSONNumber(b, []byte(x.Decimal))
	case *thlpb.Value_Bytes:
		return appendJSONString(b, x.Bytes)
	case *thlpb.Value_Text:
		return appendJSONString(b, []byte(x.Text))
	}
	return append(b, "null"...)
}

// appendJSONNumber appends s as a JSON number when it is one, else as a
// string.
func appendJSONNumber(b, s []byte) []byte {
	if isJSONNumber(s) {
		return append(b, s...)
	}
	return appendJSONString(b, s)
}

func isJSONNumber(s []byte) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	digits := func() bool {
		start := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		return i > start
	}
	if i < len(s) && s[i] == '0' {
		i++
	} else if !digits() {
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if !digits() {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if !digits() {
			return false
		}
	}
	return i == len(s)
}

// appendJSONString appends s as a JSON string: as text when it is UTF-8,
// else "0x…" in hex; cut after maxLoggedValue bytes.
func appendJSONString(b, s []byte) []byte {
	if len(s) > maxLoggedValue {
		return appendJSONString(b, fmt.Appendf(nil, "%s… (%d bytes, md5 %s)", cutUTF8(s, 256), len(s), md5Hex(s)))
	}
	if !utf8.Valid(s) {
		return append(append(append(b, "\"0x"...), hex.EncodeToString(s)...), '"')
	}
	b = append(b, '"')
	for _, r := range string(s) {
		switch {
		case r == '"' || r == '\\':
			b = append(b, '\\', byte(r))
		case r == '\n':
			b = append(b, '\\', 'n')
		case r == '\r':
			b = append(b, '\\', 'r')
		case r == '\t':
			b = append(b, '\\', 't')
		case r < 0x20 || r == 0x2028 || r == 0x2029:
			b = fmt.Appendf(b, "\\u%04x", r)
		default:
			b = utf8.AppendRune(b, r)
		}
	}
	return append(b, '"')
}

// cutUTF8 returns at most n bytes of s, cut at a character boundary when s
// is text.
func cutUTF8(s []byte, n int) []byte {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 && !utf8.Valid(s) && n-len(s) < utf8.UTFMax {
		s = s[:len(s)-1]
	}
	return s
}

// keyText renders the key of a row image: "id=5", "a=1, b=\"x\"", or the
// whole image for a table without a key.
func keyText(t *table, pos map[int]int, img []*thlpb.Value) string {
	if !t.keyed(pos) || img == nil {
		return "(no key)"
	}
	var parts []string
	for _, k := range t.key {
		parts = append(parts, t.columns[k].name+"="+string(appendJSONValue(nil, img[pos[k]])))
	}
	return strings.Join(parts, ", ")
}

// numericColumn reports whether the target's text for column c is a
// number: the number types, and ENUM, SET and BIT, which conflict mode
// reads as numbers (column+0), as their images carry them.
func numericColumn(c *column) bool {
	switch c.dataType {
	case "tinyint", "smallint", "mediumint", "int", "bigint", "decimal", "float", "double", "year", "enum", "set", "bit":
		return true
	}
	return false
}

// readsAsNumber reports whether conflict mode reads column c as c+0.
func readsAsNumber(c *column) bool {
	return c.dataType == "enum" || c.dataType == "set" || c.dataType == "bit"
}

// targetJSON renders the target row read by conflict mode (vals[n] is the
// column target[i] of the n-th written column) as imageJSON renders
// images.
func targetJSON(t *table, target []int, vals []sql.RawBytes) string {
	var b []byte
	b = append(b, '{')
	n := 0
	for _, j := range target {
		if j < 0 {
			continue
		}
		if n > 0 {
			b = append(b, ',')
		}
		v := vals[n]
		n++
		b = appendJSONString(b, []byte(t.columns[j].name))
		b = append(b, ':')
		switch {
		case v == nil:
			b = append(b, "null"...)
		case numericColumn(&t.columns[j]):
			b = appendJSONNumber(b, v)
		default:
			b = appendJSONString(b, v)
		}
	}
	return string(append(b, '}'))
}
