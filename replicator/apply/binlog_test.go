package apply

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"
)

// recorder records the queries sent.
type recorder struct{ got []string }

func (r *recorder) ExecContext(_ context.Context, q string, _ ...any) (sql.Result, error) {
	r.got = append(r.got, q)
	return nil, nil
}

// TestExecCut: every BINLOG statement ends its packet, wherever it is in
// the SQL, the last one included when more (the commit) follows.
func TestExecCut(t *testing.T) {
	s := []byte("A;BINLOG 'x';B;BINLOG 'y';")
	cuts := []int{len("A;BINLOG 'x';"), len(s)}
	for _, c := range []struct {
		from, to       int
		prefix, suffix string
		want           string
	}{
		{0, len(s), "BEGIN;", "COMMIT", "[BEGIN;A;BINLOG 'x'; B;BINLOG 'y'; COMMIT]"},
		{0, len(s), "", "", "[A;BINLOG 'x'; B;BINLOG 'y';]"},
		{0, 2, "BEGIN;", "COMMIT", "[BEGIN;A;COMMIT]"},
		{2, cuts[0], "", "X", "[BINLOG 'x'; X]"},
		{cuts[0], len(s), "BEGIN;", "", "[BEGIN;B;BINLOG 'y';]"},
	} {
		r := &recorder{}
		if err := execCut(context.Background(), r, c.prefix, s, c.from, c.to, marks{cuts: cuts}, "", c.suffix); err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprint(r.got); got != c.want {
			t.Errorf("execCut(%q, %d..%d, %q) sent %s, want %s", c.prefix, c.from, c.to, c.suffix, got, c.want)
		}
	}
}

// TestFormatDescription: the event announces binlog version 4, no
// checksum, and its length is its own.
func TestFormatDescription(t *testing.T) {
	fd := formatDescription
	if fd[eventTypeOffset] != formatEventType || int(fd[eventSizeOffset]) != len(fd)%256 || fd[eventHeaderSize] != binlogVersion {
		t.Fatalf("format description header % x", fd[:eventHeaderSize+2])
	}
	if alg := fd[len(fd)-5]; alg != 0 {
		t.Fatalf("checksum algorithm %d, want 0 (off)", alg)
	}
	if !strings.HasPrefix(string(fd[eventHeaderSize+2:]), "10.11") {
		t.Fatalf("server version %q", fd[eventHeaderSize+2:eventHeaderSize+20])
	}
}

// TestScriptCompound: a script of row changes goes as one compound
// statement, BINLOG statements and the commit included; without compound
// it is cut after every BINLOG statement.
func TestScriptCompound(t *testing.T) {
	s := []byte("A;BINLOG 'x';B;")
	cuts := []int{len("A;BINLOG 'x';")}
	for _, c := range []struct {
		s    script
		want string
	}{
		{script{begin: true, sql: s, to: len(s), marks: marks{cuts: cuts}, tail: []byte("T;COMMIT"), compound: true}, "[BEGIN NOT ATOMIC START TRANSACTION;A;BINLOG 'x';B;T;COMMIT;END]"},
		{script{sql: s, to: len(s), marks: marks{cuts: cuts}, compound: true}, "[BEGIN NOT ATOMIC A;BINLOG 'x';B;END]"},
		{script{begin: true, sql: s, from: 2, to: cuts[0], marks: marks{cuts: cuts}, compound: true}, "[BEGIN NOT ATOMIC START TRANSACTION;BINLOG 'x';END]"},
		{script{sql: s, from: 2, to: 2, compound: true}, "[]"},
		{script{begin: true, sql: s, to: len(s), marks: marks{cuts: cuts}, tail: []byte("T;COMMIT")}, "[BEGIN;A;BINLOG 'x'; B;T;COMMIT]"},
	} {
		r := &recorder{}
		if err := c.s.exec(context.Background(), r); err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprint(r.got); got != c.want {
			t.Errorf("%+v sent %s, want %s", c.s, got, c.want)
		}
	}
}
