package e2e

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/carbidedb/carbide/internal/config"
	"github.com/carbidedb/carbide/internal/sandbox"
	"github.com/carbidedb/carbide/internal/testutil"
)

// The sample ini's passwords, replaced by strings that occur nowhere else;
// the password of an account an operator creates with SQL; and a wrong
// password an application tries.
const (
	replicationSecret = "Rp-7f3a9c"
	applicationSecret = "Ap-4e81d2"
	restSecret        = "Api-9b5c07"
	accountSecret     = "Au-5d6e7f"
	wrongSecret       = "Bad-c3d2e1"
)

var secrets = []string{replicationSecret, applicationSecret, restSecret, accountSecret, wrongSecret}

// secretsINI is the sample ini with those passwords.
func secretsINI(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../examples/msaa.ini")
	if err != nil {
		t.Fatal(err)
	}
	ini := string(b)
	for key, secret := range map[string]string{"replication-password": replicationSecret, "application-password": applicationSecret,
		"rest-api-admin-password": restSecret} {
		if !strings.Contains(ini, key+"=secret\n") {
			t.Fatalf("the sample ini has no %s=secret line", key)
		}
		ini = strings.Replace(ini, key+"=secret\n", key+"="+secret+"\n", 1)
	}
	return ini
}

// configFile tells the files that hold the passwords because they are the
// configuration (the ini each install and the sandbox keep, readable by
// their owner only): the only place a password may be.
func configFile(path string) bool {
	return strings.HasSuffix(path, ".ini")
}

// leaks greps every file under dir for the secrets and returns
// "file:line: secret" for every hit. Files configFile allows are skipped
// (and must be mode 0600), and so are the files of skip (relative to dir).
func leaks(t *testing.T, dir string, skip func(rel string) bool) (hits []string, scanned int) {
	t.Helper()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil // a file removed meanwhile (a socket, a pid file)
			}
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		if !d.Type().IsRegular() || skip(rel) {
			return nil
		}
		if configFile(path) {
			if info, err := d.Info(); err == nil && info.Mode().Perm()&0o077 != 0 {
				hits = append(hits, fmt.Sprintf("%s: a configuration file with passwords others may read (mode %v)", rel, info.Mode().Perm()))
			}
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			if os.IsNotExist(err) {
				return nil
			}
			return err
		}
		scanned++
		hits = append(hits, grepSecrets(rel, b)...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return hits, scanned
}

