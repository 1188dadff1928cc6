package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/carbidedb/carbide/internal/testutil"
	"github.com/carbidedb/carbide/rpc/gen/managerpb"
)

// restAnswer is one REST API answer, its JSON decoded.
type restAnswer struct {
	code   int
	header http.Header
	body   map[string]any
}

// payload is the answer's payload object.
func (a restAnswer) payload() map[string]any {
	p, _ := a.body["payload"].(map[string]any)
	return p
}

// rest calls the REST API at url with basic credentials (none when user
// is ""), body as the request's JSON.
func rest(method, url, user, pass, body string) (restAnswer, error) {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		return restAnswer{}, err
	}
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	c := http.Client{Timeout: 90 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		return restAnswer{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return restAnswer{}, err
	}
	a := restAnswer{code: resp.StatusCode, header: resp.Header}
	if err := json.Unmarshal(b, &a.body); err != nil {
		return a, fmt.Errorf("%s %s: %s is not JSON: %v", method, url, b, err)
	}
	return a, nil
}

// mustREST is rest with the sample ini's credentials, failing the test
// unless the status is want.
func mustREST(t *testing.T, want int, method, url, body string) restAnswer {
	t.Helper()
	a, err := rest(method, url, "apiuser", "secret", body)
	if err != nil {
		t.Fatal(err)
	}
	if a.code != want {
		t.Fatalf("%s %s: status %d, want %d: %v", method, url, a.code, want, a.body)
	}
	return a
}

// checkLocked checks url answers 401, with the challenge and a JSON error,
// to a wrong password and to no credentials; ping answers without.
func checkLocked(t *testing.T, method, url string) {
	t.Helper()
	for _, cred := range [][2]string{{"apiuser", "wrong-pw-123"}, {"", ""}, {"root", "secret"}} {
		a, err := rest(method, url, cred[0], cred[1], "")
		if err != nil {
			t.Fatal(err)
		}
		if a.code != http.StatusUnauthorized || a.header.Get("WWW-Authenticate") != `Basic realm="carbide"` || a.body["error"] == nil {
			t.Errorf("%s %s as %q: %d %v %v, want 401 with a challenge and an error", method, url, cred[0], a.code, a.header, a.body)
		}
	}
}

