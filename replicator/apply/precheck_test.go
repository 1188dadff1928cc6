package apply

import (
	"bytes"
	"context"
	"encoding/hex"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/carbidedb/carbide/internal/testutil"
	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

// quoteRef is QUOTE() as MariaDB documents it, written plainly.
func quoteRef(s []byte) []byte {
	out := []byte{'\''}
	for _, c := range s {
		switch c {
		case '\\', '\'':
			out = append(out, '\\', c)
		case 0:
			out = append(out, '\\', '0')
		case 032:
			out = append(out, '\\', 'Z')
		default:
			out = append(out, c)
		}
	}
	return append(out, '\'')
}

func TestQuoteSQL(t *testing.T) {
	for _, s := range []string{"", "a", "it's", `back\slash`, "nul\x00", "\x1a", "'\\\x00\x1a", "plain text, with a comma"} {
		got := quoteSQL([]byte("prefix"+s), len("prefix"))
		if want := append([]byte("prefix"), quoteRef([]byte(s))...); !bytes.Equal(got, want) {
			t.Errorf("quoteSQL(%q) = %q, want %q", s, got, want)
		}
	}
}

func FuzzQuoteSQL(f *testing.F) {
	f.Add([]byte("a'b\\c\x00d\x1a"), 3)
	f.Fuzz(func(t *testing.T, s []byte, start int) {
		if start < 0 || start > len(s) {
			return
		}
		got := quoteSQL(bytes.Clone(s), start)
		want := append(bytes.Clone(s[:start]), quoteRef(s[start:])...)
		if !bytes.Equal(got, want) {
			t.Fatalf("quoteSQL(%q, %d) = %q, want %q", s, start, got, want)
		}
	})
}

// The server's QUOTE of a binary string is quoteSQL's, for every byte and
// for random strings.
func TestQuoteSQLServer(t *testing.T) {
	testutil.RequireDB(t)
	db := testutil.DB(t, testutil.StartMariaDB(t))
	every := make([]byte, 256)
	for i := range every {
		every[i] = byte(i)
	}
	values := [][]byte{every, {}, []byte("ä'\\"), bytes.Repeat([]byte{'\\', 0, 032, '\''}, 300)}
	r := rand.New(rand.NewPCG(1, 2))
	for range 50 {
		v := make([]byte, r.IntN(64))
		for i := range v {
			const some = "\\'\x00\x1a,ab\xff"
			v[i] = some[r.IntN(len(some))]
		}
		values = append(values, v)
	}
	for _, v := range values {
		var got string
		q := "SELECT HEX(QUOTE(CAST(UNHEX('" + hex.EncodeToString(v) + "') AS BINARY)))"
		if err := db.QueryRow(q).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if want := strings.ToUpper(hex.EncodeToString(quoteSQL(bytes.Clone(v), 0))); got != want {
			t.Errorf("QUOTE(%q): server %s, quoteSQL %s", v, got, want)
		}
	}
}

// A block whose precheck would make its query longer than
// max_allowed_packet allows verifies its rows by a locking read instead,
// and conflicts are found all the same.
func TestPrecheckOverPacket(t *testing.T) {
	testutil.RequireDB(t)
	srv := testutil.StartMariaDB(t)
	db := testutil.DB(t, srv)
	freshApp(t, db, "CREATE TABLE app.p (id INT PRIMARY KEY, v VARCHAR(40))",
		"INSERT INTO app.p SELECT seq, 'orig' FROM mysql.seq_1_to_200", "UPDATE app.p SET v = 'west' WHERE id = 150")
	a := newConflictApplier(t, srv.Addr(), 1, PolicySkip)
	a.maxQuery = queryOverhead + 4000 // parts of ~4,000 bytes, ~70 updates
	// One transaction of 20 fragments, 10 rows each.
	c := cols("id", "v")
	var evs []*thlpb.Event
	for f := range 20 {
		var rows []*thlpb.Row
		for id := int64(f*10 + 1); id <= int64(f*10+10); id++ {
			rows = append(rows, &thlpb.Row{Before: row(vInt(id), vBytes("orig")), After: row(vInt(id), vBytes("east"))})
		}
		ev := rowsEvent(0, thlpb.RowChange_UPDATE, "p", c, rows...)
		ev.Fragno, ev.LastFrag = uint32(f), f == 19
		evs = append(evs, ev)
	}
	if err := runUntil(t, a, 0, evs...); err != nil {
		t.Fatal(err)
	}
	if got := testutil.QueryString(t, db, "SELECT CONCAT(SUM(v = 'east'), ':', (SELECT v FROM app.p WHERE id = 150)) FROM app.p"); got != "199:west" {
		t.Errorf("rows east:row 150 = %s, want 199:west", got)
	}
	if got := conflictRows(t, db); len(got) != 1 || !strings.HasPrefix(got[0], "0 UPDATE id=150 row differs kept") {
		t.Errorf("conflicts = %q, want row 150 kept", got)
	}
	if a.lockingReads.Load() == 0 {
		t.Error("every part verified its rows in its own statement, over max_allowed_packet")
	}
}

// A precheck locks the rows it verifies until the transaction ends, as a
// locking read does: nobody changes them between the check and the
// block's statements.
func TestPrecheckLocks(t *testing.T) {
	testutil.RequireDB(t)
	srv := testutil.StartMariaDB(t)
	db := testutil.DB(t, srv)
	freshApp(t, db, "CREATE TABLE app.l (id INT PRIMARY KEY, v VARCHAR(20))", "INSERT INTO app.l VALUES (1, 'a'), (2, 'b')")
	a := newConflictApplier(t, srv.Addr(), 1, PolicyStop)
	ctx := context.Background()
	tbl, err := a.meta.get(ctx, db, "app", "l")
	if err != nil {
		t.Fatal(err)
	}
	m, err := tbl.mapColumns(cols("id", "v"), false)
	if err != nil {
		t.Fatal(err)
	}
	stmt, rest, err := a.precheck([]check{{t: tbl, m: m, before: row(vInt(1), vBytes("a"))}})
	if err != nil || len(rest) > 0 {
		t.Fatalf("precheck: %v, %d checks left", err, len(rest))
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, compoundOpen+compoundBegin+string(stmt)+"END"); err != nil {
		t.Fatal(err)
	}
	defer conn.ExecContext(ctx, "ROLLBACK")
	other, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := other.ExecContext(ctx, "SET SESSION innodb_lock_wait_timeout = 1"); err != nil {
		t.Fatal(err)
	}
	// An exclusive lock: a shared one (which the server takes for a
	// subquery in a stored program anyway) lets another reader lock the
	// row too, and two writers then deadlock instead of waiting.
	if _, err := other.ExecContext(ctx, "SELECT v FROM app.l WHERE id = 1 LOCK IN SHARE MODE"); !isErrNo(err, 1205) {
		t.Errorf("another session's shared lock of the checked row: %v, want a lock wait timeout", err)
	}
	if _, err := other.ExecContext(ctx, "UPDATE app.l SET v = 'x' WHERE id = 1"); !isErrNo(err, 1205) {
		t.Errorf("another session's UPDATE of the checked row: %v, want a lock wait timeout", err)
	}
	if _, err := other.ExecContext(ctx, "UPDATE app.l SET v = 'x' WHERE id = 2"); err != nil {
		t.Errorf("another session's UPDATE of another row: %v", err)
	}
	// A row not as its image says stops the statement with the conflict
	// signal.
	stmt, _, err = a.precheck([]check{{t: tbl, m: m, before: row(vInt(2), vBytes("b"))}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, compoundOpen+string(stmt)+"END"); !isConflictSignal(err) {
		t.Errorf("precheck of a changed row: %v, want the conflict signal", err)
	}
}
