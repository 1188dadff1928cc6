package cctrl

import (
	"errors"
	"strings"
	"testing"
)

// FuzzParse: Parse never panics; what it accepts has a registered name and
// a canonical form that parses back to the same command; what it refuses
// is one line of ErrUsage.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"ls", "ls -l east2", "ls -json", "ls resources", "set policy maintenance", "set force true",
		"datasource east1 shun", "replicator east1 status", "router * offline", "switch to east2",
		"failover", "service east2/mysql restart", "cluster heartbeat", "help switch", "cd ..",
		"use west", "expert", "exit", "mm", "swich", "datasource east2 shnu # comment",
		"replicator west3 reset -service east -y", "\x00\xff", "set policy \u00e9",
	} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, line string, mm bool) {
		mode := Logical
		if mm {
			mode = MM
		}
		c, err := Parse(mode, line)
		if err != nil {
			if !errors.Is(err, ErrUsage) {
				t.Fatalf("%q: error %v is not ErrUsage", line, err)
			}
			if msg := err.Error(); msg == "" || strings.Contains(msg, "\n") {
				t.Fatalf("%q: error %q is not one line", line, msg)
			}
			return
		}
		if c.Name == "" {
			if len(Fields(line)) != 0 {
				t.Fatalf("%q parsed as nothing", line)
			}
			return
		}
		sp := lookup(c.Name)
		if sp == nil || sp.name != c.Name || sp.modes&mode == 0 {
			t.Fatalf("%q parsed as %+v, not a command of %s mode", line, c, mode)
		}
		again, err := Parse(mode, c.String())
		if err != nil || again != c {
			t.Fatalf("%q parsed as %+v; its canonical form %q parses as %+v, %v", line, c, c.String(), again, err)
		}
	})
}