// TestRESTOnMSAA: on the guide's sample topology (examples/msaa.ini: REST
// API on 0.0.0.0, apiuser/secret), every agent of a host answers its REST
// API v2 on the host's address: the manager on 8090, the connector on
// 8096, the cluster replicator on 8097 and the cross-site one on 28097.
// Status answers, control commands work and show, wrong or no credentials
// get 401 (logged without the password), ping is open.
func TestRESTOnMSAA(t *testing.T) {
	ini, err := os.ReadFile("../../examples/msaa.ini")
	if err != nil {
		t.Fatal(err)
	}
	s := startSandbox(t, string(ini))
	s.healthy(90 * time.Second)
	url := func(host string, port int, path string) string {
		return fmt.Sprintf("http://%s/api/v2/%s", net.JoinHostPort(s.addr(host), fmt.Sprint(port)), path)
	}
	mgr, conn, repl, xrepl := 8090, 8096, 8097, 28097

	t.Run("ping is open", func(t *testing.T) {
		for port, comp := range map[int]string{mgr: "manager", conn: "connector", repl: "replicator", xrepl: "replicator"} {
			a, err := rest(http.MethodGet, url("west2", port, comp+"/ping"), "", "", "")
			if err != nil || a.code != 200 || a.body["payloadType"] != "PingPayload" || a.payload()["hostName"] != "west2" {
				t.Errorf("ping %s on %d: %v %d %v", comp, port, err, a.code, a.body)
			}
		}
	})

	t.Run("credentials", func(t *testing.T) {
		checkLocked(t, http.MethodGet, url("east1", mgr, "manager/status"))
		checkLocked(t, http.MethodPost, url("east1", mgr, "manager/control/service/east/heartbeat"))
		checkLocked(t, http.MethodGet, url("east1", conn, "connector/status"))
		checkLocked(t, http.MethodPost, url("east1", conn, "connector/offline"))
		checkLocked(t, http.MethodGet, url("east1", repl, "replicator/status"))
		checkLocked(t, http.MethodPost, url("east1", xrepl, "replicator/service/west/offline"))
		log, err := os.ReadFile(filepath.Join(s.cfg.Dir, "east1", "continuent", "var", "log", "manager.log"))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(log), "wrong-pw-123") {
			t.Error("the manager's log holds a password")
		}
		if !strings.Contains(string(log), `msg="REST API authentication failed" user=apiuser remote=`) {
			t.Errorf("the manager's log has no line for the failed authentication:\n%s", log)
		}
		// Nothing changed: the connector is still ONLINE.
		if st := mustREST(t, 200, http.MethodGet, url("east1", conn, "connector/status"), "").payload()["state"]; st != "ONLINE" {
			t.Errorf("connector east1 is %v after refused requests", st)
		}
	})

	t.Run("manager", func(t *testing.T) {
		p := mustREST(t, 200, http.MethodGet, url("east2", mgr, "manager/status"), "").payload()
		if p["dataService"] != "east" || p["host"] != "east2" || p["primary"] != "east1" || p["coordinator"] == "" || p["policyMode"] != "AUTOMATIC" {
			t.Errorf("manager status: %v", p)
		}
		if ds, _ := p["datasources"].([]any); len(ds) != 3 || ds[0].(map[string]any)["state"] != "ONLINE" || ds[0].(map[string]any)["role"] != "master" {
			t.Errorf("datasources: %v", p["datasources"])
		}
		if cs, _ := p["connectors"].([]any); len(cs) != 3 {
			t.Errorf("connectors: %v", p["connectors"])
		}
		// A heartbeat through a manager that may not be the coordinator
		// reaches every replica of the site.
		before := mustREST(t, 200, http.MethodGet, url("east3", repl, "replicator/status?service=east"), "").payload()["appliedLastSeqno"].(float64)
		hb := mustREST(t, 200, http.MethodPost, url("east2", mgr, "manager/control/service/east/heartbeat"), "")
		if lines := fmt.Sprint(hb.payload()["lines"]); hb.body["payloadType"] != "CommandResult" || !strings.Contains(lines, "HEARTBEAT 'MANUAL' INSERTED ON east1") {
			t.Errorf("heartbeat: %v", hb.body)
		}
		testutil.Eventually(t, 20*time.Second, func() error {
			st := mustREST(t, 200, http.MethodGet, url("east3", repl, "replicator/service/east/status"), "").payload()
			if st["appliedLastSeqno"].(float64) <= before {
				return fmt.Errorf("east3 applied %v, %v before the heartbeat", st["appliedLastSeqno"], before)
			}
			return nil
		})
		// Refusals keep their sentence and map to HTTP.
		a := mustREST(t, http.StatusConflict, http.MethodPost, url("east1", mgr, "manager/control/service/east/failover"), "")
		if msg, _ := a.body["error"].(string); !strings.Contains(msg, "not FAILED") {
			t.Errorf("failover of a healthy primary: %v", a.body)
		}
		mustREST(t, http.StatusNotFound, http.MethodPost, url("east1", mgr, "manager/control/service/west/switch"), "")
		mustREST(t, http.StatusBadRequest, http.MethodPost, url("east1", mgr, "manager/control/service/east/switch"), `{"host":"east2"}`)
	})

	t.Run("replicator", func(t *testing.T) {
		svcs := mustREST(t, 200, http.MethodGet, url("east1", xrepl, "replicator/services"), "").payload()["services"].([]any)
		if len(svcs) != 1 || svcs[0].(map[string]any)["serviceName"] != "west" || svcs[0].(map[string]any)["role"] != "slave" {
			t.Errorf("cross-site services of east1: %v", svcs)
		}
		all := mustREST(t, 200, http.MethodGet, url("east1", repl, "replicator/status"), "")
		if l := all.payload()["services"].([]any); all.body["payloadType"] != "ReplicatorStatusList" || len(l) != 1 || l[0].(map[string]any)["role"] != "master" {
			t.Errorf("cluster replicator status of east1: %v", all.body)
		}
		one := mustREST(t, 200, http.MethodGet, url("east1", xrepl, "replicator/status?service=west"), "")
		if p := one.payload(); one.body["payloadType"] != "ReplicatorStatus" || p["serviceName"] != "west" || p["state"] != "ONLINE" || p["fields"].(map[string]any)["serviceName"] != "west" {
			t.Errorf("status of west on east1: %v", one.body)
		}
		mustREST(t, http.StatusNotFound, http.MethodGet, url("east1", xrepl, "replicator/status?service=north"), "")
		off := mustREST(t, 200, http.MethodPost, url("east1", xrepl, "replicator/service/west/offline"), "").payload()
		if off["state"] != "OFFLINE:NORMAL" {
			t.Errorf("after offline: %v", off["state"])
		}
		if st := s.xfield("east1", "west", "state"); st != "OFFLINE:NORMAL" {
			t.Errorf("mm_trepctl says %s after offline", st)
		}
		mustREST(t, http.StatusBadRequest, http.MethodPost, url("east1", xrepl, "replicator/service/west/reset"), "")
		mustREST(t, 200, http.MethodPost, url("east1", xrepl, "replicator/service/west/online"), "")
		testutil.Eventually(t, 20*time.Second, func() error {
			if st := mustREST(t, 200, http.MethodGet, url("east1", xrepl, "replicator/service/west/status"), "").payload()["state"]; st != "ONLINE" {
				return fmt.Errorf("west on east1 is %v", st)
			}
			return nil
		})
		// Resetting an ONLINE service is refused: 409 with trepctl's sentence.
		a := mustREST(t, http.StatusConflict, http.MethodPost, url("east1", xrepl, "replicator/service/west/reset"), `{"thl": true}`)
		if msg, _ := a.body["error"].(string); !strings.Contains(msg, "offline") {
			t.Errorf("reset of an ONLINE service: %v", a.body)
		}
	})

	t.Run("connector", func(t *testing.T) {
		p := mustREST(t, 200, http.MethodGet, url("west2", conn, "connector/status"), "").payload()
		if p["state"] != "ONLINE" || p["dataService"] != "west" || p["primary"].(map[string]any)["host"] != "west1" || p["listen"].(map[string]any)["readWrite"] != s.addr("west2")+":3306" {
			t.Errorf("connector status: %v", p)
		}
		off := mustREST(t, 200, http.MethodPost, url("west2", conn, "connector/offline"), "").payload()
		if off["connector"].(map[string]any)["state"] != "OFFLINE" || !strings.Contains(fmt.Sprint(off["lines"]), "OFFLINE") {
			t.Errorf("after offline: %v", off)
		}
		if out, err := s.client("west2", 3306, "select 1"); err == nil || !strings.Contains(out, "OFFLINE") {
			t.Errorf("a connection through an OFFLINE connector: %v %s", err, out)
		}
		s.waitStatus("west1", 10*time.Second, "router west2 OFFLINE", func(r *managerpb.StatusReply) error {
			for _, rt := range r.GetRouters() {
				if rt.GetHost() == "west2" && rt.GetState() != "OFFLINE" {
					return fmt.Errorf("router west2 is %s", rt.GetState())
				}
			}
			return nil
		})
		hold := mustREST(t, 200, http.MethodPost, url("west2", conn, "connector/onhold"), "").payload()["connector"].(map[string]any)
		if hold["operatorHold"] != true {
			t.Errorf("after onhold: %v", hold)
		}
		on := mustREST(t, 200, http.MethodPost, url("west2", conn, "connector/online"), "").payload()["connector"].(map[string]any)
		if on["state"] != "ONLINE" || on["operatorHold"] != false {
			t.Errorf("after online: %v", on)
		}
		if out, err := s.client("west2", 3306, "select @@hostname"); err != nil || !strings.Contains(out, "west1") {
			t.Errorf("through the connector after online: %v %s", err, out)
		}
		// Held: a new connection waits; online lets it through.
		mustREST(t, 200, http.MethodPost, url("west2", conn, "connector/onhold"), "")
		done := make(chan error, 1)
		go func() {
			_, err := s.client("west2", 3306, "select 1")
			done <- err
		}()
		select {
		case err := <-done:
			t.Fatalf("a connection through a held connector did not wait: %v", err)
		case <-time.After(time.Second):
		}
		mustREST(t, 200, http.MethodPost, url("west2", conn, "connector/online"), "")
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("the held connection after online: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("the held connection was not released by online")
		}
	})

	t.Run("switch", func(t *testing.T) {
		a := mustREST(t, 200, http.MethodPost, url("east3", mgr, "manager/control/service/east/switch"), `{"to": "east2"}`)
		if p := a.payload(); p["command"] != "switch to east2" || !strings.Contains(fmt.Sprint(p["lines"]), "east2") {
			t.Errorf("switch: %v", a.body)
		}
		testutil.Eventually(t, 30*time.Second, func() error {
			p := mustREST(t, 200, http.MethodGet, url("east1", mgr, "manager/status"), "").payload()
			if p["primary"] != "east2" || p["transition"] != "" {
				return fmt.Errorf("primary %v, transition %q", p["primary"], p["transition"])
			}
			if st := mustREST(t, 200, http.MethodGet, url("east2", repl, "replicator/service/east/status"), "").payload(); st["role"] != "master" || st["state"] != "ONLINE" {
				return fmt.Errorf("east2's replicator is %v %v", st["role"], st["state"])
			}
			return nil
		})
	})
}

