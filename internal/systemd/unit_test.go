package systemd

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/carbidedb/carbide/internal/config"
)

// sampleHost returns east1's plan in the guide's sample topology.
func sampleHost(t *testing.T) *config.HostPlan {
	t.Helper()
	cfg, err := config.Load("../../examples/msaa.ini")
	if err != nil {
		t.Fatal(err)
	}
	h, ok := cfg.Plan().Host("east1")
	if !ok {
		t.Fatal("the sample has no east1")
	}
	return h
}

const wantClusterReplicator = `# The replicator of the cluster install of east1; tpm install and tpm update rewrite this file.
# carbide-home: /opt/continuent
[Unit]
Description=Carbide replicator of east1 (cluster install in /opt/continuent)
Wants=network-online.target
After=network-online.target

[Service]
Type=simple
User=tungsten
Group=tungsten
Environment=CARBIDE_HOME=/opt/continuent
WorkingDirectory=/opt/continuent
ExecStart=/opt/continuent/bin/replicator run --home=/opt/continuent
Restart=on-failure
RestartSec=2
LimitNOFILE=65536

[Install]
WantedBy=multi-user.target
`

// TestSampleUnits: east1 of the sample has a cluster install (manager,
// replicator, connector) and a cross-site one (replicator, prefix mm);
// each agent gets a unit whose name tells the installs apart.
func TestSampleUnits(t *testing.T) {
	h := sampleHost(t)
	cluster := Units(h.Cluster, Options{Group: "tungsten"})
	xsite := Units(h.CrossSite, Options{Group: "tungsten"})
	var names []string
	for _, u := range append(cluster, xsite...) {
		names = append(names, u.Name)
	}
	want := []string{"carbide-cluster-manager.service", "carbide-cluster-replicator.service", "carbide-cluster-connector.service", "carbide-cross-site-replicator.service"}
	if !slices.Equal(names, want) {
		t.Fatalf("units %v, want %v", names, want)
	}
	if cluster[1].Agent != Replicator || cluster[1].Text != wantClusterReplicator {
		t.Errorf("the cluster replicator's unit:\n%s\nwant:\n%s", cluster[1].Text, wantClusterReplicator)
	}
	x := xsite[0].Text
	for _, line := range []string{
		"Description=Carbide replicator of east1 (cross-site install in /opt/replicator)",
		"Environment=CARBIDE_HOME=/opt/replicator",
		"WorkingDirectory=/opt/replicator",
		"ExecStart=/opt/replicator/bin/mm_replicator run --home=/opt/replicator",
	} {
		if !strings.Contains(x, line+"\n") {
			t.Errorf("the cross-site replicator's unit lacks %q:\n%s", line, x)
		}
	}
	if HomeOf(x) != "/opt/replicator" || HomeOf(cluster[0].Text) != "/opt/continuent" || HomeOf("[Unit]\n") != "" {
		t.Errorf("HomeOf reads %q and %q", HomeOf(x), HomeOf(cluster[0].Text))
	}
}

// TestUserOnlyWhenNamed: without user= in the ini (the default applies)
// the unit names no user or group; with it but no group known here, it
// names the user only.
func TestUserOnlyWhenNamed(t *testing.T) {
	in := sampleHost(t).Cluster
	st := in.Settings
	st.UserNamed = false
	unnamed := *in
	unnamed.Settings = st
	if text := Units(&unnamed, Options{Group: "tungsten"})[0].Text; strings.Contains(text, "User=") || strings.Contains(text, "Group=") {
		t.Errorf("a unit of an ini without user= names a user or group:\n%s", text)
	}
	text := Units(in, Options{})[0].Text
	if !strings.Contains(text, "\nUser=tungsten\n") || strings.Contains(text, "Group=") {
		t.Errorf("with user= and no group known, want User= alone:\n%s", text)
	}
}

// TestQuoting: a directory with spaces, % and $ is quoted so that systemd
// reads it back as it is.
func TestQuoting(t *testing.T) {
	in := &config.Install{Kind: config.ClusterInstall, Host: "h1", Dir: `/srv/my 100% $dir`, Connector: true, Settings: config.DefaultSettings()}
	text := Units(in, Options{})[0].Text
	for _, line := range []string{
		`Environment="CARBIDE_HOME=/srv/my 100%% $dir"`,
		`WorkingDirectory=/srv/my 100%% $dir`,
		`ExecStart="/srv/my 100%% $$dir/bin/connector" run "--home=/srv/my 100%% $$dir"`,
		`Description=Carbide connector of h1 (cluster install in /srv/my 100%% $dir)`,
	} {
		if !strings.Contains(text, line+"\n") {
			t.Errorf("unit lacks %s:\n%s", line, text)
		}
	}
	if got := quote(`a"b\c`, false); got != `"a\"b\\c"` {
		t.Errorf(`quote(a"b\c) = %s`, got)
	}
}

