package config

import (
	"os"
	"strings"
	"testing"
)

// FuzzParse feeds arbitrary bytes to the ini parser: it must never panic,
// and whatever it accepts must plan and reverse into something it accepts
// again.
func FuzzParse(f *testing.F) {
	if data, err := os.ReadFile(sampleINI); err == nil {
		f.Add(data)
	}
	f.Add([]byte("[east]\ntopology=clustered\nmembers=e1\nmaster=e1\n"))
	f.Add([]byte("[defaults]\nproperty=a=b=c\n[hosts]\ne1=127.0.0.1\n"))
	f.Add([]byte("key\n[a.b]\n\"x\"=\"\"\"y\n"))
	f.Add([]byte("[defaults\nfoo"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(Source{Name: "fuzz.ini", Data: data})
		if err != nil {
			if strings.TrimSpace(err.Error()) == "" {
				t.Fatal("empty error message")
			}
			if strings.ContainsAny(err.Error(), "\r\n") {
				t.Fatalf("the error is not one line: %q", err)
			}
			return
		}
		p := cfg.Plan()
		if p == nil || len(p.Hosts) == 0 {
			t.Fatal("a valid config planned no hosts")
		}
		var b strings.Builder
		if err := cfg.Reverse(&b, false); err != nil {
			t.Fatal(err)
		}
		if _, err := Parse(Source{Name: "reversed.ini", Data: []byte(b.String())}); err != nil {
			t.Fatalf("reverse of an accepted config is rejected: %v\n--- input\n%q\n--- reversed\n%s", err, data, b.String())
		}
	})
}
