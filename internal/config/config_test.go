package config

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const sampleINI = "../../examples/msaa.ini"

func TestSampleLoads(t *testing.T) {
	cfg, err := Load(sampleINI)
	if err != nil {
		t.Fatalf("the guide's sample ini must load: %v", err)
	}
	if got := cfg.siteNames(); strings.Join(got, ",") != "east,west" {
		t.Fatalf("sites = %v, want east,west", got)
	}
	p := cfg.Plan()
	if got := strings.Join(p.HostNames(), ","); got != "east1,east2,east3,west1,west2,west3" {
		t.Fatalf("hosts = %s", got)
	}
	east1, _ := p.Host("east1")
	if east1.Cluster == nil || !east1.Cluster.Manager || !east1.Cluster.Replicator || !east1.Cluster.Connector {
		t.Fatalf("east1 cluster install = %+v, want manager, replicator and connector", east1.Cluster)
	}
	if east1.Cluster.Dir != "/opt/continuent" || east1.CrossSite.Dir != "/opt/replicator" {
		t.Fatalf("install dirs = %s, %s", east1.Cluster.Dir, east1.CrossSite.Dir)
	}
	if s := east1.Cluster.Settings; s.THLPort != 2112 || s.RMIPort != 10000 || s.ReplicatorRESTPort != 8097 || s.PrometheusPort != 8091 || s.ApplicationPort != 3306 || s.ReplicationPort != 13306 {
		t.Fatalf("cluster ports = %+v", s)
	}
	x := east1.CrossSite.Settings
	if x.THLPort != 2113 || x.RMIPort != 10002 || x.ReplicatorRESTPort != 28097 || x.PrometheusPort != 28091 || x.ExecutablePrefix != "mm" {
		t.Fatalf("cross-site settings = %+v", x)
	}
	if x.ReplicationPassword != "secret" || x.ReplicationPort != 13306 {
		t.Fatalf("cross-site install must inherit [defaults]: %+v", x)
	}
	if east1.Cluster.Settings.ExecutablePrefix != "" {
		t.Fatalf("[defaults.replicator] must not apply to the cluster install")
	}
	if got := east1.Cluster.Services; len(got) != 1 || got[0].Name != "east" || got[0].Role != RoleMaster || len(got[0].Sources) != 0 {
		t.Fatalf("east1 services = %+v", got)
	}
	east2, _ := p.Host("east2")
	if got := east2.Cluster.Services[0]; got.Role != RoleSlave || endpoints(got.Sources) != "east1:2112,east3:2112" {
		t.Fatalf("east2 service = %+v", got)
	}
	// West hosts run a cross-site service named after the origin, east.
	west3, _ := p.Host("west3")
	xs := west3.CrossSite.Services
	if len(xs) != 1 || xs[0].Name != "east" || xs[0].Role != RoleSlave || xs[0].Link != "east_west" || xs[0].TrackingSchema() != "tungsten_east" {
		t.Fatalf("west3 cross-site services = %+v", xs)
	}
	if endpoints(xs[0].Sources) != "east2:2112,east3:2112,east1:2112,west1:2113,west2:2113" {
		t.Fatalf("west3 reads east from %s, want the replicas first, then the master, then its own site's cross-site replicators", endpoints(xs[0].Sources))
	}
	if east1.Cluster.Settings.HoldTimeout != 30*time.Second || east1.Cluster.Settings.THLRetention != 7*24*time.Hour {
		t.Fatalf("defaults not applied: %+v", east1.Cluster.Settings)
	}
}

func endpoints(es []Endpoint) string {
	var s []string
	for _, e := range es {
		s = append(s, e.String())
	}
	return strings.Join(s, ",")
}

