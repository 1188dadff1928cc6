package config

import (
	"strings"
	"testing"
)

// TestLogMaxSize: log-max-size is a whole number of MB, 100 by default;
// anything else is refused with one sentence naming the key.
func TestLogMaxSize(t *testing.T) {
	const site = "[east]\ntopology=clustered\nmembers=e1\nmaster=e1\n"
	cfg, err := Parse(Source{"x", []byte(site)})
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.ClusterSettings("east").LogMaxSizeMB; got != 100 {
		t.Errorf("default log-max-size = %d, want 100", got)
	}
	cfg, err = Parse(Source{"x", []byte("[defaults]\nlog-max-size=5\n" + site)})
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.ClusterSettings("east").LogMaxSizeMB; got != 5 {
		t.Errorf("log-max-size = %d, want 5", got)
	}
	for _, v := range []string{"0", "-1", "1.5", "100MB", "1048577"} {
		_, err := Parse(Source{"x", []byte("[defaults]\nlog-max-size=" + v + "\n" + site)})
		want := `x: [defaults] log-max-size must be the size in MB at which an agent's log is rotated, a whole number from 1 to 1048576, not "` + v + `"`
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("log-max-size=%s: err = %v, want %s", v, err, want)
		}
	}
}

// TestUserNamed: the settings tell a user the ini names from the default.
func TestUserNamed(t *testing.T) {
	const site = "[east]\ntopology=clustered\nmembers=e1\nmaster=e1\n"
	cfg, err := Parse(Source{"x", []byte(site)})
	if err != nil {
		t.Fatal(err)
	}
	if s := cfg.ClusterSettings("east"); s.UserNamed || s.User != "tungsten" {
		t.Errorf("without user=: User %q, UserNamed %v; want the default tungsten, not named", s.User, s.UserNamed)
	}
	cfg, err = Parse(Source{"x", []byte("[defaults]\nuser=carbide\n" + site)})
	if err != nil {
		t.Fatal(err)
	}
	if s := cfg.ClusterSettings("east"); !s.UserNamed || s.User != "carbide" {
		t.Errorf("with user=carbide: User %q, UserNamed %v", s.User, s.UserNamed)
	}
}
