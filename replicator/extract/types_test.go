package extract

import (
	"math"
	"strings"
	"testing"

	"github.com/carbidedb/carbide/internal/testutil"
	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

const typesTable = `CREATE TABLE app.types (
  id INT NOT NULL PRIMARY KEY,
  ti TINYINT, tiu TINYINT UNSIGNED,
  si SMALLINT, siu SMALLINT UNSIGNED,
  mi MEDIUMINT, miu MEDIUMINT UNSIGNED,
  i INT, iu INT UNSIGNED,
  bi BIGINT, biu BIGINT UNSIGNED,
  d DECIMAL(65,30), d2 DECIMAL(10,2) UNSIGNED,
  f FLOAT, db DOUBLE,
  dt DATE, tm TIME(6), dtm DATETIME(6), ts TIMESTAMP(6) NULL DEFAULT NULL, yr YEAR,
  c CHAR(10) CHARACTER SET utf8mb4, vc VARCHAR(100) CHARACTER SET utf8mb4, tx TEXT CHARACTER SET utf8mb4,
  l1 VARCHAR(20) CHARACTER SET latin1,
  bn BINARY(4), vb VARBINARY(10), bl BLOB,
  e ENUM('a','b','c'), s SET('x','y','z'),
  bt BIT(64), bt1 BIT(1),
  j JSON,
  gs INT AS (ti + 1) STORED, gv INT AS (ti * 2) VIRTUAL
) DEFAULT CHARSET=utf8mb4`

var typesColumns = strings.Fields(`id ti tiu si siu mi miu i iu bi biu d d2 f db dt tm dtm ts yr c vc tx l1 bn vb bl e s bt bt1 j gs gv`)

// TestColumnTypes writes edge values of every column type and checks each
// extracted value exactly: the contract with the applier.
func TestColumnTypes(t *testing.T) {
	t.Parallel()
	srv, db := startDB(t)
	testutil.Exec(t, db, "CREATE DATABASE app")
	testutil.Exec(t, db, typesTable)
	x := newExtractor(t, srv, nil)
	from := currentPosition(t, x)

	// Zero dates need a lax sql_mode; TIMESTAMP goes in at +02:00 and must
	// come out in UTC.
	c := conn(t, db, "SET SESSION sql_mode=''", "SET SESSION time_zone='+02:00'", "SET NAMES utf8mb4")
	execConn(t, c, `INSERT INTO app.types (id, ti, tiu, si, siu, mi, miu, i, iu, bi, biu, d, d2, f, db,
		dt, tm, dtm, ts, yr, c, vc, tx, l1, bn, vb, bl, e, s, bt, bt1, j) VALUES
		(1, 127, 255, 32767, 65535, 8388607, 16777215, 2147483647, 4294967295, 9223372036854775807, 18446744073709551615,
		 '-12345678901234567890123456789012345.123456789012345678901234567890', 99999999.99, 1.5, -2.718281828459045,
		 '0000-00-00', '-12:34:56.789012', '2024-01-02 03:04:05.123456', '2024-01-02 03:04:05.123456', 2024,
		 'ab', 'emoji 😀!', 'text é 😀', 'é', X'0001', X'00FF00', X'000102FF', 'b', 'x,z',
		 b'1111111111111111111111111111111111111111111111111111111111111111', b'1',
		 '{"a": [1, {"b": null}], "c": "é"}'),
		(2, -128, 0, -32768, 0, -8388608, 0, -2147483648, 0, -9223372036854775808, 0,
		 '0.000000000000000000000000000001', 0.5, NULL, NULL,
		 '9999-12-31', '838:59:59.000000', '0000-00-00 00:00:00', '1970-01-01 02:00:01.000001', NULL,
		 '', '', NULL, NULL, NULL, '', NULL, NULL, '', b'0', NULL, NULL)`)
	execConn(t, c, "UPDATE app.types SET vc='changed', biu=biu-1, d=-0.5, ti=ti-1 WHERE id=1")
	execConn(t, c, "DELETE FROM app.types WHERE id=2")

	col := start(t, x, from)
	txs := col.wait(t, 3)

	row1 := []*thlpb.Value{
		vInt(1), vInt(127), vUint(255), vInt(32767), vUint(65535), vInt(8388607), vUint(16777215),
		vInt(2147483647), vUint(4294967295), vInt(math.MaxInt64), vUint(math.MaxUint64),
		vDec("-12345678901234567890123456789012345.123456789012345678901234567890"), vDec("99999999.99"),
		vFloat(1.5), vDouble(-2.718281828459045),
		vText("0000-00-00"), vText("-12:34:56.789012"), vText("2024-01-02 03:04:05.123456"),
		vText("2024-01-02 01:04:05.123456"), vInt(2024),
		vBytes("ab"), vBytes("emoji 😀!"), vBytes("text é 😀"), vBytes("\xe9"),
		vBytes("\x00\x01\x00\x00"), vBytes("\x00\xff\x00"), vBytes("\x00\x01\x02\xff"),
		vInt(2), vUint(5), vUint(math.MaxUint64), vUint(1),
		vBytes(`{"a": [1, {"b": null}], "c": "é"}`),
		vInt(128), vInt(254),
	}
	row2 := []*thlpb.Value{
		vInt(2), vInt(-128), vUint(0), vInt(-32768), vUint(0), vInt(-8388608), vUint(0),
		vInt(math.MinInt32), vUint(0), vInt(math.MinInt64), vUint(0),
		vDec("0.000000000000000000000000000001"), vDec("0.50"),
		vNull(), vNull(),
		vText("9999-12-31"), vText("838:59:59.000000"), vText("0000-00-00 00:00:00.000000"),
		vText("1970-01-01 00:00:01.000001"), vNull(),
		vBytes(""), vBytes(""), vNull(), vNull(),
		vNull(), vBytes(""), vNull(),
		vNull(), vUint(0), vUint(0), vNull(),
		vNull(),
		vInt(-127), vInt(-256),
	}

	// INSERT: both rows, one RowChange, shard app, columns described.
	ins := rowChanges(t, txs[0])
	if len(ins) != 1 || ins[0].Action != thlpb.RowChange_INSERT || ins[0].Schema != "app" || ins[0].Table != "types" || len(ins[0].Rows) != 2 {
		t.Fatalf("insert: %v", ins)
	}
	cols := ins[0].Columns
	if len(cols) != len(typesColumns) {
		t.Fatalf("%d columns, want %d", len(cols), len(typesColumns))
	}
	unsigned := map[string]bool{"tiu": true, "siu": true, "miu": true, "iu": true, "biu": true, "d2": true}
	types := map[string]uint32{"id": 3, "ti": 1, "mi": 9, "bi": 8, "d": 246, "f": 4, "db": 5, "dt": 10, "tm": 19, "dtm": 18, "ts": 17,
		"yr": 13, "c": 254, "vc": 15, "tx": 252, "bn": 254, "e": 247, "s": 248, "bt": 16, "j": 252}
	for i, name := range typesColumns {
		c := cols[i]
		if c.Name != name || c.Key != (name == "id") || c.Unsigned != unsigned[name] {
			t.Errorf("column %d = %v, want name %s key %v unsigned %v", i, c, name, name == "id", unsigned[name])
		}
		if want, ok := types[name]; ok && c.Type != want {
			t.Errorf("column %s type %d, want %d", name, c.Type, want)
		}
	}
	eqValues(t, "insert row 1", cols, ins[0].Rows[0].After, row1)
	eqValues(t, "insert row 2", cols, ins[0].Rows[1].After, row2)
	if ins[0].Rows[0].Before != nil {
		t.Errorf("insert has a before image")
	}

	// UPDATE: before = row 1, after = row 1 changed.
	upd := rowChanges(t, txs[1])
	if len(upd) != 1 || upd[0].Action != thlpb.RowChange_UPDATE || len(upd[0].Rows) != 1 {
		t.Fatalf("update: %v", upd)
	}
	after := append([]*thlpb.Value(nil), row1...)
	after[1], after[10], after[11], after[21] = vInt(126), vUint(math.MaxUint64-1), vDec("-0.500000000000000000000000000000"), vBytes("changed")
	after[32], after[33] = vInt(127), vInt(252)
	eqValues(t, "update before", cols, upd[0].Rows[0].Before, row1)
	eqValues(t, "update after", cols, upd[0].Rows[0].After, after)

	// DELETE: before = row 2.
	del := rowChanges(t, txs[2])
	if len(del) != 1 || del[0].Action != thlpb.RowChange_DELETE || len(del[0].Rows) != 1 || del[0].Rows[0].After != nil {
		t.Fatalf("delete: %v", del)
	}
	eqValues(t, "delete before", cols, del[0].Rows[0].Before, row2)

	for i, tx := range txs {
		ev := tx[0]
		if len(tx) != 1 || !ev.LastFrag || ev.Fragno != 0 || ev.Shard != "app" || ev.SourceId != "east1" || ev.OriginService != "east" ||
			ev.SourceCommitTimeUs == 0 || ev.ExtractTimeUs == 0 || ev.Seqno != 0 || ev.Epoch != 0 || ev.Heartbeat != "" {
			t.Errorf("transaction %d header: %+v", i, ev)
		}
	}
}
