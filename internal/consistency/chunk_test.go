package consistency

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"

	"github.com/carbidedb/carbide/internal/testutil"
)

func conn(t *testing.T, db *sql.DB) *sql.Conn {
	t.Helper()
	c, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestChunksCoverEveryRowOnce: the chunks of tables keyed by an integer,
// by a composite string key (with quotes, backslashes and case that a
// case-insensitive collation orders its own way) and by nothing hold every
// row exactly once, their checksums add up to the table's, and a rows
// query lists what the checksum counts. System and tracking schemas are
// never checked; a snapshot reads the tracking rows.
func TestChunksCoverEveryRowOnce(t *testing.T) {
	srv := testutil.StartMariaDB(t)
	db, err := srv.DB()
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var vals []string
	for i := 1; i <= 257; i++ {
		vals = append(vals, fmt.Sprintf("(%d, 'v%d', %s)", i*3, i, map[bool]string{true: "NULL", false: "''"}[i%2 == 0]))
	}
	var svals []string
	for i, s := range []string{"a", "A'b", `back\slash`, "Zed", "zed2", "é", "ß", "x y", "", "0"} {
		for j := 0; j < 7; j++ {
			svals = append(svals, fmt.Sprintf("(%s, %d, %d)", quoteValue(s, false), j, i*j))
		}
	}
	for _, q := range []string{
		"CREATE DATABASE c1", "CREATE DATABASE tungsten_east",
		"CREATE TABLE c1.ik (id INT PRIMARY KEY, v VARCHAR(10), n VARCHAR(3))",
		"INSERT INTO c1.ik VALUES " + strings.Join(vals, ","),
		"CREATE TABLE c1.sk (a VARCHAR(20) COLLATE utf8mb4_general_ci, b INT, n INT, PRIMARY KEY (a, b))",
		"INSERT INTO c1.sk VALUES " + strings.Join(svals, ","),
		"CREATE TABLE c1.nk (v INT)", "INSERT INTO c1.nk VALUES (1), (1), (NULL)",
		"CREATE TABLE tungsten_east.x (id INT PRIMARY KEY)",
		"CREATE TABLE tungsten_east.trep_commit_seqno (task_id INT PRIMARY KEY, seqno BIGINT)",
		"INSERT INTO tungsten_east.trep_commit_seqno VALUES (0, 42)",
		"CREATE DATABASE tungsten_empty",
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	ctx := context.Background()
	c := conn(t, db)
	tables, err := Tables(ctx, c, "", "")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tb := range tables {
		names = append(names, tb.Schema+"."+tb.Name)
	}
	if got := strings.Join(names, " "); got != "c1.ik c1.nk c1.sk" {
		t.Fatalf("tables to check: %s, want c1.ik c1.nk c1.sk", got)
	}
	if !tables[0].IntKey || !tables[0].TextKey || tables[1].Key != nil || tables[2].IntKey || !tables[2].TextKey {
		t.Errorf("keys: %+v", tables)
	}
	comp := conn(t, db)
	for i := range tables {
		tb := &tables[i]
		whole, err := Compute(ctx, comp, ChecksumQuery(tb, ""))
		if err != nil {
			t.Fatal(err)
		}
		var count int64
		var crc uint64
		keys := map[string]int{}
		ch := NewChunker(tb, 0)
		for n := 0; ; n++ {
			chunk, ok, err := ch.Next(ctx, c, 10)
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				break
			}
			s, err := Compute(ctx, comp, chunk.Query)
			if err != nil {
				t.Fatalf("%s chunk %d (%s): %v", tb.Name, chunk.No, chunk.Range(), err)
			}
			count += s.Count
			var x uint64
			fmt.Sscanf(s.CRC, "%x", &x)
			crc ^= x
			if chunk.RowsQuery == "" {
				continue
			}
			r, err := Compute(ctx, comp, chunk.RowsQuery)
			if err != nil {
				t.Fatal(err)
			}
			if r.Count != s.Count || r.CRC != s.CRC {
				t.Errorf("%s chunk %d: the rows query says %d rows, %s; the checksum %d, %s", tb.Name, chunk.No, r.Count, r.CRC, s.Count, s.CRC)
			}
			for k := range r.Rows {
				keys[k]++
			}
		}
		if count != whole.Count || fmt.Sprintf("%x", crc) != whole.CRC {
			t.Errorf("%s: chunks hold %d rows, checksum %x; the whole table %d, %s", tb.Name, count, crc, whole.Count, whole.CRC)
		}
		for k, n := range keys {
			if n != 1 {
				t.Errorf("%s: row %q in %d chunks", tb.Name, k, n)
			}
		}
		if tb.Key != nil && len(keys) != int(whole.Count) {
			t.Errorf("%s: %d rows listed, %d in the table", tb.Name, len(keys), whole.Count)
		}
	}
	// The snapshot's tracking rows: a schema without one is left out.
	if s, err := Compute(ctx, comp, "SELECT 1, 'x'"); err != nil || len(s.Tracking) != 1 || s.Tracking["east"] != 42 || s.BinlogPos == "" {
		t.Errorf("Compute's tracking rows %v, binlog position %q: %v; want east at 42 and a position", s.Tracking, s.BinlogPos, err)
	}
	// NULL and '' differ; a changed value changes the checksum.
	before, _ := Compute(ctx, comp, ChecksumQuery(&tables[0], ""))
	db.Exec("UPDATE c1.ik SET n = NULL WHERE id = 3")
	after, _ := Compute(ctx, comp, ChecksumQuery(&tables[0], ""))
	if before.CRC == after.CRC {
		t.Errorf("'' and NULL checksum the same (%s)", before.CRC)
	}
	if _, err := Tables(ctx, c, "c1", "nosuch"); err == nil || !strings.Contains(err.Error(), "no table c1.nosuch") {
		t.Errorf("a table that does not exist: %v", err)
	}
}
