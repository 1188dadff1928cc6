package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// dmlDuration is how long the random DML runs: CHAOS_MINUTES (default 2)
// under make chaos, 20 s in make test.
func dmlDuration() time.Duration {
	if os.Getenv("CARBIDE_CHAOS") == "" {
		return 20 * time.Second
	}
	m, err := strconv.ParseFloat(os.Getenv("CHAOS_MINUTES"), 64)
	if err != nil || m <= 0 {
		m = 2
	}
	return time.Duration(m * float64(time.Minute))
}

// dmlLimits are the generator's bounds: make test stays small (20 s on
// two cores); make chaos goes to 100k-row transactions and 64 MB rows.
type dmlLimits struct {
	maxRows  int // rows a transaction touches
	maxBlob  int // bytes of one row's blob
	bigEvery int // one transaction in bigEvery is a big one
}

func limits() dmlLimits {
	if os.Getenv("CARBIDE_CHAOS") != "" {
		return dmlLimits{maxRows: 100_000, maxBlob: 64 << 20, bigEvery: 40}
	}
	return dmlLimits{maxRows: 300, maxBlob: 64 << 10, bigEvery: 10}
}

// dmlSchema is the generator's tables: both sites write every table, each
// in its own key range (site base + n), so active/active never conflicts.
var dmlSchema = []string{
	"CREATE DATABASE conf_dml",
	`CREATE TABLE conf_dml.types (
		id BIGINT PRIMARY KEY, ti TINYINT, si SMALLINT UNSIGNED, mi MEDIUMINT, i INT, bu BIGINT UNSIGNED,
		dc DECIMAL(65,30), f FLOAT, dbl DOUBLE, b64 BIT(64), b1 BIT(1),
		c CHAR(10), vc VARCHAR(300) CHARACTER SET utf8mb4, vb VARBINARY(64), tx TEXT CHARACTER SET utf8mb4, bl BLOB,
		j JSON, d DATE, dt DATETIME(6), ts TIMESTAMP(6) NULL, tm TIME(3), y YEAR,
		e ENUM('a','b','c'), st SET('x','y','z'), ip INET6, u UUID, g POINT NULL)`,
	"CREATE TABLE conf_dml.blobs (id BIGINT PRIMARY KEY, note VARCHAR(40), b LONGBLOB)",
	"CREATE TABLE conf_dml.nokey (site CHAR(4) NOT NULL, n BIGINT NOT NULL, v VARCHAR(40))",
	"CREATE TABLE conf_dml.ledger (site CHAR(4) NOT NULL, txn BIGINT NOT NULL)",
}

// randomDML runs the seeded generator on east1 and west1 at once for d,
// then checks conformance and that each site's committed transactions are
// in every host's ledger exactly once.
func (s *site) randomDML(t *testing.T, d time.Duration) {
	seed := uint64(time.Now().UnixNano())
	if v, err := strconv.ParseUint(os.Getenv("CONFORMANCE_SEED"), 10, 64); err == nil {
		seed = v
	}
	t.Logf("random DML for %s with CONFORMANCE_SEED=%d", d, seed)
	lim := limits()
	s.exec("west1", dmlSchema...)
	if lim.maxBlob > 16<<20 {
		// Rows up to 64 MB: every server takes packets up to 1 GB, and the
		// replicators reconnect to pick it up.
		for _, h := range allHosts {
			s.exec(h, "SET GLOBAL max_allowed_packet = 1073741824")
		}
		for _, h := range allHosts {
			s.tool(h, "continuent", "trepctl", "offline")
			s.tool(h, "continuent", "trepctl", "online")
			s.tool(h, "replicator", "mm_trepctl", "offline")
			s.tool(h, "replicator", "mm_trepctl", "online")
		}
	}
	if err := s.conforms(60*time.Second, nil); err != nil {
		t.Fatalf("before the random DML: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	gens := []*dmlGen{
		{site: "east", base: 1_000_000_000_000, rng: rand.New(rand.NewPCG(seed, 1)), lim: lim},
		{site: "west", base: 2_000_000_000_000, rng: rand.New(rand.NewPCG(seed, 2)), lim: lim},
	}
	var wg sync.WaitGroup
	for _, g := range gens {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g.run(ctx, s.db(g.site+"1"))
		}()
	}
	wg.Wait()
	for _, g := range gens {
		t.Logf("%s1: %d transactions committed (%d rows, largest %d rows, largest blob %d bytes), %d failed: %v",
			g.site, g.committed, g.rows, g.largest, g.largestBlob, g.failed, g.errs)
		if g.committed == 0 {
			t.Errorf("%s1 committed no transaction: %v", g.site, g.lastErr)
		}
	}
	if err := s.conforms(dmlSettle(), nil); err != nil {
		t.Fatalf("after the random DML: %v", err)
	}
	for _, h := range allHosts {
		for _, g := range gens {
			var n, distinct int64
			if err := s.db(h).QueryRow("SELECT COUNT(*), COUNT(DISTINCT txn) FROM conf_dml.ledger WHERE site = ?", g.site).Scan(&n, &distinct); err != nil {
				t.Fatalf("%s: read the ledger: %v", h, err)
			}
			if n != g.committed || distinct != n {
				t.Errorf("%s holds %d ledger rows (%d distinct) of %s1; %d transactions were committed", h, n, distinct, g.site, g.committed)
			}
		}
	}
}

