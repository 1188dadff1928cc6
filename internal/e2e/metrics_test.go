package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/carbidedb/carbide/internal/exporter"

	"github.com/carbidedb/carbide/internal/testutil"
)

// metrics fetches and parses a Prometheus text page.
func metrics(t *testing.T, url string) (map[string]float64, error) {
	t.Helper()
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", url, resp.Status)
	}
	m, err := exporter.ParseText(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("%s is not Prometheus text: %w", url, err)
	}
	return m, nil
}

// TestReplicatorMetrics: with the exporter on (the ini's default), each
// replicator serves /metrics on replicator.prometheus.exporter.port (8091
// here) in Prometheus text format, with its services' positions and
// states; applied seqnos follow the primary's writes.
func TestReplicatorMetrics(t *testing.T) {
	s := startSandbox(t, strings.Replace(oneSite, "property=replicator.prometheus.exporter.enabled=false\n", "", 1))
	s.exec("east1", "CREATE DATABASE app", "CREATE TABLE app.t (id INT PRIMARY KEY)", "INSERT INTO app.t VALUES (1)")
	testutil.Eventually(t, 20*time.Second, func() error {
		// The primary's own position, read each time: right after the
		// writes its extractor may not have taken the last one yet.
		seqno := s.field("east1", "appliedLastSeqno")
		for _, h := range eastHosts {
			m, err := metrics(t, "http://"+s.addr(h)+":8091/metrics")
			if err != nil {
				return err
			}
			role := "slave"
			if h == "east1" {
				role = "master"
			}
			for key, want := range map[string]string{
				"carbide_replicator_applied_last_seqno{service=east}":     seqno,
				"carbide_replicator_state{service=east,state=ONLINE}":     "1",
				"carbide_replicator_role{role=" + role + ",service=east}": "1",
				"carbide_replicator_apply_error{service=east}":            "0",
			} {
				if got := fmt.Sprint(m[key]); got != want {
					return fmt.Errorf("%s: %s = %s, want %s", h, key, got, want)
				}
			}
		}
		return nil
	})
}
