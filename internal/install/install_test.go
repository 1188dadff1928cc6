package install

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/carbidedb/carbide/internal/config"
)

func sandboxConfig(t *testing.T, root string) *config.Config {
	t.Helper()
	data, err := os.ReadFile("../../examples/msaa.ini")
	if err != nil {
		t.Fatal(err)
	}
	extra := "\n[hosts]\neast1=127.0.1.1\n\n[sandbox]\nroot=" + root + "\n"
	cfg, err := config.Parse(config.Source{Name: "msaa.ini", Data: append(data, extra...)})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// fakeStaging makes a release directory whose programs print their name
// and CARBIDE_HOME.
func fakeStaging(t *testing.T) string {
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, p := range append(Programs(config.ClusterInstall), "multi_trepctl") {
		script := "#!/bin/sh\necho " + p + " $CARBIDE_HOME \"$@\"\n"
		if err := os.WriteFile(filepath.Join(bin, p), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestInstallSandboxHost(t *testing.T) {
	root := t.TempDir()
	cfg := sandboxConfig(t, root)
	staging := fakeStaging(t)
	var out strings.Builder
	done, err := Install(cfg, "east1", Options{Staging: staging, INI: []string{"/x/tungsten.ini"}, Profile: true, Out: &out})
	if err != nil {
		t.Fatal(err)
	}
	if len(done) != 2 {
		t.Fatalf("installed %d installs, want cluster and cross-site", len(done))
	}
	cluster, xsite := filepath.Join(root, "east1", "continuent"), filepath.Join(root, "east1", "replicator")
	for _, f := range []string{INIPath(cluster), ManifestPath(cluster), EnvPath(cluster), filepath.Join(cluster, "bin", "trepctl"), filepath.Join(xsite, "bin", "mm_trepctl"), filepath.Join(xsite, "bin", "mm_replicator"), filepath.Join(xsite, "bin", "mm_thl"), filepath.Join(xsite, "bin", "mm_tpm"), filepath.Join(xsite, "bin", "mm_multi_trepctl")} {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("missing %s", f)
		}
	}
	if st, _ := os.Stat(INIPath(cluster)); st.Mode().Perm() != 0o600 {
		t.Errorf("installed ini mode %v, want 0600 (it holds passwords)", st.Mode().Perm())
	}
	if !strings.Contains(out.String(), "east1: cluster install in "+filepath.Join(root, "east1", "continuent")+": manager, replicator [east:master], connector;") {
		t.Errorf("progress output: %s", out.String())
	}

	// The wrappers work in scripts: sourcing both env.sh files as the
	// guide does binds trepctl to the cluster install and mm_trepctl to
	// the cross-site one.
	script := ". " + EnvPath(cluster) + " && . " + EnvPath(xsite) + " && trepctl status && mm_trepctl -service west status && echo host=$CARBIDE_HOST ini=$CARBIDE_INI"
	cmd := exec.Command("sh", "-c", script)
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	got, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", script, err, got)
	}
	want := "trepctl " + cluster + " status\ntrepctl " + xsite + " -service west status\nhost=east1 ini=/x/tungsten.ini\n"
	if string(got) != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}

	b, err := Open(xsite)
	if err != nil {
		t.Fatal(err)
	}
	if b.Host.Name != "east1" || b.Install.Kind != config.CrossSiteInstall || b.Install.Services[0].Name != "west" || b.Manifest.Staging != staging {
		t.Fatalf("Open = %+v", b)
	}
}

func TestEnvSourcedTwiceKeepsPathClean(t *testing.T) {
	root := t.TempDir()
	cfg := sandboxConfig(t, root)
	staging := fakeStaging(t)
	for _, h := range []string{"east1", "east2"} {
		if _, err := Install(cfg, h, Options{Staging: staging}); err != nil {
			t.Fatal(err)
		}
	}
	e1, e2 := EnvPath(filepath.Join(root, "east1", "continuent")), EnvPath(filepath.Join(root, "east2", "continuent"))
	cmd := exec.Command("sh", "-c", ". "+e1+"; . "+e2+"; . "+e1+"; echo $PATH; echo $CARBIDE_HOST")
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	got, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(root, "east1", "continuent", "bin") + ":" + filepath.Join(root, "east2", "continuent", "bin") + ":/usr/bin:/bin\neast1\n"
	if string(got) != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestInstallRefusesBadInput(t *testing.T) {
	root := t.TempDir()
	cfg := sandboxConfig(t, root)
	if _, err := Install(cfg, "east9", Options{Staging: fakeStaging(t)}); err == nil || !strings.Contains(err.Error(), "host east9 is not in the configuration") {
		t.Fatalf("err = %v", err)
	}
	if _, err := Install(cfg, "east1", Options{Staging: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "has no bin/ directory") {
		t.Fatalf("err = %v", err)
	}
	if entries, _ := os.ReadDir(root); len(entries) != 0 {
		t.Fatalf("a refused install wrote %d entries under %s", len(entries), root)
	}
}

func TestMissingProgramSaysSo(t *testing.T) {
	root := t.TempDir()
	cfg := sandboxConfig(t, root)
	staging := t.TempDir()
	os.MkdirAll(filepath.Join(staging, "bin"), 0o755)
	if _, err := Install(cfg, "east1", Options{Staging: staging}); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(filepath.Join(root, "east1", "replicator", "bin", "mm_trepctl"), "status").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "mm_trepctl: "+staging+"/bin/trepctl is not built; run make build in "+staging) {
		t.Fatalf("err=%v out=%s", err, out)
	}
}

func TestProfileScript(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	for i := 0; i < 2; i++ {
		changed, err := addToProfile("~/.bashrc", "/opt/continuent/share/env.sh")
		if err != nil || changed != (i == 0) {
			t.Fatalf("run %d: changed=%v err=%v", i, changed, err)
		}
	}
	data, _ := os.ReadFile(filepath.Join(home, ".bashrc"))
	if strings.Count(string(data), "env.sh") != 1 {
		t.Fatalf(".bashrc = %q", data)
	}
}
