package apply

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

func TestBrief(t *testing.T) {
	long := strings.Repeat("é", 50)
	for in, want := range map[string]string{
		"":                           "no row",
		`{"id":1,"v":"short"}`:       `{"id":1,"v":"short"}`,
		`{"v":"` + long + `","n":2}`: `{"v":"` + strings.Repeat("é", 40) + `…","n":2}`,
		`{"v":"` + strings.Repeat("a", 39) + `\u0000b"}`: `{"v":"` + strings.Repeat("a", 39) + `\u0000…"}`,
		`{"v":"a\"b"}`: `{"v":"a\"b"}`,
	} {
		if got := brief(in); got != want {
			t.Errorf("brief(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestConvergeRule(t *testing.T) {
	r := rule{policy: PolicyConverge, order: []string{"east", "west"}}
	if over, other, err := r.overwrite("east"); err != nil || !over || other != "west" {
		t.Errorf("east's change: overwrite %v against %s (%v), want true against west", over, other, err)
	}
	if over, other, err := r.overwrite("west"); err != nil || over || other != "east" {
		t.Errorf("west's change: overwrite %v against %s (%v), want false against east", over, other, err)
	}
	if _, _, err := r.overwrite("north"); err == nil {
		t.Error("a site not in the order was ranked")
	}
	three := rule{policy: PolicyConverge, order: []string{"east", "west", "north"}}
	if _, _, err := three.overwrite("east"); err == nil || !strings.Contains(err.Error(), "two-site") {
		t.Errorf("three sites: %v, want a stop saying the rule ranks two sites", err)
	}
	for p, want := range map[Policy]bool{PolicyLog: true, PolicySkip: false} {
		if over, _, err := (rule{policy: p}).overwrite("east"); err != nil || over != want {
			t.Errorf("%s: overwrite %v (%v), want %v", p, over, err, want)
		}
	}
	if _, _, err := (rule{policy: PolicyStop}).overwrite("east"); err != errStop {
		t.Errorf("stop: %v", err)
	}
}

func TestConflictsValidate(t *testing.T) {
	for _, c := range []Conflicts{
		{Policy: "merge"},
		{Policy: PolicyConverge, SiteOrder: []string{"east"}},
		{Policy: PolicyLog, SiteOrder: []string{"east", "east"}},
	} {
		if err := c.validate(); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	c := Conflicts{}
	if err := c.validate(); err != nil || c.Policy != PolicyStop {
		t.Errorf("the zero value: %v, policy %q", err, c.Policy)
	}
}

// Guards follow the statements marked for one, inside a compound
// statement and as statements of their own in a multi-statement script;
// marks follow the SQL when its front is sent ahead.
func TestGuards(t *testing.T) {
	b := builder{detect: true}
	b.buf = append(b.buf, "UPDATE a;"...)
	b.guarded()
	b.buf = append(b.buf, "INSERT b;BINLOG 'x';"...)
	b.marks.cuts = append(b.marks.cuts, len(b.buf))
	b.buf = append(b.buf, "DELETE c;"...)
	b.guarded()
	b.marks.checks = append(b.marks.checks, check{at: len(b.buf)})
	s := script{begin: true, sql: b.buf, to: len(b.buf), marks: b.marks, tail: []byte("T;COMMIT"), compound: true, check: true, guard: guardStatement}
	r := &recorder{}
	if err := s.exec(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	want := "BEGIN NOT ATOMIC START TRANSACTION;UPDATE a;" + guardCompound + "INSERT b;BINLOG 'x';DELETE c;" + guardCompound + "T;COMMIT;END"
	if fmt.Sprint(r.got) != fmt.Sprint([]string{want}) {
		t.Errorf("compound: sent %s\nwant %s", r.got, want)
	}
	s.compound = false
	r = &recorder{}
	if err := s.exec(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprint([]string{"BEGIN;UPDATE a;" + guardStatement + "INSERT b;BINLOG 'x';", "DELETE c;" + guardStatement + "T;COMMIT"}); fmt.Sprint(r.got) != want {
		t.Errorf("multi-statement: sent %s\nwant %s", r.got, want)
	}
	m := b.marks.after(len("UPDATE a;"))
	if len(m.guards) != 1 || len(m.checks) != 1 || len(m.cuts) != 1 || m.cuts[0] != len("INSERT b;BINLOG 'x';") {
		t.Errorf("marks after the first statement: %+v", m)
	}
	if m := b.marks.before(len("UPDATE a;")); len(m.guards) != 1 || len(m.cuts) != 0 || len(m.checks) != 0 {
		t.Errorf("marks of the first statement: %+v", m)
	}
	if cs := b.marks.checksIn(len("UPDATE a;"), len(b.buf)); len(cs) != 1 {
		t.Errorf("checks of the rest: %d", len(cs))
	}
}

// The sentence pendingError shows names the table, the key, the change
// and both rows.
func TestConflictSentence(t *testing.T) {
	c := Conflict{Seqno: 9, Origin: "east", Schema: "app", Table: "t", Key: "id=7", Action: "INSERT", Kind: KindExists,
		After: `{"id":7,"v":"seven"}`, Target: `{"id":7,"v":"stray"}`}
	want := `conflict on app.t id=7: the INSERT from east of {"id":7,"v":"seven"} finds its key taken: this database holds {"id":7,"v":"stray"}; ` +
		`the conflict policy is stop: make the row what it should be with sql_log_bin=0 and put the service online, or skip the transaction (trepctl online -skip-seqno 9)`
	if got := (&ConflictError{Conflict: c}).Error(); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	c = Conflict{Origin: "west", Schema: "app", Table: "t", Key: "id=1", Action: "DELETE", Kind: KindMissing, Before: `{"id":1}`}
	if got := c.sentence(); got != `conflict on app.t id=1: the DELETE from west expected {"id":1} but this database holds no such row` {
		t.Errorf("got %s", got)
	}
	c = Conflict{Origin: "west", Schema: "app", Table: "c", Key: "id=10", Action: "INSERT", Kind: KindParent, After: `{"id":10,"pid":1}`}
	if got := c.sentence(); got != `conflict on app.c id=10: the INSERT from west of {"id":10,"pid":1} references a parent row this database no longer holds (another site deleted it)` {
		t.Errorf("got %s", got)
	}
}
