package apply

import (
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
