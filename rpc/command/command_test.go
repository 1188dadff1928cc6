package command

import (
	"strings"
	"testing"

	"github.com/carbidedb/carbide/rpc/gen/managerpb"
)

func TestWordsOfEveryCommand(t *testing.T) {
	shun, _ := DatasourceAction("shun")
	maint, _ := PolicyMode("MAINTENANCE")
	restart, _ := ServiceAction("restart")
	for _, c := range []struct {
		r    *managerpb.CommandRequest
		want string
	}{
		{Ping(), "ping"},
		{Members(), "members"},
		{Heartbeat(), "cluster heartbeat"},
		{Switch(""), "switch"},
		{Switch("east2"), "switch to east2"},
		{Failover("east3"), "failover to east3"},
		{Router("*", false), "router * offline"},
		{Replicator("east2", true), "replicator east2 online"},
		{Datasource("east2", shun), "datasource east2 shun"},
		{Policy(maint), "set policy maintenance"},
		{Service("east1", restart), "service east1/mysql restart"},
		{&managerpb.CommandRequest{}, ""},
	} {
		if got := Text(c.r); got != c.want {
			t.Errorf("Text = %q, want %q", got, c.want)
		}
	}
	for _, bad := range []func() error{
		func() error { _, err := DatasourceAction("unspecified"); return err },
		func() error { _, err := DatasourceAction("explode"); return err },
		func() error { _, err := PolicyMode(""); return err },
		func() error { _, err := ServiceAction("reboot"); return err },
		func() error { _, err := OnOff("on"); return err },
	} {
		if err := bad(); err == nil || !strings.Contains(err.Error(), "unknown") {
			t.Errorf("a wrong word: %v", err)
		}
	}
}

func TestParseIsWordsInverse(t *testing.T) {
	for _, text := range []string{"ping", "members", "cluster heartbeat", "switch", "switch to east2", "failover to east3",
		"router * offline", "replicator east2 online", "datasource east2 recover", "set policy automatic", "service east1/mysql stop"} {
		r, err := Parse(strings.Fields(text))
		if err != nil || Text(r) != text {
			t.Errorf("Parse(%q) = %q, %v", text, Text(r), err)
		}
	}
	for _, bad := range []string{"", "switch east2", "datasource east2", "datasource east2 explode", "router east1 on", "set policy lazy",
		"service east1 start", "service east1/redis start", "cluster check", "frobnicate", "ping now"} {
		if r, err := Parse(strings.Fields(bad)); err == nil {
			t.Errorf("Parse(%q) = %q, want an error", bad, Text(r))
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"switch to east2", "datasource east2 shun", "service east1/mysql restart", "router * online"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := Parse(strings.Fields(s))
		if err != nil {
			return
		}
		back, err := Parse(Words(r))
		if err != nil || Text(back) != Text(r) {
			t.Fatalf("%q: words %q parse back to %q, %v", s, Text(r), Text(back), err)
		}
	})
}
