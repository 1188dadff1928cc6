package restapi

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/carbidedb/carbide/internal/config"
)

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newTestServer(t *testing.T) (*httptest.Server, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	s, err := New(Config{Component: "replicator", Addr: "127.0.0.1:0", User: "apiuser", Password: "s3cr3t-pw", Host: "east1",
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	s.Handle(http.MethodGet, "status", "ReplicatorStatus", func(r *http.Request) (any, error) {
		switch r.URL.Query().Get("service") {
		case "", "east":
			return map[string]any{"serviceName": "east", "appliedLastSeqno": 7}, nil
		case "busy":
			return nil, status.Error(codes.FailedPrecondition, "the service is going offline; try again")
		case "down":
			return nil, status.Error(codes.Unavailable, "no coordinator")
		case "bad":
			return nil, status.Error(codes.InvalidArgument, "this replicator has no service bad")
		case "none":
			return nil, status.Error(codes.Unimplemented, "not built")
		case "typed":
			return Typed("ServiceList", []string{"east"}), nil
		}
		return nil, status.Error(codes.Internal, "boom")
	})
	s.Handle(http.MethodPost, "service/{svc}/online", "ReplicatorStatus", func(r *http.Request) (any, error) {
		var body struct {
			SkipSeqnos []uint64 `json:"skipSeqnos"`
		}
		if err := DecodeBody(r, &body); err != nil {
			return nil, err
		}
		if r.PathValue("svc") != "east" {
			return nil, Error(http.StatusNotFound, "no service "+r.PathValue("svc"))
		}
		return map[string]any{"serviceName": "east", "skipped": body.SkipSeqnos}, nil
	})
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return ts, logs
}

type answer struct {
	code   int
	header http.Header
	body   map[string]any
}

func do(t *testing.T, method, url, user, pass, body string) answer {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if user != "" || pass != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s %s: Content-Type %q, want application/json", method, url, ct)
	}
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatalf("%s %s: body is not JSON: %v", method, url, err)
	}
	return answer{resp.StatusCode, resp.Header, m}
}

func TestAuthentication(t *testing.T) {
	ts, logs := newTestServer(t)
	url := ts.URL + "/api/v2/replicator/status"
	for _, tc := range []struct {
		name, user, pass string
		want             int
	}{
		{"right", "apiuser", "s3cr3t-pw", 200},
		{"wrong password", "apiuser", "nope-pw", 401},
		{"wrong user", "root", "s3cr3t-pw", 401},
		{"password prefix", "apiuser", "s3cr3t", 401},
		{"none", "", "", 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := do(t, http.MethodGet, url, tc.user, tc.pass, "")
			if a.code != tc.want {
				t.Fatalf("status %d, want %d (%v)", a.code, tc.want, a.body)
			}
			if tc.want != 401 {
				return
			}
			if got := a.header.Get("WWW-Authenticate"); got != `Basic realm="carbide"` {
				t.Errorf("WWW-Authenticate %q", got)
			}
			if msg, _ := a.body["error"].(string); msg == "" || len(a.body) != 1 {
				t.Errorf("error body %v, want {\"error\": sentence}", a.body)
			}
		})
	}
	out := logs.String()
	if strings.Contains(out, "s3cr3t") || strings.Contains(out, "nope-pw") {
		t.Fatalf("a password reached the log:\n%s", out)
	}
	for _, want := range []string{"REST API authentication failed", "user=apiuser", "user=root", "remote=127.0.0.1:", "reason=\"no credentials\""} {
		if !strings.Contains(out, want) {
			t.Errorf("the log lacks %q:\n%s", want, out)
		}
	}
	// Unknown endpoints and wrong methods need credentials too.
	if a := do(t, http.MethodGet, ts.URL+"/api/v2/replicator/nothing", "", "", ""); a.code != 401 {
		t.Errorf("unknown endpoint without credentials: %d", a.code)
	}
	if a := do(t, http.MethodGet, ts.URL+"/api/v2/replicator/nothing", "apiuser", "s3cr3t-pw", ""); a.code != 404 {
		t.Errorf("unknown endpoint: %d", a.code)
	}
	if a := do(t, http.MethodPost, url, "", "", ""); a.code != 401 {
		t.Errorf("wrong method without credentials: %d", a.code)
	}
	if a := do(t, http.MethodPost, url, "apiuser", "s3cr3t-pw", ""); a.code != 405 || a.header.Get("Allow") != "GET" {
		t.Errorf("wrong method: %d, Allow %q", a.code, a.header.Get("Allow"))
	}
}

