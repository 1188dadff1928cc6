package thlcmd

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/carbidedb/carbide/internal/config"
	"github.com/carbidedb/carbide/internal/install"
	"github.com/carbidedb/carbide/internal/testutil"
	"github.com/carbidedb/carbide/replicator/thl"
	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

var t0 = time.Date(2025, 1, 2, 15, 31, 31, 0, time.UTC)

func val(v any) *thlpb.Value {
	switch x := v.(type) {
	case nil:
		return &thlpb.Value{Value: &thlpb.Value_Null{Null: true}}
	case int:
		return &thlpb.Value{Value: &thlpb.Value_Int{Int: int64(x)}}
	case string:
		return &thlpb.Value{Value: &thlpb.Value_Bytes{Bytes: []byte(x)}}
	case []byte:
		return &thlpb.Value{Value: &thlpb.Value_Bytes{Bytes: x}}
	case float64:
		return &thlpb.Value{Value: &thlpb.Value_Double{Double: x}}
	}
	panic(v)
}

func header(seqno uint64, fragno uint32, last bool) *thlpb.Event {
	return &thlpb.Event{
		Seqno: seqno, Fragno: fragno, LastFrag: last, Epoch: 0,
		EventId:            "mysql-bin.000003:0000000000001234;0-101-5",
		SourceId:           "east1",
		OriginService:      "east",
		Shard:              "app",
		SourceCommitTimeUs: t0.Add(time.Duration(seqno) * time.Second).UnixMicro(),
	}
}

func rows(action thlpb.RowChange_Action, rs ...*thlpb.Row) *thlpb.Change {
	return &thlpb.Change{Change: &thlpb.Change_Rows{Rows: &thlpb.RowChange{
		Schema: "app", Table: "t", Action: action,
		Columns: []*thlpb.Column{{Name: "id", Key: true}, {Name: "v"}},
		Rows:    rs,
	}}}
}

// sample returns the test log: an insert, a DDL statement, an update, a
// delete with odd values, a fragmented transaction, a heartbeat, and
// filler up to seqno 29.
func sample() []*thlpb.Event {
	var evs []*thlpb.Event
	ins := header(0, 0, true)
	ins.Changes = []*thlpb.Change{rows(thlpb.RowChange_INSERT, &thlpb.Row{After: []*thlpb.Value{val(1), val("hello")}})}
	ddl := header(1, 0, true)
	ddl.Changes = []*thlpb.Change{{Change: &thlpb.Change_Statement{Statement: &thlpb.Statement{
		Schema: "app", Sql: "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(10))",
		Session: map[string]string{"##charset": "UTF-8", "autocommit": "1", "foreign_key_checks": "1"},
	}}}}
	upd := header(2, 0, true)
	upd.Changes = []*thlpb.Change{rows(thlpb.RowChange_UPDATE, &thlpb.Row{
		Before: []*thlpb.Value{val(1), val("hello")},
		After:  []*thlpb.Value{val(1), val("world")},
	})}
	del := header(3, 0, true)
	del.Changes = []*thlpb.Change{rows(thlpb.RowChange_DELETE,
		&thlpb.Row{Before: []*thlpb.Value{val(1), val([]byte{0xff, 0x00, 0x41})}},
		&thlpb.Row{Before: []*thlpb.Value{val(2), val(nil)}},
	)}
	evs = append(evs, ins, ddl, upd, del)
	for f := range 3 {
		ev := header(4, uint32(f), f == 2)
		ev.Changes = []*thlpb.Change{rows(thlpb.RowChange_INSERT, &thlpb.Row{After: []*thlpb.Value{val(10 + f), val(2.5)}})}
		evs = append(evs, ev)
	}
	hb := header(5, 0, true)
	hb.Heartbeat = "NONE"
	hb.Shard = "tungsten_east"
	evs = append(evs, hb)
	for q := uint64(6); q < 30; q++ {
		ev := header(q, 0, true)
		if q == 6 {
			ev.After = []*thlpb.After{{Service: "west", Seqno: 41}}
		}
		ev.Changes = []*thlpb.Change{rows(thlpb.RowChange_INSERT, &thlpb.Row{After: []*thlpb.Value{val(int(q)), val(strings.Repeat("z", 200))}})}
		evs = append(evs, ev)
	}
	return evs
}