// TestChoose: where tpm writes units.
func TestChoose(t *testing.T) {
	yes, no := func() bool { return true }, func() bool { return false }
	system := Host{Dir: SystemDir, IsBooted: yes, IsRoot: yes}
	for _, tc := range []struct {
		name    string
		h       Host
		forced  string
		sandbox bool
		hosts   int
		want    Target
	}{
		{"forced", system, "/tmp/u", true, 3, Target{Dir: "/tmp/u"}},
		{"sandbox", system, "", true, 1, Target{Skip: true}},
		{"systemd and root", system, "", false, 1, Target{Dir: SystemDir, System: true}},
		{"no systemd", Host{Dir: SystemDir, IsBooted: no, IsRoot: yes}, "", false, 1, Target{Why: "this host does not run systemd"}},
		{"zero host", Host{}, "", false, 1, Target{Why: "this host does not run systemd"}},
		{"not root", Host{Dir: SystemDir, IsBooted: yes, IsRoot: no}, "", false, 1, Target{Why: "tpm is not running as root"}},
		{"several hosts", system, "", false, 2, Target{Why: "tpm installed several hosts, whose units have the same names"}},
	} {
		if got := tc.h.Choose(tc.forced, tc.sandbox, tc.hosts); got != tc.want {
			t.Errorf("%s: Choose = %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

// TestWriteFindsStale: writing the units of an install that no longer
// runs a connector names the connector's unit it wrote before, and not
// another install's unit of the same name.
func TestWriteFindsStale(t *testing.T) {
	dir := t.TempDir()
	in := *sampleHost(t).Cluster
	if stale, err := Write(dir, &in, Units(&in, Options{})); err != nil || len(stale) != 0 {
		t.Fatalf("first write: stale %v, err %v", stale, err)
	}
	in.Connector = false
	stale, err := Write(dir, &in, Units(&in, Options{}))
	if err != nil || !slices.Equal(stale, []string{"carbide-cluster-connector.service"}) {
		t.Fatalf("stale %v, err %v; want the connector's unit", stale, err)
	}
	if err := Remove(dir, stale[0]); err != nil {
		t.Fatal(err)
	}
	if err := Remove(dir, stale[0]); err != nil {
		t.Fatalf("removing a unit already gone: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "carbide-cluster-connector.service"), []byte(Units(&config.Install{Kind: config.ClusterInstall, Dir: "/elsewhere", Connector: true}, Options{})[0].Text), 0o644)
	if stale, _ := Write(dir, &in, Units(&in, Options{})); len(stale) != 0 {
		t.Errorf("another install's unit counted as stale: %v", stale)
	}
}

// TestInstalledUnit: the agents' commands use a unit only when systemd
// runs and the system's directory holds this install's unit.
func TestInstalledUnit(t *testing.T) {
	dir := t.TempDir()
	in := sampleHost(t).Cluster
	h := Host{Dir: dir, IsBooted: func() bool { return true }, Systemctl: nil}
	if _, ok := h.InstalledUnit(in.Dir, in.Kind, Replicator); ok {
		t.Error("a unit without systemctl")
	}
	h.Systemctl = func(context.Context, ...string) (string, error) { return "", nil }
	if _, ok := h.InstalledUnit(in.Dir, in.Kind, Replicator); ok {
		t.Error("a unit before any was written")
	}
	if _, err := Write(dir, in, Units(in, Options{})); err != nil {
		t.Fatal(err)
	}
	if name, ok := h.InstalledUnit(in.Dir+"/", in.Kind, Replicator); !ok || name != "carbide-cluster-replicator.service" {
		t.Errorf("InstalledUnit = %s, %v", name, ok)
	}
	if _, ok := h.InstalledUnit("/opt/other", in.Kind, Replicator); ok {
		t.Error("another install directory's agent took this install's unit")
	}
	if _, ok := h.InstalledUnit(in.Dir, config.CrossSiteInstall, Replicator); ok {
		t.Error("the cross-site replicator took the cluster one's unit")
	}
	h.IsBooted = func() bool { return false }
	if _, ok := h.InstalledUnit(in.Dir, in.Kind, Replicator); ok {
		t.Error("a unit on a machine systemd does not run")
	}
}