func TestSandboxSections(t *testing.T) {
	data, err := os.ReadFile(sampleINI)
	if err != nil {
		t.Fatal(err)
	}
	extra := "\n[hosts]\neast1=127.0.1.1\nwest1=127.0.2.1\n\n[sandbox]\nroot=/tmp/sb\n"
	cfg, err := Parse(Source{Name: "a.ini", Data: data}, Source{Name: "b.ini", Data: []byte(extra)})
	if err != nil {
		t.Fatal(err)
	}
	p := cfg.Plan()
	east1, _ := p.Host("east1")
	if east1.Address != "127.0.1.1" || east1.Cluster.Dir != "/tmp/sb/east1/continuent" || east1.CrossSite.Dir != "/tmp/sb/east1/replicator" {
		t.Fatalf("east1 = %+v / %s / %s", east1, east1.Cluster.Dir, east1.CrossSite.Dir)
	}
	if got := east1.Bind("0.0.0.0"); got != "127.0.1.1" {
		t.Fatalf("in a sandbox 0.0.0.0 must bind the host's address, got %s", got)
	}
	west2, _ := p.Host("west2")
	if west2.Address != "west2" {
		t.Fatalf("a host missing from [hosts] keeps its name as address, got %s", west2.Address)
	}
}

func TestLaterFileOverrides(t *testing.T) {
	a := "[defaults]\nreplication-port=13306\n[east]\ntopology=clustered\nmembers=e1\nmaster=e1\n"
	b := "[defaults]\nreplication-port=13307\n"
	cfg, err := Parse(Source{"a", []byte(a)}, Source{"b", []byte(b)})
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.ClusterSettings("east").ReplicationPort; got != 13307 {
		t.Fatalf("replication-port = %d, want the later file's 13307", got)
	}
}

func TestBlockCommitProperties(t *testing.T) {
	in := "[defaults]\nproperty=replicator.stage.q-to-dbms.blockCommitRowCount=50\nproperty=replicator.stage.q-to-dbms.blockCommitInterval=250ms\nchannels=4\n[east]\ntopology=clustered\nmembers=e1\nmaster=e1\n"
	cfg, err := Parse(Source{"x", []byte(in)})
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.ClusterSettings("east")
	if s.BlockCommitRows != 50 || s.BlockCommitInterval != 250*time.Millisecond || s.Channels != 4 {
		t.Fatalf("settings = %+v", s)
	}
	bad := "[defaults]\nproperty=replicator.stage.q-to-dbms.blockCommitRowCount=0\n[east]\ntopology=clustered\nmembers=e1\nmaster=e1\n"
	if _, err := Parse(Source{"x", []byte(bad)}); err == nil || !strings.Contains(err.Error(), "blockCommitRowCount must be a number of transactions") {
		t.Fatalf("err = %v", err)
	}
}

func TestAliasAndProperties(t *testing.T) {
	in := "[defaults]\nrest-api-admin-pass=pw\nproperty=a.b=1\nproperty=a.b=2\nproperty=replicator.prometheus.exporter.enabled=false\n[east]\ntopology=clustered\nmembers=e1\nmaster=e1\n"
	cfg, err := Parse(Source{"x", []byte(in)})
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.ClusterSettings("east")
	if s.RESTAdminPassword != "pw" || s.Properties["a.b"] != "2" || s.PrometheusEnabled {
		t.Fatalf("settings = %+v", s)
	}
}

// TestInvalid loads every file under testdata/invalid: each must fail with
// exactly one problem, the sentence on its first "# want:" line.
func TestInvalid(t *testing.T) {
	files, _ := filepath.Glob("testdata/invalid/*.ini")
	if len(files) < 8 {
		t.Fatalf("want at least 8 broken ini files, have %d", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			want := wantLine(t, f)
			_, err := Load(f)
			if err == nil {
				t.Fatalf("%s loaded without error", f)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error does not wrap ErrInvalid: %v", err)
			}
			var probs Problems
			if !errors.As(err, &probs) || len(probs) != 1 {
				t.Fatalf("want exactly one problem, got %v", err)
			}
			if !strings.Contains(probs[0], want) {
				t.Fatalf("problem:\n  %s\nwant it to contain:\n  %s", probs[0], want)
			}
		})
	}
}

func wantLine(t *testing.T, f string) string {
	fh, err := os.Open(f)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		if w, ok := strings.CutPrefix(sc.Text(), "# want: "); ok {
			return w
		}
	}
	t.Fatalf("%s has no '# want:' line", f)
	return ""
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load("/nonexistent/tungsten.ini")
	if err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("err = %v", err)
	}
}

