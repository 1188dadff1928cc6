package config

import (
	"strings"
	"testing"
)

// TestReverseMasksPasswordProperties: a property whose name says it holds
// a password is masked too; other properties are printed as they are.
func TestReverseMasksPasswordProperties(t *testing.T) {
	in := "[defaults]\nproperty=replicator.datasource.global.password=Pp-1234\nproperty=manager.prometheus.exporter.port=18092\n" +
		"[east]\ntopology=clustered\nmembers=e1\nmaster=e1\n"
	cfg, err := Parse(Source{"x", []byte(in)})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := cfg.Reverse(&b, true); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if strings.Contains(out, "Pp-1234") || !strings.Contains(out, "property=replicator.datasource.global.password="+Mask+"\n") ||
		!strings.Contains(out, "property=manager.prometheus.exporter.port=18092\n") {
		t.Fatalf("reverse:\n%s", out)
	}
	b.Reset()
	_ = cfg.Reverse(&b, false)
	if !strings.Contains(b.String(), "Pp-1234") {
		t.Fatalf("reverse --unmasked hid the property:\n%s", b.String())
	}
}
