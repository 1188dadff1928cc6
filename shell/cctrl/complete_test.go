package cctrl

import (
	"strings"
	"testing"

	"github.com/carbidedb/carbide/internal/config"
)

func texts(s []Suggestion) string {
	var out []string
	for _, x := range s {
		out = append(out, x.Text)
	}
	return strings.Join(out, " ")
}

func TestComplete(t *testing.T) {
	n := deployment()
	s := newSession(t, n, testInstall(t, "east1", config.ClusterInstall, ""), Config{})
	for _, c := range []struct{ before, want string }{
		{"sw", "switch"},
		{"s", "set switch service"},
		{"SW", "switch"},
		{"e", "expert exit"},
		{"datasource ", "east1 east2 east3"},
		{"datasource east2 ", "shun welcome recover online offline fail"},
		{"datasource east2 re", "recover"},
		{"set ", "policy force"},
		{"set policy ", "automatic maintenance"},
		{"set policy m", "maintenance"},
		{"set force ", "true false"},
		{"router ", "* east1 east2 east3"},
		{"router * o", "online offline"},
		{"replicator east3 ", "online offline status"},
		{"switch ", "to"},
		{"failover to e", "east1 east2 east3"},
		{"service e", "east1/mysql east2/mysql east3/mysql"},
		{"service east1/mysql ", "start stop restart"},
		{"cluster ", "heartbeat check"},
		{"use ", "east west"},
		{"cd ", "east west .."},
		{"ls ", "-l -json resources east1 east2 east3"},
		{"help sw", "switch"},
		{"zz", ""},
		{"datasource east2 shun ", ""},
	} {
		if got := texts(s.Complete(c.before)); got != c.want {
			t.Errorf("Complete(%q) = %q, want %q", c.before, got, c.want)
		}
	}
	mm := newSession(t, n, testInstall(t, "west3", config.CrossSiteInstall, ""), Config{MM: true})
	for _, c := range []struct{ before, want string }{
		{"", ""},
		{"e", "expert exit-mm exit"},
		{"replicator ", "west1 west2 west3"},
		{"replicator west3 ", "online offline status reset"},
		{"replicator west3 reset ", "-service -y"},
		{"replicator west3 online -service ", "east"},
	} {
		if got := texts(mm.Complete(c.before)); got != c.want {
			t.Errorf("mm Complete(%q) = %q, want %q", c.before, got, c.want)
		}
	}
}
