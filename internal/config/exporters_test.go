package config

import (
	"strings"
	"testing"
)

func TestExporterDefaults(t *testing.T) {
	cfg, err := Load(sampleINI)
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.ClusterSettings("east")
	if !s.ManagerPrometheusEnabled || s.ManagerPrometheusPort != 8092 || !s.ConnectorPrometheusEnabled || s.ConnectorPrometheusPort != 8093 {
		t.Fatalf("exporter settings = manager %v:%d, connector %v:%d, want on at 8092 and 8093",
			s.ManagerPrometheusEnabled, s.ManagerPrometheusPort, s.ConnectorPrometheusEnabled, s.ConnectorPrometheusPort)
	}
}

func TestExporterProperties(t *testing.T) {
	in := "[defaults]\nproperty=manager.prometheus.exporter.port=18092\nproperty=connector.prometheus.exporter.enabled=false\n" +
		"property=connector.prometheus.exporter.port=18093\n" +
		"[east]\ntopology=clustered\nmembers=e1\nmaster=e1\nconnectors=e1\nproperty=manager.prometheus.exporter.enabled=no\n"
	cfg, err := Parse(Source{"x", []byte(in)})
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.ClusterSettings("east")
	if s.ManagerPrometheusEnabled || s.ManagerPrometheusPort != 18092 || s.ConnectorPrometheusEnabled || s.ConnectorPrometheusPort != 18093 {
		t.Fatalf("exporter settings = manager %v:%d, connector %v:%d", s.ManagerPrometheusEnabled, s.ManagerPrometheusPort,
			s.ConnectorPrometheusEnabled, s.ConnectorPrometheusPort)
	}
	if !s.PrometheusEnabled || s.PrometheusPort != 8091 {
		t.Fatalf("the replicator's exporter changed: %v:%d", s.PrometheusEnabled, s.PrometheusPort)
	}
	if s.Properties[PropManagerPrometheusPort] != "18092" {
		t.Fatalf("properties = %v", s.Properties)
	}
}

func TestExporterPropertyErrors(t *testing.T) {
	for prop, want := range map[string]string{
		"manager.prometheus.exporter.port=0":          "manager.prometheus.exporter.port must be a port number from 1 to 65535",
		"connector.prometheus.exporter.port=http":     "connector.prometheus.exporter.port must be a port number from 1 to 65535",
		"manager.prometheus.exporter.enabled=maybe":   "manager.prometheus.exporter.enabled must be true or false",
		"connector.prometheus.exporter.enabled=40000": "connector.prometheus.exporter.enabled must be true or false",
	} {
		in := "[defaults]\nproperty=" + prop + "\n[east]\ntopology=clustered\nmembers=e1\nmaster=e1\n"
		if _, err := Parse(Source{"x", []byte(in)}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want %q", prop, err, want)
		}
	}
}

// TestExporterPortClash: a manager's or connector's exporter on a port
// another listener of the host uses is refused, naming the property.
func TestExporterPortClash(t *testing.T) {
	for prop, want := range map[string]string{
		"manager.prometheus.exporter.port=8091":   "by property=replicator.prometheus.exporter.port of the cluster replicator and by property=manager.prometheus.exporter.port of the manager",
		"connector.prometheus.exporter.port=8092": "by property=manager.prometheus.exporter.port of the manager and by property=connector.prometheus.exporter.port of the connector",
	} {
		in := "[defaults]\nproperty=" + prop + "\n[east]\ntopology=clustered\nmembers=e1\nmaster=e1\nconnectors=e1\n"
		_, err := Parse(Source{"x", []byte(in)})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want %q", prop, err, want)
		}
	}
	// Turned off, its port is free for another listener.
	in := "[defaults]\nproperty=manager.prometheus.exporter.enabled=false\nproperty=connector.prometheus.exporter.port=8092\n[east]\ntopology=clustered\nmembers=e1\nmaster=e1\nconnectors=e1\n"
	if _, err := Parse(Source{"x", []byte(in)}); err != nil {
		t.Fatalf("a disabled exporter's port clashed: %v", err)
	}
}
