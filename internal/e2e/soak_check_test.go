package e2e

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// The soak's queries and how an answer is judged: every query's answer
// through the connector is compared with the answer a direct connection
// got for the same text, as a digest of the rows as text (column count,
// then each value length-prefixed, NULL marked). The queries are
// deterministic, so the direct answer is read once per text, before any
// fault is made.

// answer is a result set's digest.
type answer struct {
	sum   [32]byte
	rows  int
	bytes int64
}

// soakQuery is a query with its direct answer.
type soakQuery struct {
	text string
	want answer
}

// querySet is the soak's queries by size class.
type querySet struct {
	small, medium, large, huge []soakQuery
	slow                       soakQuery // read with sleeps and pauses
}

// packetEdge is the largest MySQL packet payload: longer rows are split.
const packetEdge = 1<<24 - 1

// soakQueries lists the queries: one value of 1 byte to 64 MB (around
// the 16 MB packet edge: a row of one string of n bytes has a payload of
// n+4 below 16 MiB, n+9 from there, split into packets of packetEdge and
// one shorter, possibly empty), and rows from the Sequence engine.
func soakQueries() (small, medium, large, huge []string, slow string) {
	repeat := func(n int) string { return fmt.Sprintf("SELECT REPEAT('x', %d)", n) }
	seq := func(n, width int) string {
		return fmt.Sprintf("SELECT seq, REPEAT(CHAR(97 + seq %% 26), seq %% %d), MD5(seq) FROM seq_1_to_%d", width+1, n)
	}
	for _, n := range []int{1, 2, 3, 250, 251, 252, 1000, 4096, 16380, 16384, 65531, 65535, 65536, 100_000} {
		small = append(small, repeat(n))
	}
	for n := 1; n <= 200; n += 7 {
		small = append(small, seq(n, 40))
	}
	small = append(small, "SELECT 1", "SELECT NULL, '', 0", "SELECT CONNECTION_ID() = CONNECTION_ID()")
	for _, n := range []int{200_000, 500_000, 1 << 20} {
		medium = append(medium, repeat(n))
	}
	medium = append(medium, seq(1000, 300), seq(5000, 100))
	for _, n := range []int{4 << 20, packetEdge - 5, packetEdge - 4, packetEdge - 3, packetEdge + 1} {
		large = append(large, repeat(n))
	}
	large = append(large, seq(100_000, 60))
	for _, n := range []int{2*packetEdge - 9, 2*packetEdge - 8, 64 << 20} {
		huge = append(huge, repeat(n))
	}
	huge = append(huge, "SELECT seq, REPEAT('y', 1000) FROM seq_1_to_65536")
	return small, medium, large, huge, seq(16_000, 500)
}

// loadQueries reads every query's answer on the direct pool.
func loadQueries(t *testing.T, direct *sql.DB) *querySet {
	t.Helper()
	small, medium, large, huge, slow := soakQueries()
	qs := &querySet{}
	load := func(texts []string) []soakQuery {
		var out []soakQuery
		for _, q := range texts {
			a, err := run(context.Background(), direct, q, nil)
			if err != nil {
				t.Fatalf("%s on the direct connection: %v", q, err)
			}
			out = append(out, soakQuery{text: q, want: a})
		}
		return out
	}
	qs.small, qs.medium, qs.large, qs.huge = load(small), load(medium), load(large), load(huge)
	qs.slow = load([]string{slow})[0]
	return qs
}

// pick draws a query: mostly small, one in 50 up to 1 MB, one in 2,000
// up to 16 MB, one in 20,000 up to 64 MB (some 25 KB on average).
func (qs *querySet) pick(r *rand.Rand) soakQuery {
	switch n := r.IntN(20_000); {
	case n == 0:
		return qs.huge[r.IntN(len(qs.huge))]
	case n < 10:
		return qs.large[r.IntN(len(qs.large))]
	case n < 400:
		return qs.medium[r.IntN(len(qs.medium))]
	}
	return qs.small[r.IntN(len(qs.small))]
}