// grepSecrets returns "name:line: secret" for every line of b that holds
// a secret.
func grepSecrets(name string, b []byte) []string {
	var hits []string
	for _, sec := range secrets {
		if !bytes.Contains(b, []byte(sec)) {
			continue
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Buffer(make([]byte, 1<<20), 1<<30)
		for n := 1; sc.Scan(); n++ {
			if bytes.Contains(sc.Bytes(), []byte(sec)) {
				line := sc.Text()
				if len(line) > 200 {
					line = line[:200] + "…"
				}
				hits = append(hits, fmt.Sprintf("%s:%d: %s in %q", name, n, sec, line))
			}
		}
	}
	return hits
}

// sqlOpen opens a one-connection pool to addr as user.
func sqlOpen(t *testing.T, addr, user, password string) *sql.DB {
	t.Helper()
	mc := mysql.NewConfig()
	mc.User, mc.Passwd, mc.Net, mc.Addr = user, password, "tcp", addr
	mc.Timeout, mc.ReadTimeout, mc.WriteTimeout = 2*time.Second, 5*time.Second, 5*time.Second
	conn, err := mysql.NewConnector(mc)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(conn)
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	return db
}

// TestSecrets: with the sample ini's passwords made distinctive, a
// sandbox is brought up and used the ways an operator and an application
// do (cctrl, trepctl, mm_trepctl, multi_trepctl, tpm reverse, commands
// that fail, a bad login through the connector, every /metrics page);
// then no password appears in any of their output, nor in any file under
// the sandbox but the ini files that configure it. tpm reverse prints
// every password masked.
func TestSecrets(t *testing.T) {
	s := startSandbox(t, secretsINI(t))
	outputs := map[string]string{}
	run := func(name, host, inst, program string, args ...string) string {
		out, err := s.tool(host, inst, program, args...)
		outputs[fmt.Sprintf("%s on %s (%v)", name, host, err)] = out
		return out
	}
	// Writes as root (the sandbox's passwordless root@127.%), replicated
	// within and across sites: an account with a password, the way an
	// operator creates one, and rows.
	root := sqlOpen(t, s.addr("east1")+":13306", "root", "")
	for _, q := range []string{"CREATE USER 'audit'@'%' IDENTIFIED BY '" + accountSecret + "'", "GRANT SELECT ON app.* TO 'audit'@'%'",
		"ALTER USER 'app_user'@'%' IDENTIFIED BY '" + applicationSecret + "'", "CREATE DATABASE app", "CREATE TABLE app.t (id INT PRIMARY KEY, v VARCHAR(20))", "INSERT INTO app.t VALUES (1, 'one'), (2, 'two')"} {
		if _, err := root.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	// The application through east1's connector, with its password and
	// with a wrong one.
	app := sqlOpen(t, s.addr("east1")+":3306", "app_user", applicationSecret)
	testutil.Eventually(t, 30*time.Second, func() error {
		_, err := app.Exec("INSERT INTO app.t VALUES (3, 'three') ON DUPLICATE KEY UPDATE v = 'three'")
		return err
	})
	bad := sqlOpen(t, s.addr("east1")+":3306", "app_user", wrongSecret)
	if err := bad.Ping(); err == nil {
		t.Fatalf("a wrong password logged in through the connector")
	} else {
		outputs["bad login through the connector"] = err.Error()
	}
	bad = sqlOpen(t, s.addr("east2")+":3306", "tungsten", applicationSecret)
	if err := bad.Ping(); err == nil {
		t.Fatalf("the application's password logged in as the replication user")
	} else {
		outputs["bad login as tungsten"] = err.Error()
	}
	// s.db would log in with the sample's password: root pools instead.
	s.dbs = map[string]*sql.DB{"east1": root, "west3": sqlOpen(t, s.addr("west3")+":13306", "root", "")}
	waitRows(s, []string{"east1", "west3"}, "app.t", 3)
	// The account replicated with its password (as a hash, see below): it
	// logs in on the other site.
	var n int
	if err := sqlOpen(t, s.addr("west3")+":13306", "audit", accountSecret).QueryRow("SELECT COUNT(*) FROM app.t").Scan(&n); err != nil || n != 3 {
		t.Fatalf("the replicated account on west3: %d rows, %v", n, err)
	}

	// The operator's tools.
	r := s.runCctrl("east1", "continuent", "cctrl", "ls\nls -l\nls -json\ndatasource east9 shun\nreplicator east2 status\nmembers\n")
	outputs["cctrl on east1"] = r.out + r.err
	r = s.runCctrl("west2", "continuent", "cctrl", "ls -l\nset policy bogus\n")
	outputs["cctrl on west2"] = r.out + r.err
	for _, h := range []string{"east1", "east2", "west1"} {
		run("trepctl status", h, "continuent", "trepctl", "status")
		run("trepctl services", h, "continuent", "trepctl", "services")
		run("mm_trepctl status", h, "replicator", "mm_trepctl", "status")
	}
	run("trepctl status of an unknown service", "east1", "continuent", "trepctl", "-service", "nosuch", "status")
	run("trepctl online of an online service", "east2", "continuent", "trepctl", "online")
	run("multi_trepctl", "east1", "continuent", "multi_trepctl")
	run("mm_multi_trepctl", "west1", "replicator", "mm_multi_trepctl")
	run("tpm bad command", "east1", "continuent", "tpm", "reverse", "--ini", "/nonexistent.ini")
	run("tpm validate --check-db", "east1", "continuent", "tpm", "validate", "--check-db")
	run("thl list", "east2", "continuent", "thl", "list")
	run("mm_thl list", "west2", "replicator", "mm_thl", "list")
	reverse := run("tpm reverse", "east1", "continuent", "tpm", "reverse")
	mmReverse := run("mm_tpm reverse", "west1", "replicator", "mm_tpm", "reverse")
	for name, out := range map[string]string{"tpm reverse": reverse, "mm_tpm reverse": mmReverse} {
		for _, key := range []string{"replication-password", "application-password", "rest-api-admin-password"} {
			if !strings.Contains(out, key+"="+config.Mask+"\n") {
				t.Errorf("%s does not print %s masked (%s=%s):\n%s", name, key, key, config.Mask, out)
			}
		}
	}
	// Every /metrics page.
	for _, h := range allHosts {
		for _, port := range []int{replicatorMetricsPort, crossSiteMetricsPort, managerMetricsPort, connectorMetricsPort} {
			_, page, err := scrape(fmt.Sprintf("http://%s:%d/metrics", s.addr(h), port))
			if err != nil {
				t.Errorf("%s:%d: %v", h, port, err)
			}
			outputs[fmt.Sprintf("/metrics of %s:%d", h, port)] = page
		}
	}
	// The REST API with its password and with a wrong one (401, and a log
	// line naming the user only).
	for _, u := range []string{"http://" + s.addr("east1") + ":8090/api/v2/manager/status",
		"http://" + s.addr("west2") + ":8097/api/v2/replicator/status", "http://" + s.addr("east3") + ":8096/api/v2/connector/status"} {
		for pw, want := range map[string]int{restSecret: http.StatusOK, wrongSecret: http.StatusUnauthorized} {
			req, _ := http.NewRequest(http.MethodGet, u, nil)
			req.SetBasicAuth("apiuser", pw)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("%s: %v", u, err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != want {
				t.Errorf("%s: HTTP %d, want %d", u, resp.StatusCode, want)
			}
			outputs[fmt.Sprintf("REST %s (HTTP %d)", u, resp.StatusCode)] = string(body)
		}
	}

	// Stopped, so that what the agents log on the way out is searched too.
	if err := sandbox.Down(context.Background(), s.cfg); err != nil {
		t.Fatalf("sandbox down: %v", err)
	}
	outputs["sandbox up and down"] = s.out.String()
	if testing.Verbose() {
		for name, out := range outputs {
			t.Logf("--- %s\n%s", name, strings.TrimRight(out, "\n"))
		}
	}
	var hits []string
	for name, out := range outputs {
		hits = append(hits, grepSecrets(name, []byte(out))...)
	}
	// east1's binary log is MariaDB's own record of the statements typed
	// there, passwords included; what the replicators wrote (the THL, the
	// other hosts' binary logs) holds hashes only.
	fileHits, scanned := leaks(t, s.cfg.Dir, func(rel string) bool {
		return strings.HasPrefix(rel, filepath.Join("east1", "mysql", "data", "mysql-bin."))
	})
	hits = append(hits, fileHits...)
	t.Logf("%d outputs and %d files under the sandbox searched for the passwords", len(outputs), scanned)
	for _, h := range hits {
		t.Errorf("password leaked: %s", h)
	}
}