// restOffSite is one site of one host with credentials but
// replicator-rest-api=false, the addresses left at their defaults.
const restOffSite = `[defaults]
install-directory=/opt/continuent
replication-user=tungsten
replication-password=secret
application-user=app_user
application-password=secret
rest-api-admin-user=apiuser
rest-api-admin-pass=secret
replicator-rest-api=false
property=replicator.prometheus.exporter.enabled=false
property=manager.prometheus.exporter.enabled=false
property=connector.prometheus.exporter.enabled=false

[east]
topology=clustered
members=east1
master=east1
connectors=east1
`

// TestRESTReplicatorOff: replicator-rest-api=false leaves the replicator's
// port closed (and says why in its log) while the manager and connector
// answer, on the host's address though the default address is
// 127.0.0.1; rest-api-admin-pass is the password's alias.
func TestRESTReplicatorOff(t *testing.T) {
	s := startSandbox(t, restOffSite)
	base := "http://" + s.addr("east1")
	testutil.Eventually(t, 30*time.Second, func() error {
		a, err := rest(http.MethodGet, base+":8090/api/v2/manager/status", "apiuser", "secret", "")
		if err != nil {
			return err
		}
		if a.code != 200 || a.payload()["coordinator"] != "east1" {
			return fmt.Errorf("manager status: %d %v", a.code, a.body)
		}
		return nil
	})
	mustREST(t, 200, http.MethodGet, base+":8096/api/v2/connector/status", "")
	checkLocked(t, http.MethodGet, base+":8096/api/v2/connector/status")
	for port, why := range map[int]string{8097: "replicator-rest-api=false", 8091: "replicator.prometheus.exporter.enabled=false",
		8092: "manager.prometheus.exporter.enabled=false", 8093: "connector.prometheus.exporter.enabled=false"} {
		if c, err := net.DialTimeout("tcp", fmt.Sprintf("%s:%d", s.addr("east1"), port), time.Second); err == nil {
			c.Close()
			t.Errorf("something listens on port %d with %s", port, why)
		}
	}
	log, err := os.ReadFile(filepath.Join(s.cfg.Dir, "east1", "continuent", "var", "log", "replicator.log"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(log), `msg="REST API off" reason="replicator-rest-api=false"`) {
		t.Errorf("the replicator's log does not say why its REST API is off:\n%s", log)
	}
}