// querier is a pool or a single connection.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// run runs q and digests its rows; each is passed to row (may be nil),
// which can sleep (a slow reader) or end the read.
func run(ctx context.Context, db querier, q string, row func(n int) bool) (answer, error) {
	var a answer
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		return a, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return a, err
	}
	h := sha256.New()
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], uint64(len(cols)))
	h.Write(n[:])
	vals := make([]sql.RawBytes, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return a, err
		}
		for _, v := range vals {
			if v == nil {
				h.Write([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
				continue
			}
			binary.LittleEndian.PutUint64(n[:], uint64(len(v)))
			h.Write(n[:])
			h.Write(v)
			a.bytes += int64(len(v))
		}
		a.rows++
		if row != nil && !row(a.rows) {
			return a, errAborted
		}
	}
	if err := rows.Err(); err != nil {
		return a, err
	}
	if err := rows.Close(); err != nil {
		return a, err
	}
	copy(a.sum[:], h.Sum(nil))
	return a, nil
}

// garbledErr tells whether err is the driver finding bytes that are not
// the protocol: a connection that ends or an error the server sends is
// not, a packet out of sequence or malformed is (what lost or mixed bytes
// look like to a client).
func garbledErr(err error) bool {
	for _, e := range []error{mysql.ErrMalformPkt, mysql.ErrPktSync, mysql.ErrPktSyncMul, mysql.ErrBusyBuffer} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// errAborted is a read the client ended itself.
var errAborted = errors.New("the client stopped reading")

// tally is the soak's counts.
type tally struct {
	queries, ok, errors, bytes atomic.Int64
	wrong, truncated, garbled  atomic.Int64
	unresolved                 atomic.Int64
	slow, aborts, kills        atomic.Int64
	killErrors                 atomic.Int64

	mu      sync.Mutex
	samples []string // the first wrong, truncated or unresolved answers
}

// judge counts one answer to q got in took by the worker who; a wrong,
// truncated or garbled answer or one that took past limit is kept as a
// sample.
func (c *tally) judge(who string, q soakQuery, got answer, err error, took, limit time.Duration) {
	c.queries.Add(1)
	c.bytes.Add(got.bytes)
	var bad string
	switch {
	case errors.Is(err, context.DeadlineExceeded) || took > limit:
		c.unresolved.Add(1)
		bad = fmt.Sprintf("unresolved after %v (%v)", took.Round(time.Millisecond), err)
	case garbledErr(err):
		c.garbled.Add(1)
		bad = fmt.Sprintf("protocol error: %v", err)
	case err != nil:
		c.errors.Add(1)
		return
	case got == q.want:
		c.ok.Add(1)
		return
	case got.rows < q.want.rows || got.bytes < q.want.bytes:
		c.truncated.Add(1)
		bad = fmt.Sprintf("truncated: %d rows, %d bytes of %d rows, %d bytes", got.rows, got.bytes, q.want.rows, q.want.bytes)
	default:
		c.wrong.Add(1)
		bad = fmt.Sprintf("wrong: %d rows, %d bytes, want %d rows, %d bytes", got.rows, got.bytes, q.want.rows, q.want.bytes)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.samples) < 10 {
		c.samples = append(c.samples, who+": "+q.text[:min(len(q.text), 70)]+": "+bad)
	}
}

// logCounter is a slog.Handler that keeps the connector's warnings and
// the line that names its data path, and passes Info and above on.
type logCounter struct {
	next slog.Handler
	mu   sync.Mutex
	msgs []string
}

func (h *logCounter) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }

func (h *logCounter) Handle(ctx context.Context, r slog.Record) error {
	h.mu.Lock()
	h.msgs = append(h.msgs, r.Level.String()+" "+r.Message)
	h.mu.Unlock()
	return h.next.Handle(ctx, r)
}

func (h *logCounter) WithAttrs(a []slog.Attr) slog.Handler { return h }
func (h *logCounter) WithGroup(string) slog.Handler        { return h }

// count says how many kept lines contain s.
func (h *logCounter) count(s string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, m := range h.msgs {
		if strings.Contains(m, s) {
			n++
		}
	}
	return n
}