// newStore writes sample() into a store in a new directory.
func newStore(t *testing.T) (string, []*thlpb.Event) {
	t.Helper()
	dir := t.TempDir()
	cfg := thl.DefaultConfig(dir)
	cfg.SegmentSize = 2 << 10
	cfg.IndexInterval = 512
	cfg.Logger = testutil.Logger(t)
	s, err := thl.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	evs := sample()
	if err := s.Append(evs...); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return dir, evs
}

// run runs thl with args and returns its exit code, stdout and stderr.
func run(t *testing.T, env Env, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut strings.Builder
	env.Out, env.Err = &out, &errOut
	if env.Location == nil {
		env.Location = time.UTC
	}
	code := Main(context.Background(), args, env)
	return code, out.String(), errOut.String()
}

func TestListLayout(t *testing.T) {
	dir, _ := newStore(t)
	code, out, errOut := run(t, Env{}, "-dir", dir, "list", "-high", "3")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	want := `SEQ# = 0 / FRAG# = 0 (last frag)
- FILE = thl.data.0000000001
- TIME = 2025-01-02 15:31:31.0
- EPOCH# = 0
- EVENTID = mysql-bin.000003:0000000000001234;0-101-5
- SOURCEID = east1
- METADATA = [service=east;shard=app]
- TYPE = com.continuent.tungsten.replicator.event.ReplDBMSEvent
- SQL(0) =
 - ACTION = INSERT
 - SCHEMA = app
 - TABLE = t
 - ROW# = 0
  - COL(1: id) = 1
  - COL(2: v) = hello
SEQ# = 1 / FRAG# = 0 (last frag)
- FILE = thl.data.0000000001
- TIME = 2025-01-02 15:31:32.0
- EPOCH# = 0
- EVENTID = mysql-bin.000003:0000000000001234;0-101-5
- SOURCEID = east1
- METADATA = [service=east;shard=app]
- TYPE = com.continuent.tungsten.replicator.event.ReplDBMSEvent
- OPTIONS = [##charset = UTF-8, autocommit = 1, foreign_key_checks = 1]
- SCHEMA = app
- SQL(0) = CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(10))
SEQ# = 2 / FRAG# = 0 (last frag)
- FILE = thl.data.0000000001
- TIME = 2025-01-02 15:31:33.0
- EPOCH# = 0
- EVENTID = mysql-bin.000003:0000000000001234;0-101-5
- SOURCEID = east1
- METADATA = [service=east;shard=app]
- TYPE = com.continuent.tungsten.replicator.event.ReplDBMSEvent
- SQL(0) =
 - ACTION = UPDATE
 - SCHEMA = app
 - TABLE = t
 - ROW# = 0
  - COL(1: id) = 1
  - COL(2: v) = world
  - KEY(1: id) = 1
  - KEY(2: v) = hello
SEQ# = 3 / FRAG# = 0 (last frag)
- FILE = thl.data.0000000001
- TIME = 2025-01-02 15:31:34.0
- EPOCH# = 0
- EVENTID = mysql-bin.000003:0000000000001234;0-101-5
- SOURCEID = east1
- METADATA = [service=east;shard=app]
- TYPE = com.continuent.tungsten.replicator.event.ReplDBMSEvent
- SQL(0) =
 - ACTION = DELETE
 - SCHEMA = app
 - TABLE = t
 - ROW# = 0
  - KEY(1: id) = 1
  - KEY(2: v) = 0xFF0041
 - ROW# = 1
  - KEY(1: id) = 2
  - KEY(2: v) = NULL
`
	if out != want {
		t.Fatalf("list output:\n%s\nwant:\n%s", out, want)
	}
}

