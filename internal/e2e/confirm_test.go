package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/carbidedb/carbide/internal/testutil"
)

// TestCommandsReturnWhenTheyHold: a script that takes the routers offline
// and then works on the database is protected. Right after
// `router * offline` returns (cctrl, exit status 0, its usual output),
// every connector refuses a new connection with its OFFLINE error; right
// after `router * online` returns, every connector takes one to the
// primary; right after `set policy` returns, every manager shows the new
// policy. Each round is repeated, since a race shows only sometimes.
func TestCommandsReturnWhenTheyHold(t *testing.T) {
	s := startSandbox(t, connectorSite)
	hosts := []string{"east1", "east2", "east3"}
	testutil.Eventually(t, 30*time.Second, func() error {
		for _, h := range hosts {
			if out, err := s.client(h, 3306, "select @@hostname"); err != nil || !strings.HasPrefix(out, "east1") {
				return fmt.Errorf("%s's connector does not route to east1 yet: %v %s", h, err, out)
			}
		}
		return nil
	})
	// cctrl from every host in turn: a forwarded command (east1 and east2
	// are not always the coordinator) waits as well.
	run := func(round int, cmd, want string) {
		t.Helper()
		from := hosts[round%len(hosts)]
		begin := time.Now()
		r := s.runCctrl(from, "continuent", "cctrl", "", "-e", cmd)
		if r.code != 0 || r.err != "" || r.out != want+"\n" {
			t.Fatalf("round %d: %s on %s: exit %d, stdout %q, stderr %q", round, cmd, from, r.code, r.out, r.err)
		}
		t.Logf("round %d: %s on %s took %v", round, cmd, from, time.Since(begin).Round(time.Millisecond))
	}
	for round := 0; round < 4; round++ {
		run(round, "router * offline", "router * is now OFFLINE")
		for _, h := range hosts {
			out, err := s.client(h, 3306, "select @@hostname")
			if err == nil || !strings.Contains(out, "connector "+h+" is OFFLINE") {
				t.Fatalf("round %d: right after router * offline, %s's connector took a connection: %v %s", round, h, err, out)
			}
		}
		run(round, "router * online", "router * is now ONLINE")
		for _, h := range hosts {
			if out, err := s.client(h, 3306, "select @@hostname"); err != nil || !strings.HasPrefix(out, "east1") {
				t.Fatalf("round %d: right after router * online, %s's connector refused: %v %s", round, h, err, out)
			}
		}
		policy := []string{"maintenance", "automatic"}[round%2]
		run(round, "set policy "+policy, "policy mode is now "+strings.ToUpper(policy))
		for _, h := range hosts {
			if got := s.status(h).GetPolicy(); got != strings.ToUpper(policy) {
				t.Fatalf("round %d: right after set policy %s, %s's manager shows %s", round, policy, h, got)
			}
		}
	}
}
