package e2e

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/carbidedb/carbide/internal/exporter"
)

// The exporters' ports: the sample ini's defaults, and its cross-site
// replicator's property line.
const (
	replicatorMetricsPort = 8091
	crossSiteMetricsPort  = 28091
	managerMetricsPort    = 8092
	connectorMetricsPort  = 8093
)

// scrape fetches a /metrics page and parses it with the Prometheus text
// parser: "name{label=value,…}" (labels sorted) → value, counters and
// gauges alike. It returns the page too.
func scrape(url string) (map[string]float64, string, error) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, "", err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, string(body), fmt.Errorf("%s: %s", url, resp.Status)
	}
	m, err := exporter.ParseText(strings.NewReader(string(body)))
	if err != nil {
		return nil, string(body), fmt.Errorf("%s is not Prometheus text: %w", url, err)
	}
	return m, string(body), nil
}

// siteOf is the site of a sample-ini host, and other the other site.
func siteOf(host string) (site, other string) {
	if strings.HasPrefix(host, "east") {
		return "east", "west"
	}
	return "west", "east"
}

// TestMetricsEndpoints: on the guide's sample topology every agent of
// every host serves /metrics in Prometheus text format (the cluster
// replicator on 8091, the cross-site one on 28091, the manager on 8092,
// the connector on 8093), and after writes on both sites, one of them
// through a connector, the key metrics say so.
func TestMetricsEndpoints(t *testing.T) {
	s := startMSAA(t)
	app := s.viaConnector("east1")
	for i := 0; i < 20; i++ {
		if _, err := app.Exec("INSERT INTO app.east (n) VALUES (?)", i); err != nil {
			t.Fatalf("insert through east1's connector: %v", err)
		}
	}
	s.exec("west1", "INSERT INTO app.west (n) VALUES (1), (2)")
	waitRows(s, allHosts, "app.east", 20)
	waitRows(s, allHosts, "app.west", 2)

	check := func(host string, port int, want func(m map[string]float64) error) error {
		m, _, err := scrape(fmt.Sprintf("http://%s:%d/metrics", s.addr(host), port))
		if err != nil {
			return fmt.Errorf("%s:%d: %w", host, port, err)
		}
		if err := want(m); err != nil {
			return fmt.Errorf("%s:%d: %w", host, port, err)
		}
		return nil
	}
	positive := func(m map[string]float64, keys ...string) error {
		for _, k := range keys {
			if v, ok := m[k]; !ok || v <= 0 {
				return fmt.Errorf("%s = %v (present %v), want > 0", k, v, ok)
			}
		}
		return nil
	}
	equal := func(m map[string]float64, want map[string]float64) error {
		for k, w := range want {
			if v, ok := m[k]; !ok || v != w {
				return fmt.Errorf("%s = %v (present %v), want %v", k, v, ok, w)
			}
		}
		return nil
	}
	var last error
	deadline := time.Now().Add(30 * time.Second)
	for {
		last = nil
		coordinators := map[string]float64{}
		for _, h := range allHosts {
			site, other := siteOf(h)
			h := h
			for _, c := range []struct {
				port int
				want func(map[string]float64) error
			}{
				{replicatorMetricsPort, func(m map[string]float64) error {
					if err := equal(m, map[string]float64{"carbide_replicator_state{service=" + site + ",state=ONLINE}": 1,
						"carbide_replicator_apply_errors_total{service=" + site + "}": 0}); err != nil {
						return err
					}
					return positive(m, "carbide_replicator_applied_events_total{service="+site+"}", "carbide_replicator_applied_bytes_total{service="+site+"}")
				}},
				{crossSiteMetricsPort, func(m map[string]float64) error {
					if err := equal(m, map[string]float64{"carbide_replicator_state{service=" + other + ",state=ONLINE}": 1,
						"carbide_replicator_role{role=slave,service=" + other + "}": 1}); err != nil {
						return err
					}
					return positive(m, "carbide_replicator_applied_events_total{service="+other+"}", "carbide_replicator_applied_bytes_total{service="+other+"}",
						"carbide_replicator_applied_last_seqno{service="+other+"}")
				}},
				{managerMetricsPort, func(m map[string]float64) error {
					want := map[string]float64{"carbide_manager_policy{policy=AUTOMATIC,site=" + site + "}": 1,
						"carbide_manager_quorum{site=" + site + "}": 1, "carbide_manager_coordinator_known{site=" + site + "}": 1,
						"carbide_manager_members{site=" + site + ",state=alive}": 3, "carbide_manager_term{site=" + site + "}": 1,
						"carbide_manager_datasource_primary{datasource=" + site + "1,site=" + site + "}": 1}
					for i := 1; i <= 3; i++ {
						want[fmt.Sprintf("carbide_manager_datasource_state{datasource=%s%d,site=%s,state=ONLINE}", site, i, site)] = 1
						want[fmt.Sprintf("carbide_manager_router_state{router=%s%d,site=%s,state=ONLINE}", site, i, site)] = 1
					}
					coordinators[site] += m["carbide_manager_coordinator{site="+site+"}"]
					return equal(m, want)
				}},
				{connectorMetricsPort, func(m map[string]float64) error {
					if err := equal(m, map[string]float64{"carbide_connector_state{site=" + site + ",state=ONLINE}": 1}); err != nil {
						return err
					}
					if h != "east1" {
						return nil
					}
					return positive(m, "carbide_connector_connections_created_total{site=east}", "carbide_connector_connections_active{site=east}",
						"carbide_connector_datasource_connections_created_total{datasource=east1,site=east}",
						"carbide_connector_bytes_total{direction=to_server,site=east}", "carbide_connector_bytes_total{direction=to_client,site=east}",
						"carbide_connector_routing_changes_total{site=east}")
				}},
			} {
				if err := check(h, c.port, c.want); err != nil && last == nil {
					last = err
				}
			}
		}
		if last == nil && (coordinators["east"] != 1 || coordinators["west"] != 1) {
			last = fmt.Errorf("coordinators: %v, want one per site", coordinators)
		}
		if last == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if last != nil {
		t.Fatal(last)
	}
	for _, k := range []struct {
		host   string
		port   int
		metric string
	}{
		{"east1", connectorMetricsPort, "carbide_connector_connections_created_total{site=east}"},
		{"east1", connectorMetricsPort, "carbide_connector_bytes_total{direction=to_server,site=east}"},
		{"east1", connectorMetricsPort, "carbide_connector_bytes_total{direction=to_client,site=east}"},
		{"east2", replicatorMetricsPort, "carbide_replicator_applied_events_total{service=east}"},
		{"east2", replicatorMetricsPort, "carbide_replicator_applied_bytes_total{service=east}"},
		{"west2", crossSiteMetricsPort, "carbide_replicator_applied_events_total{service=east}"},
	} {
		m, _, err := scrape(fmt.Sprintf("http://%s:%d/metrics", s.addr(k.host), k.port))
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s:%d %s = %v", k.host, k.port, k.metric, m[k.metric])
	}

	// A switch: the coordinator counts it, every manager of the site sees
	// the new term, the connectors a new routing table.
	before, _, err := scrape(fmt.Sprintf("http://%s:%d/metrics", s.addr("east1"), connectorMetricsPort))
	if err != nil {
		t.Fatal(err)
	}
	s.mustCctrl("east1", "switch")
	deadline = time.Now().Add(30 * time.Second)
	for {
		last = nil
		switches := 0.0
		for _, h := range eastHosts {
			m, _, err := scrape(fmt.Sprintf("http://%s:%d/metrics", s.addr(h), managerMetricsPort))
			if err != nil {
				t.Fatal(err)
			}
			switches += m["carbide_manager_transitions_total{kind=switch,result=completed,site=east}"]
			if v := m["carbide_manager_term{site=east}"]; v != 2 && last == nil {
				last = fmt.Errorf("%s: carbide_manager_term = %v after a switch, want 2", h, v)
			}
			if v := m["carbide_manager_datasource_primary{datasource=east1,site=east}"]; v != 0 && last == nil {
				last = fmt.Errorf("%s: east1 is still the primary", h)
			}
		}
		if switches != 1 && last == nil {
			last = fmt.Errorf("the site's managers count %v completed switches, want 1", switches)
		}
		m, _, err := scrape(fmt.Sprintf("http://%s:%d/metrics", s.addr("east1"), connectorMetricsPort))
		if err != nil {
			t.Fatal(err)
		}
		key := "carbide_connector_routing_changes_total{site=east}"
		if m[key] <= before[key] || m["carbide_connector_term{site=east}"] != 2 {
			if last == nil {
				last = fmt.Errorf("east1's connector: routing changes %v (before the switch %v), term %v", m[key], before[key], m["carbide_connector_term{site=east}"])
			}
		}
		if last == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if last != nil {
		t.Fatal(last)
	}
}