// seqnos returns the "SEQ# = n / FRAG# = f" lines of list output.
func seqnos(out string) []string {
	var s []string
	for line := range strings.Lines(out) {
		if strings.HasPrefix(line, "SEQ# = ") {
			s = append(s, strings.TrimSpace(strings.TrimPrefix(line, "SEQ# = ")))
		}
	}
	return s
}

func TestListRangesAndOptions(t *testing.T) {
	dir, evs := newStore(t)
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"-low", "4", "-high", "5"}, []string{"4 / FRAG# = 0", "4 / FRAG# = 1", "4 / FRAG# = 2 (last frag)", "5 / FRAG# = 0 (last frag)"}},
		{[]string{"-seqno", "4"}, []string{"4 / FRAG# = 0", "4 / FRAG# = 1", "4 / FRAG# = 2 (last frag)"}},
		{[]string{"-low", "28"}, []string{"28 / FRAG# = 0 (last frag)", "29 / FRAG# = 0 (last frag)"}},
		{[]string{"-low", "40"}, nil},
	} {
		code, out, errOut := run(t, Env{}, append([]string{"-dir", dir, "list"}, tc.args...)...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", tc.args, code, errOut)
		}
		if got := seqnos(out); strings.Join(got, "|") != strings.Join(tc.want, "|") {
			t.Errorf("%v: %q, want %q", tc.args, got, tc.want)
		}
	}
	// All of it: every event, in files after the first.
	_, out, _ := run(t, Env{}, "list", "-dir", dir)
	if n := len(seqnos(out)); n != len(evs) {
		t.Fatalf("list printed %d events, want %d", n, len(evs))
	}
	if !strings.Contains(out, "- FILE = thl.data.0000000002") || !strings.Contains(out, "heartbeat=NONE]") {
		t.Fatal("list shows no second file or no heartbeat")
	}
	if !strings.Contains(out, "shard=app;after=west:41]") {
		t.Fatal("list does not show what a transaction's source had applied of another stream")
	}
	// Headers only.
	_, out, _ = run(t, Env{}, "-dir", dir, "list", "-headers", "-seqno", "2")
	if strings.Contains(out, "SQL(") || !strings.Contains(out, "- TYPE = ") {
		t.Fatalf("-headers printed:\n%s", out)
	}
	// JSON: one event per line, the events themselves.
	code, out, _ := run(t, Env{}, "-dir", dir, "list", "-json")
	if code != 0 {
		t.Fatal(code)
	}
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	i := 0
	for ; sc.Scan(); i++ {
		var ev thlpb.Event
		if err := protojson.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("line %d: %v", i, err)
		}
		if !proto.Equal(&ev, evs[i]) {
			t.Fatalf("line %d is not event %d", i, i)
		}
	}
	if i != len(evs) {
		t.Fatalf("%d JSON lines, want %d", i, len(evs))
	}
	// Errors.
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"-seqno", "99"}, 1, "thl: seqno 99 is not in the log, which holds seqno 0 to 29\n"},
		{[]string{"-seqno", "1", "-low", "1"}, 2, "thl: list: give -seqno, or -low and -high, not both\n"},
		{[]string{"-low", "5", "-high", "2"}, 2, "thl: list: -low 5 is above -high 2\n"},
		{[]string{"-bogus"}, 2, "thl: list: -bogus is not an option of list\n"},
	} {
		code, _, errOut := run(t, Env{}, append([]string{"-dir", dir, "list"}, tc.args...)...)
		if code != tc.code || !strings.HasPrefix(errOut, tc.msg) {
			t.Errorf("%v: exit %d, %q; want %d, %q", tc.args, code, errOut, tc.code, tc.msg)
		}
	}
}