// dmlSettle is how long replication may take to catch up after the
// generator: long transactions and rows under make chaos.
func dmlSettle() time.Duration {
	if os.Getenv("CARBIDE_CHAOS") != "" {
		return 10 * time.Minute
	}
	return 90 * time.Second
}

// A dmlGen writes random transactions of one site.
type dmlGen struct {
	site string
	base int64 // first id of the site's key range
	next int64 // ids base..base+next-1 have been inserted (some deleted since)
	rng  *rand.Rand
	lim  dmlLimits

	committed, failed, rows int64
	largest, largestBlob    int
	lastErr                 error
	errs                    map[string]int // failed transactions by the start of their error
}

func (g *dmlGen) run(ctx context.Context, db *sql.DB) {
	for txn := int64(1); ctx.Err() == nil; txn++ {
		n := g.size()
		err := g.transaction(ctx, db, txn, n)
		if err != nil {
			if ctx.Err() == nil {
				g.failed++
				g.lastErr = err
				if g.errs == nil {
					g.errs = map[string]int{}
				}
				msg := err.Error()
				g.errs[msg[:min(len(msg), 60)]]++
			}
			continue
		}
		g.committed++
		g.rows += int64(n)
		g.largest = max(g.largest, n)
	}
}

// size picks the rows of a transaction: mostly a few, now and then up to
// maxRows, log-uniformly.
func (g *dmlGen) size() int {
	hi := 20
	if g.rng.IntN(g.lim.bigEvery) == 0 {
		hi = g.lim.maxRows
	}
	return max(1, int(float64(hi)*pow(g.rng.Float64(), 3)))
}

func pow(x float64, n int) float64 {
	r := 1.0
	for range n {
		r *= x
	}
	return r
}

// transaction runs one transaction of n rows mixing INSERT, UPDATE,
// DELETE and REPLACE on the site's key range, and records it in the
// ledger.
func (g *dmlGen) transaction(ctx context.Context, db *sql.DB, txn int64, n int) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	next := g.next
	for left := n; left > 0; {
		k := min(left, 1+g.rng.IntN(500))
		left -= k
		switch op := g.rng.IntN(10); {
		case op < 4 || next == 0:
			if err := g.insert(ctx, tx, "INSERT", next, k); err != nil {
				return err
			}
			next += int64(k)
		case op < 6:
			lo := g.base + g.rng.Int64N(next)
			if _, err := tx.ExecContext(ctx, `UPDATE conf_dml.types SET i = i + 1, dc = dc + 0.000000000000000000000000000001,
				b64 = b64 ^ 1, vc = CONCAT(LEFT(vc, 200), '→'), j = JSON_SET(j, '$.u', ?), dt = dt + INTERVAL 1 SECOND,
				st = IF(st = '', 'x', ''), ip = NULL WHERE id BETWEEN ? AND ?`, g.rng.Int64(), lo, lo+int64(k)); err != nil {
				return err
			}
		case op < 7:
			lo := g.base + g.rng.Int64N(next)
			if _, err := tx.ExecContext(ctx, "DELETE FROM conf_dml.types WHERE id BETWEEN ? AND ?", lo, lo+int64(k)); err != nil {
				return err
			}
		case op < 9:
			// REPLACE over a stretch of existing (or deleted) ids.
			from := g.rng.Int64N(next)
			if err := g.insert(ctx, tx, "REPLACE", from, min(k, int(next-from))); err != nil {
				return err
			}
		default:
			if err := g.blob(ctx, tx, next); err != nil {
				return err
			}
		}
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO conf_dml.nokey VALUES (?, ?, ?), (?, ?, ?)", g.site, txn, "dup", g.site, txn, "dup"); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO conf_dml.ledger VALUES (?, ?)", g.site, txn); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	g.next = next
	return nil
}

var typeCols = "id, ti, si, mi, i, bu, dc, f, dbl, b64, b1, c, vc, vb, tx, bl, j, d, dt, ts, tm, y, e, st, ip, u, g"

