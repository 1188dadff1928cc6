package extract

import (
	"bytes"
	"compress/zlib"
	"context"
	"strings"
	"testing"

	"github.com/carbidedb/carbide/internal/position"
	"github.com/carbidedb/carbide/internal/testutil"
	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

func TestDecompress(t *testing.T) {
	long := strings.Repeat("compressible ", 100)
	var z bytes.Buffer
	w := zlib.NewWriter(&z)
	w.Write([]byte(long))
	w.Close()
	zlibForm := append([]byte{0x80 | 2, byte(len(long) >> 8), byte(len(long))}, z.Bytes()...)
	for _, c := range []struct {
		name   string
		stored []byte
		want   string
		err    bool
	}{
		{"empty", nil, "", false},
		{"stored as is", append([]byte{0}, "short"...), "short", false},
		{"zlib", zlibForm, long, false},
		{"length lies", append([]byte{0x80 | 2, 0, 5}, z.Bytes()...), "", true},
		{"truncated header", []byte{0x80 | 3, 1}, "", true},
		{"not zlib", []byte{0x80 | 1, 5, 1, 2, 3}, "", true},
	} {
		got, err := decompress(c.stored)
		if (err != nil) != c.err || err == nil && string(got) != c.want {
			t.Errorf("%s: decompress = %.40q, %v", c.name, got, err)
		}
	}
}

// Rows of tables with COMPRESSED columns (MariaDB column compression)
// extract with their values, stored compressed or not, live and from the
// binlog files (RunTail), and their raw events stay as the server wrote
// them (the applier's BINLOG statements).
func TestCompressedColumns(t *testing.T) {
	t.Parallel()
	srv, db := startDB(t)
	x := newExtractor(t, srv, nil)
	from := currentPosition(t, x)
	testutil.Exec(t, db, "CREATE DATABASE app")
	testutil.Exec(t, db, `CREATE TABLE app.c (id INT PRIMARY KEY, v VARCHAR(2000) COMPRESSED CHARACTER SET utf8mb4,
		tx TEXT COMPRESSED, b BLOB COMPRESSED, after_them INT, j JSON COMPRESSED)`)
	long := strings.Repeat("Grüße compressible text ", 60)
	testutil.Exec(t, db, "INSERT INTO app.c VALUES (1, ?, ?, ?, 7, ?), (2, 'short', 'x', '', 8, '[]'), (3, NULL, NULL, NULL, 9, NULL)",
		long, long, long, `{"a": "`+strings.Repeat("b", 500)+`"}`)
	testutil.Exec(t, db, "UPDATE app.c SET v = 'now short', after_them = 70 WHERE id = 1")
	c := start(t, x, from)
	got := c.wait(t, 4)
	c.stop(t)
	ins := rowChanges(t, got[2])[0]
	if ins.GetColumns()[4].GetName() != "after_them" {
		t.Fatalf("columns = %v", ins.GetColumns())
	}
	eqValues(t, "row 1", ins.Columns, ins.Rows[0].After, []*thlpb.Value{vInt(1), vBytes(long), vBytes(long), vBytes(long), vInt(7), ins.Rows[0].After[5]})
	if j := string(ins.Rows[0].After[5].GetBytes()) + ins.Rows[0].After[5].GetText(); !strings.Contains(j, strings.Repeat("b", 500)) {
		t.Errorf("the JSON column extracted as %.60q", j)
	}
	eqValues(t, "row 2", ins.Columns, ins.Rows[1].After[:5], []*thlpb.Value{vInt(2), vBytes("short"), vBytes("x"), vBytes(""), vInt(8)})
	eqValues(t, "row 3", ins.Columns, ins.Rows[2].After[:5], []*thlpb.Value{vInt(3), vNull(), vNull(), vNull(), vInt(9)})
	upd := rowChanges(t, got[3])[0]
	eqValues(t, "update before", upd.Columns, upd.Rows[0].Before[:5], []*thlpb.Value{vInt(1), vBytes(long), vBytes(long), vBytes(long), vInt(7)})
	eqValues(t, "update after", upd.Columns, upd.Rows[0].After[:5], []*thlpb.Value{vInt(1), vBytes("now short"), vBytes(long), vBytes(long), vInt(70)})
	if !bytes.Contains(upd.GetBinlog(), []byte{typeBlobCompressed}) {
		t.Error("the raw table map lost its COMPRESSED column types")
	}

	// The same rows from the binlog files.
	last, err := position.Parse(got[1][0].GetEventId())
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	var tail [][]*thlpb.Event
	if _, err := x.RunTail(context.Background(), last, position.Position{}, func(frags []*thlpb.Event) error {
		tail = append(tail, frags)
		return nil
	}); err != nil {
		t.Fatalf("RunTail: %v", err)
	}
	if len(tail) != 2 {
		t.Fatalf("the tail holds %d transactions, want 2", len(tail))
	}
	eqValues(t, "tail row 1", ins.Columns, rowChanges(t, tail[0])[0].Rows[0].After[:5], []*thlpb.Value{vInt(1), vBytes(long), vBytes(long), vBytes(long), vInt(7)})
}