func TestInfoAndIndex(t *testing.T) {
	dir, _ := newStore(t)
	code, out, errOut := run(t, Env{}, "-dir", dir, "info")
	if code != 0 {
		t.Fatal(errOut)
	}
	for _, want := range []string{"log directory = " + dir + "\n", "min seq# = 0\n", "max seq# = 29\n", "events = 30\n",
		"oldest event = 0 (2025-01-02 15:31:31.0)\n", "newest event = 29 (2025-01-02 15:32:00.0)\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("info lacks %q:\n%s", want, out)
		}
	}
	code, out, errOut = run(t, Env{}, "-dir", dir, "index")
	if code != 0 {
		t.Fatal(errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	files, _ := filepath.Glob(filepath.Join(dir, "thl.data.*"))
	if len(lines) != len(files)+1 || !strings.HasPrefix(lines[1], "thl.data.0000000001  0..") || !strings.Contains(lines[len(lines)-1], "active") {
		t.Fatalf("index:\n%s", out)
	}
	// An empty store.
	empty := t.TempDir()
	code, out, _ = run(t, Env{}, "-dir", empty, "info")
	if code != 0 || !strings.Contains(out, "max seq# = -1") {
		t.Fatalf("info of an empty store: %d\n%s", code, out)
	}
	code, _, errOut = run(t, Env{}, "-dir", filepath.Join(empty, "none"), "info")
	if code != 1 || !strings.Contains(errOut, "no THL store at") {
		t.Fatalf("info of a missing store: %d %s", code, errOut)
	}
}

func TestWhichStore(t *testing.T) {
	home := t.TempDir()
	dir, _ := newStore(t)
	// Put the store where the install's service "east" has it.
	if err := os.MkdirAll(filepath.Join(home, "thl"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(dir, thl.DirFor(home, "east")); err != nil {
		t.Fatal(err)
	}
	env := func(services ...string) Env {
		return Env{
			Getenv:   func(k string) string { return map[string]string{"CARBIDE_HOME": home}[k] },
			Services: func(string) ([]string, error) { return services, nil },
		}
	}
	if code, out, errOut := run(t, env("east"), "info"); code != 0 || !strings.Contains(out, "max seq# = 29") {
		t.Fatalf("one service: %d %s %s", code, out, errOut)
	}
	if code, _, errOut := run(t, env("east", "west"), "info"); code != 1 ||
		errOut != "thl: the install at "+home+" replicates several services (east, west); choose one with -service\n" {
		t.Fatalf("two services: %d %q", code, errOut)
	}
	if code, out, _ := run(t, env("east", "west"), "-service", "east", "info"); code != 0 || !strings.Contains(out, "max seq# = 29") {
		t.Fatalf("-service east: %d", code)
	}
	if code, out, _ := run(t, env("east", "west"), "list", "-service", "east", "-seqno", "1"); code != 0 || len(seqnos(out)) != 1 {
		t.Fatalf("-service after the command: %d", code)
	}
	if code, _, errOut := run(t, env("east", "west"), "-service", "north", "info"); code != 1 || !strings.Contains(errOut, "does not replicate service north (services: east, west)") {
		t.Fatalf("unknown service: %d %q", code, errOut)
	}
	if code, _, errOut := run(t, Env{}, "info"); code != 2 || !strings.Contains(errOut, "CARBIDE_HOME is not set") {
		t.Fatalf("no install: %d %q", code, errOut)
	}
	if code, _, _ := run(t, Env{}, "frobnicate"); code != 2 {
		t.Fatalf("unknown command: %d", code)
	}
	if code, out, _ := run(t, Env{}, "help"); code != 0 || !strings.Contains(out, "usage: thl") {
		t.Fatalf("help: %d", code)
	}
}

func TestWhichStoreFromARealInstall(t *testing.T) {
	root := t.TempDir()
	data, err := os.ReadFile("../../../examples/msaa.ini")
	if err != nil {
		t.Fatal(err)
	}
	extra := "\n[hosts]\neast1=127.0.1.1\n\n[sandbox]\nroot=" + root + "\n"
	cfg, err := config.Parse(config.Source{Name: "msaa.ini", Data: append(data, extra...)})
	if err != nil {
		t.Fatal(err)
	}
	staging := t.TempDir()
	os.MkdirAll(filepath.Join(staging, "bin"), 0o755)
	for _, p := range install.Programs(config.ClusterInstall) {
		os.WriteFile(filepath.Join(staging, "bin", p), []byte("#!/bin/sh\n"), 0o755)
	}
	done, err := install.Install(cfg, "east1", install.Options{Staging: staging, INI: []string{"/x/tungsten.ini"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range done {
		services, err := InstallServices(in.Dir)
		if err != nil || len(services) == 0 {
			t.Fatalf("%s: services %v, %v", in.Dir, services, err)
		}
		dir, _ := newStore(t)
		os.MkdirAll(filepath.Join(in.Dir, "thl"), 0o755)
		if err := os.Rename(dir, thl.DirFor(in.Dir, services[0])); err != nil {
			t.Fatal(err)
		}
		env := Env{Getenv: func(k string) string { return map[string]string{"CARBIDE_HOME": in.Dir}[k] }}
		args := []string{"info"}
		if len(services) > 1 {
			args = []string{"-service", services[0], "info"}
		}
		if code, out, errOut := run(t, env, args...); code != 0 || !strings.Contains(out, thl.DirFor(in.Dir, services[0])) {
			t.Fatalf("%s (services %v): %d %s %s", in.Dir, services, code, out, errOut)
		}
	}
}

func TestPurge(t *testing.T) {
	dir, evs := newStore(t)
	files, _ := filepath.Glob(filepath.Join(dir, "thl.data.*"))
	if len(files) < 3 {
		t.Fatalf("%d files; want several", len(files))
	}
	// Declined: nothing happens.
	code, out, _ := run(t, Env{In: strings.NewReader("n\n")}, "-dir", dir, "purge", "-high", "20")
	if code != 1 || !strings.Contains(out, "Do you really want to delete these events [y/N]?") || !strings.Contains(out, "Nothing deleted.") {
		t.Fatalf("declined purge: %d\n%s", code, out)
	}
	if now, _ := filepath.Glob(filepath.Join(dir, "thl.data.*")); len(now) != len(files) {
		t.Fatal("a declined purge deleted files")
	}
	// Confirmed: whole files from the start.
	code, out, errOut := run(t, Env{In: strings.NewReader("y\n")}, "-dir", dir, "purge", "-high", "20")
	if code != 0 || !strings.Contains(out, "WARNING: this deletes seqno 0 to ") {
		t.Fatalf("purge -high: %d\n%s%s", code, out, errOut)
	}
	_, out, _ = run(t, Env{}, "-dir", dir, "info")
	if strings.Contains(out, "min seq# = 0\n") || !strings.Contains(out, "max seq# = 29\n") {
		t.Fatalf("after purge -high:\n%s", out)
	}
	// The end, without asking.
	code, out, errOut = run(t, Env{}, "-dir", dir, "purge", "-low", "25", "-y")
	if code != 0 || strings.Contains(out, "WARNING") || !strings.Contains(out, "Deleted seqno 25 to 29; the THL now holds seqno ") {
		t.Fatalf("purge -low -y: %d\n%s%s", code, out, errOut)
	}
	_, out, _ = run(t, Env{}, "-dir", dir, "list", "-json")
	if n := strings.Count(out, "\n"); n == 0 || n >= len(evs) {
		t.Fatalf("%d events left", n)
	}
	// The middle: refused.
	code, _, errOut = run(t, Env{}, "-dir", dir, "purge", "-low", "22", "-high", "23", "-y")
	if code != 1 || !strings.Contains(errOut, "not from its middle") {
		t.Fatalf("purge of the middle: %d %s", code, errOut)
	}
	// While a replicator holds the store: refused.
	s, err := thl.Open(thl.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	code, _, errOut = run(t, Env{}, "-dir", dir, "purge", "-y")
	s.Close()
	if code != 1 || errOut != "thl: the THL at "+dir+" is in use by a running replicator; stop it first (replicator stop), or use trepctl reset -thl while it runs\n" {
		t.Fatalf("purge of a locked store: %d %q", code, errOut)
	}
	// Everything.
	code, out, _ = run(t, Env{}, "-dir", dir, "purge", "-y")
	if code != 0 || !strings.Contains(out, "the THL is now empty") {
		t.Fatalf("purge all: %d %s", code, out)
	}
}
