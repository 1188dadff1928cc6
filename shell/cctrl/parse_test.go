package cctrl

import (
	"errors"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	cases := []struct {
		mode Mode
		line string
		want Command
	}{
		{Logical, "", Command{}},
		{Logical, "   # a comment", Command{}},
		{Logical, "ls", Command{Name: "ls"}},
		{Logical, "LS -l east2", Command{Name: "ls", Long: true, Host: "east2"}},
		{Logical, "ls -json", Command{Name: "ls", JSON: true}},
		{Logical, "ls resources", Command{Name: "ls", Action: "resources"}},
		{Logical, "members", Command{Name: "members"}},
		{Logical, "ping", Command{Name: "ping"}},
		{Logical, "use west", Command{Name: "use", Value: "west"}},
		{Logical, "cd ..", Command{Name: "cd", Value: ".."}},
		{Logical, "cd /west", Command{Name: "cd", Value: "west"}},
		{Logical, "set policy maintenance", Command{Name: "set", Action: "policy", Value: "maintenance"}},
		{Logical, "set policy AUTOMATIC", Command{Name: "set", Action: "policy", Value: "automatic"}},
		{Logical, "set force true", Command{Name: "set", Action: "force", Value: "true"}},
		{Logical, "datasource east1 shun", Command{Name: "datasource", Host: "east1", Action: "shun"}},
		{Logical, "datasource east2 welcome  # the guide's step 15", Command{Name: "datasource", Host: "east2", Action: "welcome"}},
		{Logical, "replicator east1 offline", Command{Name: "replicator", Host: "east1", Action: "offline"}},
		{Logical, "replicator east1 status", Command{Name: "replicator", Host: "east1", Action: "status"}},
		{Logical, "router * offline", Command{Name: "router", Host: "*", Action: "offline"}},
		{Logical, "router east1 online", Command{Name: "router", Host: "east1", Action: "online"}},
		{Logical, "switch", Command{Name: "switch"}},
		{Logical, "switch to east2", Command{Name: "switch", Host: "east2"}},
		{Logical, "failover to east3", Command{Name: "failover", Host: "east3"}},
		{Logical, "service host/mysql restart", Command{Name: "service", Host: "host", Action: "restart"}},
		{Logical, "cluster heartbeat", Command{Name: "cluster", Action: "heartbeat"}},
		{Logical, "help", Command{Name: "help"}},
		{Logical, "help Switch", Command{Name: "help", Value: "switch"}},
		{Logical, "expert", Command{Name: "expert"}},
		{Logical, "quit", Command{Name: "exit"}},
		{Logical, "mm", Command{Name: "mm"}},
		{MM, "ls west2", Command{Name: "ls", Host: "west2"}},
		{MM, "replicator west3 offline", Command{Name: "replicator", Host: "west3", Action: "offline"}},
		{MM, "replicator west3 online -service east", Command{Name: "replicator", Host: "west3", Action: "online", Service: "east"}},
		{MM, "replicator west3 reset -service east -y", Command{Name: "replicator", Host: "west3", Action: "reset", Service: "east", Yes: true}},
		{MM, "exit-mm", Command{Name: "exit-mm"}},
	}
	for _, c := range cases {
		got, err := Parse(c.mode, c.line)
		if err != nil {
			t.Errorf("%q: %v", c.line, err)
			continue
		}
		if got != c.want {
			t.Errorf("%q: got %+v, want %+v", c.line, got, c.want)
		}
		if got.Name == "" {
			continue
		}
		again, err := Parse(c.mode, got.String())
		if err != nil || again != got {
			t.Errorf("%q: canonical form %q parses as %+v, %v", c.line, got.String(), again, err)
		}
	}
}

