package tprovision

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/carbidedb/carbide/internal/position"
)

func TestOptions(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string // the error, or the method run
	}{
		{[]string{"-s", "east1"}, MethodDump},
		{[]string{"-s", "east1", "-m", "xtrabackup"}, MethodPhysical},
		{[]string{"--source", "east1", "--method", "rsync", "--threads", "4"}, MethodPhysical},
		{[]string{"-s", "east1", "-m", "mariabackup", "-f"}, MethodPhysical},
		{[]string{}, "no source"},
		{[]string{"-s", "east1", "-m", "tar"}, `unknown method "tar"`},
		{[]string{"-s", "east1", "-t", "0"}, "threads must be 1 to 64"},
		{[]string{"-s", "east1", "now"}, `unexpected argument "now"`},
		{[]string{"-s"}, "flag needs an argument"},
		{[]string{"-x"}, "flag provided but not defined"},
	} {
		var out, errOut bytes.Buffer
		env := Env{Out: &out, Err: &errOut, Getenv: func(string) string { return "" }}
		code := Main(t.Context(), c.args, env)
		switch {
		case c.want == MethodDump || c.want == MethodPhysical:
			// Valid options get as far as looking for the install.
			if code != ExitFailed || !strings.Contains(errOut.String(), "no install to work on") {
				t.Errorf("%v: exit %d: %s", c.args, code, errOut.String())
			}
			o := options{source: "x", method: MethodDump, threads: 1}
			for i, a := range c.args {
				if (a == "-m" || a == "--method") && i+1 < len(c.args) {
					o.method = c.args[i+1]
				}
			}
			if err := o.check(nil); err != nil || o.method != c.want {
				t.Errorf("%v: method %s (%v), want %s", c.args, o.method, err, c.want)
			}
		default:
			if code != ExitUsage || !strings.Contains(errOut.String(), c.want) || strings.Count(errOut.String(), "\n") != 1 {
				t.Errorf("%v: exit %d, %q; want usage error saying %q", c.args, code, errOut.String(), c.want)
			}
		}
	}
}

func TestPositions(t *testing.T) {
	if p, ok := parseChangeMaster([]byte("-- CHANGE MASTER TO MASTER_LOG_FILE='mysql-bin.000003', MASTER_LOG_POS=1234;\n")); !ok || p != "mysql-bin.000003:0000000000001234" {
		t.Errorf("change master: %q %v", p, ok)
	}
	for _, bad := range []string{"-- CHANGE MASTER TO MASTER_LOG_FILE='', MASTER_LOG_POS=1;", "-- CHANGE MASTER TO MASTER_LOG_FILE='f', MASTER_LOG_POS=x;"} {
		if p, ok := parseChangeMaster([]byte(bad)); ok {
			t.Errorf("%q parsed as %q", bad, p)
		}
	}
	if p, err := parseBinlogInfo([]byte("mysql-bin.000001\t82929\t0-101-353\n")); err != nil || p != "mysql-bin.000001:0000000000082929" {
		t.Errorf("binlog info: %q %v", p, err)
	}
	for _, bad := range []string{"", "mysql-bin.000001", "mysql-bin.000001 x", "a b c d", "f:1 2"} {
		if p, err := parseBinlogInfo([]byte(bad)); err == nil {
			t.Errorf("%q parsed as %q", bad, p)
		}
	}
}

// FuzzPositions: whatever a dump header or a backup's binlog info holds,
// the parsers either refuse it or give a position the replicator parses.
func FuzzPositions(f *testing.F) {
	f.Add([]byte("-- CHANGE MASTER TO MASTER_LOG_FILE='mysql-bin.000003', MASTER_LOG_POS=1234;"))
	f.Add([]byte("mysql-bin.000001\t82929\t0-101-353\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if p, ok := parseChangeMaster(b); ok {
			if _, err := position.Parse(p); err != nil {
				t.Errorf("change master %q gave %q: %v", b, p, err)
			}
		}
		if p, err := parseBinlogInfo(b); err == nil {
			if _, err := position.Parse(p); err != nil {
				t.Errorf("binlog info %q gave %q: %v", b, p, err)
			}
		}
	})
}

func TestProgress(t *testing.T) {
	now := time.Unix(0, 0)
	clock := func() time.Time { return now }
	var out bytes.Buffer
	p := newProgress(&out, false, "copied", 100<<20, clock)
	now = now.Add(11 * time.Second)
	p.add(50 << 20)
	if got := out.String(); !strings.Contains(got, "50.0 MiB / 100.0 MiB  50%") || !strings.Contains(got, "ETA 11s") {
		t.Errorf("progress line: %q", got)
	}
	now = now.Add(11 * time.Second)
	p.add(60 << 20) // beyond the estimate: never claims done
	if got := out.String(); !strings.Contains(got, " 99%") {
		t.Errorf("progress beyond the estimate: %q", got)
	}
	p.finish()
	if got := out.String(); !strings.Contains(got, "copied 110.0 MiB in 22.0 s, 5.0 MiB/s") {
		t.Errorf("summary: %q", got)
	}
}
