package tprovision

import (
	"bytes"
	"flag"
	"strings"
	"testing"

	"github.com/carbidedb/carbide/internal/testutil"
)

// effective lists every option tprovision carries out, by each of its
// names, with the tests that show it acting or a note saying where it acts
// when no unit test can (note: …; the rebuild itself runs in internal/e2e).
// TestEveryFlag fails for an option defined and not listed, so a new
// option must be wired or refused.
var effective = map[string]string{
	"s":       "TestOptions",
	"source":  "TestOptions",
	"m":       "TestOptions",
	"method":  "TestOptions",
	"t":       "note: BackupRequest.Threads of the physical copy (copy.go), refused with mysqldump: TestThreadsRefusedWithMysqldump",
	"threads": "note: as -t: TestThreadsRefusedWithMysqldump",
	"f":       "note: lets run rebuild this site's primary (run's primary check) and forces the shun (run.command)",
	"force":   "note: as -f",
}

// TestEveryFlag walks the options tprovision defines and checks that each
// is listed as acting, with its tests.
func TestEveryFlag(t *testing.T) {
	var o options
	defined := map[string]bool{}
	o.flagSet().VisitAll(func(fl *flag.Flag) {
		defined[fl.Name] = true
		names, ok := effective[fl.Name]
		switch {
		case !ok:
			t.Errorf("tprovision defines -%s, which is neither shown acting (effective) nor refused", fl.Name)
		case strings.HasPrefix(names, "note: "):
			if _, tests, ok := strings.Cut(names, ": Test"); ok {
				testutil.RequireTests(t, "effective -"+fl.Name, "Test"+tests)
			}
		default:
			testutil.RequireTests(t, "effective -"+fl.Name, names)
		}
	})
	for name := range effective {
		if !defined[name] {
			t.Errorf("effective lists -%s, which tprovision does not define", name)
		}
	}
}

// TestThreadsRefusedWithMysqldump: -t with mysqldump (the default) was
// ignored; it is refused before tprovision looks for its install, so
// nothing changes. With a physical method it is taken.
func TestThreadsRefusedWithMysqldump(t *testing.T) {
	for _, args := range [][]string{{"-s", "east1", "-t", "4"}, {"-s", "east1", "-m", "mysqldump", "--threads", "1"}} {
		var out, errOut bytes.Buffer
		code := Main(t.Context(), args, Env{Out: &out, Err: &errOut, Getenv: func(string) string { return "" }})
		want := "tprovision: -t is not used with -m mysqldump: mysqldump copies in one session; -t sets mariabackup's copy threads (-m mariabackup); run tprovision -h\n"
		if code != ExitUsage || errOut.String() != want {
			t.Errorf("%v: exit %d, %q; want %q", args, code, errOut.String(), want)
		}
	}
	o := options{source: "east1", method: "rsync", threads: 4, threadsSet: true}
	if err := o.check(nil); err != nil || o.method != MethodPhysical || o.threads != 4 {
		t.Errorf("-m rsync -t 4: %v, method %s, threads %d", err, o.method, o.threads)
	}
}
