package position

import (
	"errors"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	for _, p := range []Position{
		{File: "mysql-bin.000003", Offset: 1234},
		{File: "mysql-bin.000003", Offset: 1234, GTID: "0-101-5"},
		{File: "binlog.000001", Offset: 4, GTID: "3e11fa47-71ca-11e1-9e33-c80aa9429562:23"},
	} {
		got, err := Parse(p.String())
		if err != nil || got != p {
			t.Errorf("Parse(%q) = %+v, %v", p.String(), got, err)
		}
	}
	if got := (Position{File: "mysql-bin.000003", Offset: 1234}).String(); got != "mysql-bin.000003:0000000000001234" {
		t.Errorf("String = %s", got)
	}
	if p, err := Parse("mysql-bin.000002:0000000000000492;-1"); err != nil || p.GTID != "" || p.Offset != 492 {
		t.Errorf("Tungsten event id: %+v %v", p, err)
	}
}

func TestParseErrors(t *testing.T) {
	for _, s := range []string{"", "mysql-bin", ":12", "f:", "f:x1"} {
		if _, err := Parse(s); !errors.Is(err, ErrSyntax) {
			t.Errorf("Parse(%q) err = %v", s, err)
		}
	}
}

func TestCompare(t *testing.T) {
	a := Position{File: "mysql-bin.000009", Offset: 900}
	b := Position{File: "mysql-bin.000010", Offset: 4}
	if a.Compare(b) != -1 || b.Compare(a) != 1 || a.Compare(a) != 0 {
		t.Fatal("file numbers must order before offsets")
	}
}