func TestPingIsOpen(t *testing.T) {
	ts, _ := newTestServer(t)
	for _, p := range []string{"/api/v2/replicator/ping", "/api/v2/ping"} {
		a := do(t, http.MethodGet, ts.URL+p, "", "", "")
		if a.code != 200 || a.body["payloadType"] != "PingPayload" || a.body["payloadVersion"] != "1" {
			t.Fatalf("%s: %d %v", p, a.code, a.body)
		}
		pl := a.body["payload"].(map[string]any)
		if pl["hostName"] != "east1" || pl["component"] != "replicator" || pl["pid"].(float64) <= 0 {
			t.Errorf("%s: payload %v", p, pl)
		}
	}
}

func TestEnvelopeAndErrors(t *testing.T) {
	ts, _ := newTestServer(t)
	get := func(q string) answer {
		return do(t, http.MethodGet, ts.URL+"/api/v2/replicator/status"+q, "apiuser", "s3cr3t-pw", "")
	}
	a := get("?service=east")
	if a.code != 200 || a.body["payloadType"] != "ReplicatorStatus" {
		t.Fatalf("%d %v", a.code, a.body)
	}
	if pl := a.body["payload"].(map[string]any); pl["appliedLastSeqno"].(float64) != 7 {
		t.Errorf("payload %v", pl)
	}
	if a := get("?service=typed"); a.body["payloadType"] != "ServiceList" || a.body["payload"].([]any)[0] != "east" {
		t.Errorf("Typed: %v", a.body)
	}
	for q, want := range map[string]int{"bad": 400, "busy": 409, "down": 503, "none": 501, "other": 500} {
		a := get("?service=" + q)
		if a.code != want {
			t.Errorf("%s: status %d, want %d", q, a.code, want)
		}
		if msg, _ := a.body["error"].(string); msg == "" || strings.Contains(msg, "rpc error") {
			t.Errorf("%s: error body %v", q, a.body)
		}
	}
	post := func(svc, body string) answer {
		return do(t, http.MethodPost, ts.URL+"/api/v2/replicator/service/"+svc+"/online", "apiuser", "s3cr3t-pw", body)
	}
	if a := post("east", ""); a.code != 200 {
		t.Errorf("empty body: %d %v", a.code, a.body)
	}
	if a := post("east", `{"skipSeqnos":[3]}`); a.code != 200 || a.body["payload"].(map[string]any)["skipped"].([]any)[0].(float64) != 3 {
		t.Errorf("body: %d %v", a.code, a.body)
	}
	if a := post("east", `{"skip":1}`); a.code != 400 {
		t.Errorf("unknown field: %d %v", a.code, a.body)
	}
	if a := post("west", ""); a.code != 404 || a.body["error"] != "no service west" {
		t.Errorf("unknown service: %d %v", a.code, a.body)
	}
}

func TestNoCredentialsNoServer(t *testing.T) {
	for _, c := range []Config{{Component: "manager", Addr: "127.0.0.1:0"}, {Component: "manager", Addr: "127.0.0.1:0", User: "u"}, {Component: "manager", Addr: "127.0.0.1:0", Password: "p"}} {
		if _, err := New(c); err != ErrNoCredentials {
			t.Errorf("%+v: %v, want ErrNoCredentials", c, err)
		}
	}
}

func TestServeStopsWithContext(t *testing.T) {
	s, err := New(Config{Component: "connector", Addr: "127.0.0.1:0", User: "u", Password: "p"})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, l) }()
	a := do(t, http.MethodGet, "http://"+l.Addr().String()+"/api/v2/connector/ping", "", "", "")
	if a.code != 200 {
		t.Fatalf("ping: %d", a.code)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after its context ended")
	}
	if c, err := net.Dial("tcp", l.Addr().String()); err == nil {
		c.Close()
		t.Fatal("still listening after shutdown")
	}
}

func TestListenAddr(t *testing.T) {
	sb := &config.HostPlan{Name: "east1", Address: "127.0.1.1", Sandbox: true}
	host := &config.HostPlan{Name: "east1", Address: "10.0.0.1"}
	for _, tc := range []struct {
		h    *config.HostPlan
		addr string
		want string
	}{
		{sb, "0.0.0.0", "127.0.1.1:8090"},
		{sb, "127.0.0.1", "127.0.1.1:8090"},
		{sb, "", "127.0.1.1:8090"},
		{sb, "127.0.1.9", "127.0.1.9:8090"},
		{host, "127.0.0.1", "127.0.0.1:8090"},
		{host, "0.0.0.0", "0.0.0.0:8090"},
	} {
		if got := ListenAddr(tc.h, tc.addr, 8090); got != tc.want {
			t.Errorf("ListenAddr(sandbox=%v, %q) = %s, want %s", tc.h.Sandbox, tc.addr, got, tc.want)
		}
	}
}
