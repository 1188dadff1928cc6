package textutil

import "testing"

func TestLastLines(t *testing.T) {
	if got := LastLines("a\n\n  b \nc\n", 2); got != "b; c" {
		t.Errorf("LastLines: %q", got)
	}
	if got := LastLines("", 3); got != "" {
		t.Errorf("LastLines of nothing: %q", got)
	}
	if got := Lines(" x \n\n y"); len(got) != 2 || got[0] != "x" || got[1] != "y" {
		t.Errorf("Lines: %q", got)
	}
}
