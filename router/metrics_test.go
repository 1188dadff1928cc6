package router

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/carbidedb/carbide/internal/exporter"

	"github.com/prometheus/client_golang/prometheus"
)

// gather collects c and flattens it: "name{label=value,…}" → value.
func gather(t *testing.T, c prometheus.Collector) map[string]float64 {
	t.Helper()
	m, err := exporter.Gather(c)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestConnectorMetrics: a connection through the proxy is counted in
// total and for its datasource, the bytes it moves in either direction
// (the greeting included) are counted once it has moved them, and only
// tables that route differently count as routing changes.
func TestConnectorMetrics(t *testing.T) {
	p, addr := startProxy(t, ProxyConfig{})
	c := collector{site: "east", p: p}
	if m := gather(t, c); m["carbide_connector_state{site=east,state=ONHOLD}"] != 1 || m["carbide_connector_routing_changes_total{site=east}"] != 0 {
		t.Fatalf("before a table: %v", m)
	}
	online := onlineTo(echoServer(t, []byte("greet")))
	online.Term = 1
	p.SetTable(online)
	p.SetTable(online) // the same table again (a manager's periodic update)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	buf := make([]byte, 5)
	if _, err := io.ReadFull(conn, buf); err != nil {
		t.Fatal(err)
	}
	msg := []byte("select 1; and some more bytes")
	conn.Write(msg)
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(conn, got); err != nil {
		t.Fatal(err)
	}
	waitActive(t, p, 1)
	// The kernel path counts a pair's bytes from when it has registered
	// the pair, which a loaded machine can make come after the answer.
	toServer, toClient := "carbide_connector_bytes_total{direction=to_server,site=east}", "carbide_connector_bytes_total{direction=to_client,site=east}"
	m := gather(t, c)
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); m = gather(t, c) {
		if m[toServer] == float64(len(msg)) && m[toClient] == float64(5+len(msg)) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	for k, want := range map[string]float64{
		"carbide_connector_state{site=east,state=ONLINE}":                                 1,
		"carbide_connector_state{site=east,state=ONHOLD}":                                 0,
		"carbide_connector_connections_created_total{site=east}":                          1,
		"carbide_connector_connections_active{site=east}":                                 1,
		"carbide_connector_datasource_connections_created_total{datasource=db,site=east}": 1,
		"carbide_connector_datasource_connections_active{datasource=db,site=east}":        1,
		"carbide_connector_bytes_total{direction=to_server,site=east}":                    float64(len(msg)),
		"carbide_connector_bytes_total{direction=to_client,site=east}":                    float64(5 + len(msg)),
		"carbide_connector_routing_changes_total{site=east}":                              1,
		"carbide_connector_term{site=east}":                                               1,
		"carbide_connector_kernel_stalls_total{site=east}":                                0,
	} {
		if v, ok := m[k]; !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", k, v, ok, want)
		}
	}
	conn.Close()
	waitActive(t, p, 0)
	moved := online
	moved.Term = 2
	p.SetTable(moved)
	p.SetTable(Table{State: StateOffline, Why: "router offline"})
	deadline := time.Now().Add(5 * time.Second)
	for {
		m = gather(t, c)
		if m["carbide_connector_connections_active{site=east}"] == 0 && m["carbide_connector_routing_changes_total{site=east}"] == 3 &&
			m["carbide_connector_state{site=east,state=OFFLINE}"] == 1 && m["carbide_connector_datasource_connections_active{datasource=db,site=east}"] == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the connection closed and two new tables: %v", m)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestSameRoute(t *testing.T) {
	a := Table{State: StateOnline, Primary: Target{Host: "east1", Addr: "a:1"}, Failed: map[string]bool{"east3": true}}
	b := a
	b.Failed = map[string]bool{"east3": true}
	b.Why = "another reason" // not a routing change
	if !sameRoute(a, b) {
		t.Errorf("equal tables differ")
	}
	b.Failed = map[string]bool{"east2": true}
	if sameRoute(a, b) {
		t.Errorf("a different failed datasource is no change")
	}
	b = a
	b.ReadOnly = Target{Host: "east2", Addr: "b:1"}
	if sameRoute(a, b) {
		t.Errorf("a new read-only target is no change")
	}
}
