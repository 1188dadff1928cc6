package extract

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/carbidedb/carbide/internal/testutil"
	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

// benchTransactions is how many small transactions BenchmarkExtract reads
// per iteration.
const benchTransactions = 20000

// BenchmarkExtract measures the extract-to-send rate: 20,000 one-row
// autocommit transactions (4 columns) already in the binlog, read from
// their start to the last, per iteration. tx/s is the figure to quote.
func BenchmarkExtract(b *testing.B) {
	srv, db := startDB(b, testutil.WithOptions("sync_binlog=0", "innodb_flush_log_at_trx_commit=0"))
	testutil.Exec(b, db, "CREATE DATABASE app")
	testutil.Exec(b, db, "CREATE TABLE app.t (id INT PRIMARY KEY, a INT, b VARCHAR(32), c DOUBLE)")
	x := newExtractor(b, srv, func(c *Config) { c.Logger = nil })
	from := currentPosition(b, x)

	const writers = 8
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < benchTransactions; i += writers {
				if _, err := db.Exec("INSERT INTO app.t VALUES (?, ?, ?, ?)", i, i*7, fmt.Sprintf("row %d", i), float64(i)/3); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if b.Failed() {
		return
	}

	b.ReportAllocs()
	b.ResetTimer()
	var elapsed time.Duration
	for range b.N {
		ctx, cancel := context.WithCancel(context.Background())
		n := 0
		var first, last time.Time
		err := x.Run(ctx, from, func(evs []*thlpb.Event) error {
			if n == 0 {
				first = time.Now()
			}
			n++
			if n == benchTransactions {
				last = time.Now()
				cancel()
			}
			return nil
		})
		cancel()
		if err != nil || n != benchTransactions {
			b.Fatalf("Run: %v after %d transactions", err, n)
		}
		elapsed += last.Sub(first)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N*benchTransactions)/elapsed.Seconds(), "tx/s")
	b.ReportMetric(0, "ns/op")
	runtime.KeepAlive(db)
}