// Every cctrl step of the operator guide parses.
func TestGuideStepsParse(t *testing.T) {
	for _, l := range []string{
		"set policy maintenance", "router * offline", "set force true", "datasource east1 shun",
		"replicator east1 offline", "datasource west3 shun", "replicator west3 offline",
		"datasource west3 recover", "datasource east1 welcome", "datasource east1 online",
		"router * online", "set policy automatic", "datasource east1 shun", "service host/mysql restart",
		"datasource host recover", "switch", "ls",
		"datasource {replica_hostname_here} shun",
	} {
		_, err := Parse(Logical, l)
		if l == "datasource {replica_hostname_here} shun" {
			// The guide's placeholder is to be replaced, and says so.
			if err == nil || !strings.Contains(err.Error(), "is not a host name") {
				t.Errorf("%q: %v", l, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("guide step %q: %v", l, err)
		}
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct {
		mode Mode
		line string
		want string
	}{
		{Logical, "swich", `unknown command "swich"; did you mean "switch"? (help lists the commands)`},
		{Logical, "datasorce east2 shun", `unknown command "datasorce"; did you mean "datasource"?`},
		{Logical, "lss", `unknown command "lss"; did you mean "ls"?`},
		{Logical, "frobnicate", `unknown command "frobnicate" (help lists the commands)`},
		{Logical, "sw", `unknown command "sw"; did you mean "switch"?`},
		{Logical, "datasource east2 shnu", `datasource east2: unknown action "shnu"; did you mean "shun"? (use shun, welcome, recover, online, offline or fail)`},
		{Logical, "datasource east2 explode", `datasource east2: unknown action "explode"; use shun, welcome, recover, online, offline or fail`},
		{Logical, "datasource east2", "usage: datasource HOST shun|welcome|recover|online|offline|fail"},
		{Logical, "datasource -l shun", `datasource: -l is not an option of datasource; usage: datasource HOST`},
		{Logical, "set policy sometimes", `unknown policy "sometimes"; use automatic or maintenance`},
		{Logical, "set policy maintenence", `unknown policy "maintenence"; did you mean "maintenance"?`},
		{Logical, "set polcy automatic", `set: unknown setting "polcy"; did you mean "policy"?`},
		{Logical, "set force yes", `set force: unknown value "yes"; use true or false`},
		{Logical, "set policy", "usage: set policy automatic|maintenance | set force true|false"},
		{Logical, "switch east2", "usage: switch [to HOST]"},
		{Logical, "failover to", "usage: failover [to HOST]"},
		{Logical, "router east1", "usage: router HOST|* online|offline"},
		{Logical, "router east1 up", `router east1: unknown action "up"; use online or offline`},
		{Logical, "service east2/redis restart", "service east2/redis: name the database as HOST/mysql"},
		{Logical, "service east2 restart", "service east2: name the database as HOST/mysql"},
		{Logical, "service east2/mysql reboot", `service east2/mysql: unknown action "reboot"; use start, stop or restart`},
		{Logical, "cluster heartbeet", `cluster: unknown subcommand "heartbeet"; did you mean "heartbeat"?`},
		{Logical, "ls -x", `ls: -x is not an option of ls; usage: ls [-l] [-json] [HOST|resources]`},
		{Logical, "ls east1 east2", "usage: ls [-l] [-json] [HOST|resources]"},
		{Logical, "ls resources -l", "ls resources takes no options"},
		{Logical, "ping now", "ping takes no arguments"},
		{Logical, "help swich", `help: no command "swich"; did you mean "switch"?`},
		{Logical, "use", "usage: use SERVICE"},
		{Logical, "use ..", "use takes a service name; cd .. leaves the service"},
		{Logical, "exit-mm", "exit-mm is a command of mm mode"},
		{Logical, "replicator east1 reset", `replicator east1: unknown action "reset"`},
		{Logical, "replicator east1 online -service east", "replicator: -service is not supported in the cluster: in the cluster the replicator runs the service itself"},
		{MM, "ls -l", "ls: -l is not supported in mm mode: mm mode's ls draws a box per host's cross-site services"},
		{MM, "ls -json east1", "ls: -json is not supported in mm mode"},
		{MM, "switch", "switch is a cluster command, not one of mm mode; exit-mm returns to the cluster commands"},
		{MM, "replicator west3 reset", "replicator west3 reset: name the service to reset with -service S"},
		{MM, "replicator west3 online -y", "-y goes with reset only"},
		{MM, "replicator west3 online -service", "-service needs a service name"},
		{MM, "replicator west3 online extra", `replicator west3 online: unexpected "extra"`},
	}
	for _, c := range cases {
		_, err := Parse(c.mode, c.line)
		if err == nil {
			t.Errorf("%q parsed", c.line)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %q, want %q", c.line, err, c.want)
		}
		if !errors.Is(err, ErrUsage) {
			t.Errorf("%q: %v is not ErrUsage", c.line, err)
		}
		if strings.Contains(err.Error(), "\n") {
			t.Errorf("%q: error is more than one line: %q", c.line, err)
		}
	}
}

func TestNearest(t *testing.T) {
	cands := []string{"ls", "switch", "set", "service", "datasource"}
	for word, want := range map[string]string{
		"swtich": "switch", "switc": "switch", "sw": "switch", "st": "set", "l": "ls", "x": "", "servce": "service",
		"datasrouce": "datasource", "zzzz": "", "": "",
	} {
		if got := nearest(word, cands); got != want {
			t.Errorf("nearest(%q) = %q, want %q", word, got, want)
		}
	}
}

// TestParseClusterCheck: cluster check takes -json and one SCHEMA or
// SCHEMA.TABLE; anything else is one sentence, and the canonical form
// parses back to the same command.
func TestParseClusterCheck(t *testing.T) {
	for _, c := range []struct {
		line string
		want Command
	}{
		{"cluster check", Command{Name: "cluster", Action: "check"}},
		{"cluster check -json", Command{Name: "cluster", Action: "check", JSON: true}},
		{"cluster check --json app.t1", Command{Name: "cluster", Action: "check", JSON: true, Value: "app.t1"}},
		{"CLUSTER CHECK app", Command{Name: "cluster", Action: "check", Value: "app"}},
	} {
		got, err := Parse(Logical, c.line)
		if err != nil || got != c.want {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", c.line, got, err, c.want)
			continue
		}
		if again, err := Parse(Logical, got.String()); err != nil || again != got {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", got.String(), again, err, got)
		}
	}
	for _, line := range []string{"cluster check a b", "cluster check -x", "cluster check .t", "cluster check a.", "cluster check a.b.c", "cluster heartbeat -json", "cluster checks"} {
		if _, err := Parse(Logical, line); err == nil || !errors.Is(err, ErrUsage) || strings.Contains(err.Error(), "\n") {
			t.Errorf("Parse(%q) = %v, want one usage sentence", line, err)
		}
	}
}