// insert writes k rows of every type from id base+from on, with verb
// INSERT or REPLACE.
func (g *dmlGen) insert(ctx context.Context, tx *sql.Tx, verb string, from int64, k int) error {
	if k <= 0 {
		return nil
	}
	row := "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ST_GeomFromText(?))"
	var q strings.Builder
	q.WriteString(verb + " INTO conf_dml.types (" + typeCols + ") VALUES ")
	args := make([]any, 0, k*27)
	for r := range k {
		if r > 0 {
			q.WriteByte(',')
		}
		q.WriteString(row)
		args = append(args, g.values(g.base+from+int64(r))...)
	}
	_, err := tx.ExecContext(ctx, q.String(), args...)
	return err
}

var words = []string{"alpha", "Grüße", "日本語", "😀 emoji", "naïve", "", " ", "quote'd", `back\slash`, "NULL", "ǅ", "Ελληνικά"}

// values are one random row of conf_dml.types; a field is NULL now and then.
func (g *dmlGen) values(id int64) []any {
	r := g.rng
	null := func(v any) any {
		if r.IntN(12) == 0 {
			return nil
		}
		return v
	}
	word := func() string { return words[r.IntN(len(words))] }
	dec := fmt.Sprintf("%s%d.%030d", []string{"", "-"}[r.IntN(2)], r.Int64N(1<<62), r.Int64N(1<<62))
	vb := make([]byte, r.IntN(64))
	for i := range vb {
		vb[i] = byte(r.IntN(256))
	}
	bl := make([]byte, r.IntN(300))
	for i := range bl {
		bl[i] = byte(r.IntN(256))
	}
	j := fmt.Sprintf(`{"n": %d, "s": %q, "a": [1, 2.5, null, true], "o": {"k": %q}}`, r.IntN(1000), word(), word())
	return []any{
		id, null(r.IntN(256) - 128), null(r.IntN(65536)), null(r.IntN(1<<23) - 1<<22), null(r.Int32()), null(r.Uint64()),
		null(dec), null(r.Float32()*1e6 - 5e5), null(r.NormFloat64() * 1e12), null(r.Uint64()), null(r.IntN(2)),
		null(strconv.Itoa(r.IntN(1e9))), null(strings.Repeat(word(), 1+r.IntN(10))), null(vb),
		null(strings.Repeat(word()+" ", r.IntN(20))), null(bl),
		null(j), null(fmt.Sprintf("%04d-%02d-%02d", 1000+r.IntN(8999), 1+r.IntN(12), 1+r.IntN(28))),
		null(fmt.Sprintf("%04d-%02d-%02d %02d:%02d:%02d.%06d", 1000+r.IntN(8999), 1+r.IntN(12), 1+r.IntN(28), r.IntN(24), r.IntN(60), r.IntN(60), r.IntN(1e6))),
		null(fmt.Sprintf("20%02d-%02d-%02d %02d:%02d:%02d.%06d", 1+r.IntN(36), 1+r.IntN(12), 1+r.IntN(28), r.IntN(24), r.IntN(60), r.IntN(60), r.IntN(1e6))),
		null(fmt.Sprintf("%d:%02d:%02d.%03d", r.IntN(838)-419, r.IntN(60), r.IntN(60), r.IntN(1000))), null(1901 + r.IntN(254)),
		null([]string{"a", "b", "c"}[r.IntN(3)]), null([]string{"", "x", "y,z", "x,y,z"}[r.IntN(4)]),
		null(fmt.Sprintf("2001:db8::%x", r.IntN(65536))), null(fmt.Sprintf("%08x-%04x-4%03x-%x%03x-%012x", r.Uint32(), r.IntN(65536), r.IntN(4096), 8+r.IntN(4), r.IntN(4096), r.Int64N(1<<48))),
		null(fmt.Sprintf("POINT(%d %d)", r.IntN(360)-180, r.IntN(180)-90)),
	}
}

// blob writes one row of conf_dml.blobs, mostly small, now and then up to
// maxBlob, built by the server (no client packet limit on the way in).
func (g *dmlGen) blob(ctx context.Context, tx *sql.Tx, next int64) error {
	size := 1 + g.rng.IntN(4096)
	if g.rng.IntN(g.lim.bigEvery) == 0 {
		size = 1 + int(float64(g.lim.maxBlob)*pow(g.rng.Float64(), 2))
	}
	g.largestBlob = max(g.largestBlob, size)
	id := g.base + g.rng.Int64N(next+1)
	_, err := tx.ExecContext(ctx, "REPLACE INTO conf_dml.blobs VALUES (?, ?, LEFT(REPEAT(UNHEX(SHA2(?, 256)), ? DIV 32 + 1), ?))",
		id, fmt.Sprintf("%s %d bytes", g.site, size), strconv.FormatUint(g.rng.Uint64(), 10), size, size)
	return err
}
