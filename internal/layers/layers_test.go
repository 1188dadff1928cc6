package layers

import (
	"bufio"
	"bytes"
	"os/exec"
	"path"
	"strings"
	"testing"
)

const module = "github.com/carbidedb/carbide/"

// rules: a package (or every package under a prefix ending in "/") must
// not import any of these: a package, or a tree ("x/..."), of Carbide or
// not. The reasons are in each package's doc.go.
var rules = []struct {
	pkg    string
	forbid []string
}{
	{"internal/", []string{"manager/...", "replicator/...", "router/...", "shell/..."}},
	{"internal/daemon", []string{"rpc/..."}},
	{"internal/systemd", []string{"internal/daemon", "rpc/..."}},
	{"internal/sandbox", []string{"internal/systemd"}},
	{"internal/netns", []string{"internal/...", "rpc/..."}},
	{"internal/wanlink", []string{"internal/...", "rpc/..."}},
	{"rpc/", []string{"manager/...", "replicator/...", "router/...", "shell/...", "internal/..."}},
	{"manager", []string{"replicator/...", "router/...", "shell/..."}},
	{"manager/", []string{"manager", "replicator/...", "router/...", "shell/..."}},
	{"manager/actions", []string{"manager/fencing", "manager/consensus", "manager/membership", "manager/health",
		"github.com/hashicorp/raft", "github.com/hashicorp/memberlist", "github.com/go-sql-driver/mysql", "database/sql"}},
	{"manager/fencing", []string{"manager/policy", "rpc/...", "github.com/hashicorp/raft"}},
	{"manager/membership", []string{"manager/consensus", "manager/fencing", "github.com/hashicorp/raft", "rpc/gen/managerpb"}},
	{"manager/consensus", []string{"manager/membership", "manager/fencing", "manager/health", "rpc/..."}},
	{"manager/health", []string{"manager/membership", "manager/consensus", "manager/fencing", "database/sql"}},
	{"manager/policy", []string{"manager/actions", "manager/consensus", "manager/fencing", "manager/health", "manager/membership"}},
	{"manager/netbind", []string{"manager/...", "rpc/...", "internal/..."}},
	{"router", []string{"manager/...", "replicator/...", "shell/..."}},
	{"router/", []string{"router", "manager/...", "replicator/...", "shell/...", "rpc/..."}},
	{"replicator", []string{"manager/...", "router/...", "shell/..."}},
	{"replicator/", []string{"manager/...", "router/...", "shell/..."}},
	{"shell", []string{"manager/...", "replicator/...", "router/..."}},
	{"shell/", []string{"manager/...", "replicator/...", "router/..."}},
}

// covers tells whether rule names pkg: itself, or a package under a
// prefix ending in "/" (not the prefix's own package).
func covers(rule, pkg string) bool {
	if strings.HasSuffix(rule, "/") {
		return strings.HasPrefix(pkg, rule)
	}
	return pkg == rule
}

// hits tells whether imp is forb, or under it when forb ends in "/..."
// (a Carbide path, or a third-party or standard one).
func hits(forb, imp string) bool {
	imp = strings.TrimPrefix(imp, module)
	if tree, ok := strings.CutSuffix(forb, "/..."); ok {
		return imp == tree || strings.HasPrefix(imp, tree+"/")
	}
	return imp == forb
}

func TestImportRules(t *testing.T) {
	cmd := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", module+"...")
	cmd.Dir = path.Join("..", "..")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	checked := 0
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		pkg := strings.TrimPrefix(fields[0], module)
		for _, r := range rules {
			if !covers(r.pkg, pkg) {
				continue
			}
			checked++
			for _, imp := range fields[1:] {
				for _, f := range r.forbid {
					if hits(f, imp) {
						t.Errorf("%s imports %s: %s must not import %s (see its doc.go)", pkg, strings.TrimPrefix(imp, module), r.pkg, f)
					}
				}
			}
		}
	}
	if checked < 20 {
		t.Fatalf("only %d packages checked: go list gave\n%s", checked, out)
	}
}