func TestReverseMasksPasswords(t *testing.T) {
	cfg, err := Load(sampleINI)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := cfg.Reverse(&buf, true); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if strings.Contains(out, "password=secret") || !strings.Contains(out, "replication-password="+Mask) {
		t.Fatalf("reverse did not mask passwords:\n%s", out)
	}
	// The reversed ini (unmasked) loads into the same plan.
	buf.Reset()
	_ = cfg.Reverse(&buf, false)
	again, err := Parse(Source{"reversed", buf.Bytes()})
	if err != nil {
		t.Fatalf("reversed ini does not load: %v\n%s", err, buf.String())
	}
	if strings.Join(again.Plan().HostNames(), ",") != strings.Join(cfg.Plan().HostNames(), ",") {
		t.Fatal("reversed ini plans different hosts")
	}
}

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{"7d": 7 * 24 * time.Hour, "30": 30 * time.Second, "15m": 15 * time.Minute, "1h30m": 90 * time.Minute} {
		if got, err := parseDuration(in); err != nil || got != want {
			t.Errorf("parseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "d", "-1s", "7x", "99999999999d"} {
		if _, err := parseDuration(in); err == nil {
			t.Errorf("parseDuration(%q) accepted", in)
		}
	}
}

// TestConflictSettings: a multi-site topology converges by default, in ini
// order, cluster and cross-site services alike; a single site stops; a
// site's section sets its hosts' services, a cluster-slave section its one
// cross-site service.
func TestConflictSettings(t *testing.T) {
	cfg, err := Load(sampleINI)
	if err != nil {
		t.Fatal(err)
	}
	p := cfg.Plan()
	for _, host := range []string{"east1", "west2"} {
		h, _ := p.Host(host)
		for _, in := range h.Installs() {
			for _, s := range in.Services {
				if s.ConflictPolicy != ConflictConverge || strings.Join(s.ConflictSiteOrder, ",") != "east,west" {
					t.Errorf("%s service %s: %s %v, want converge east,west", host, s.Name, s.ConflictPolicy, s.ConflictSiteOrder)
				}
			}
		}
	}
	ini, err := os.ReadFile(sampleINI)
	if err != nil {
		t.Fatal(err)
	}
	in := strings.Replace(string(ini), "[defaults]\n", "[defaults]\nrepl-conflict-site-order=west,east\n", 1)
	in = strings.Replace(in, "[west]\ntopology=clustered\n", "[west]\ntopology=clustered\nrepl-conflict-policy=log\n", 1)
	in = strings.Replace(in, "slave-dataservice=east\n", "slave-dataservice=east\nrepl-conflict-policy=skip\n", 1)
	cfg, err = Parse(Source{"x", []byte(in)})
	if err != nil {
		t.Fatal(err)
	}
	p = cfg.Plan()
	west1, _ := p.Host("west1")
	east1, _ := p.Host("east1")
	for _, c := range []struct {
		what   string
		s      ServicePlan
		policy string
		order  string
	}{
		{"west's cluster service", west1.Cluster.Services[0], ConflictLog, "west,east"},
		{"east's cross-site service on west", west1.CrossSite.Services[0], ConflictLog, "west,east"},
		{"west's cross-site service on east (west_east)", east1.CrossSite.Services[0], ConflictSkip, "west,east"},
		{"east's cluster service", east1.Cluster.Services[0], ConflictConverge, "west,east"},
	} {
		if c.s.ConflictPolicy != c.policy || strings.Join(c.s.ConflictSiteOrder, ",") != c.order {
			t.Errorf("%s: %s %v, want %s %s", c.what, c.s.ConflictPolicy, c.s.ConflictSiteOrder, c.policy, c.order)
		}
	}
	one, err := Parse(Source{"x", []byte("[east]\ntopology=clustered\nmembers=e1\nmaster=e1\n")})
	if err != nil {
		t.Fatal(err)
	}
	if s := one.Plan().Hosts[0].Cluster.Services[0]; s.ConflictPolicy != ConflictStop {
		t.Errorf("a single site: %s, want stop", s.ConflictPolicy)
	}
}
