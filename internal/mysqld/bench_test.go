package mysqld_test

import (
	"context"
	"testing"

	"github.com/carbidedb/carbide/internal/mysqld"
	"github.com/carbidedb/carbide/internal/testutil"
)

// BenchmarkStart measures starting a fresh mariadbd until it answers and
// its users exist: from the shared template datadir (what tests and the
// harness do) against the baseline of running mariadb-install-db for each
// instance.
func BenchmarkStart(b *testing.B) {
	testutil.RequireDB(b)
	tmpl := testutil.Template(b)
	for _, bc := range []struct {
		name string
		tmpl *mysqld.Template
	}{{"template-copy", tmpl}, {"install-db-baseline", nil}} {
		b.Run(bc.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				cfg := mysqld.Config{
					Dir:      b.TempDir(),
					Address:  testutil.FreeAddress(13306),
					ServerID: uint32(i + 1),
					Users:    testutil.SampleUsers,
				}
				srv, err := mysqld.Start(context.Background(), cfg, bc.tmpl)
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if err := srv.Stop(context.Background()); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
}
