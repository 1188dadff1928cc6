package config

import (
	"fmt"
	"strconv"
)

// The manager's and connector's Prometheus exporters, set like the
// replicator's with property= lines (docs/observability.md).
const (
	PropManagerPrometheusPort      = "manager.prometheus.exporter.port"
	PropManagerPrometheusEnabled   = "manager.prometheus.exporter.enabled"
	PropConnectorPrometheusPort    = "connector.prometheus.exporter.port"
	PropConnectorPrometheusEnabled = "connector.prometheus.exporter.enabled"
)

// setExporterProperty sets the exporter a property names; other
// properties are left alone.
func setExporterProperty(s *Settings, k, val string) error {
	port := func(p *int) error {
		n, err := strconv.Atoi(val)
		if err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("%s must be a port number from 1 to 65535, not %q", k, val)
		}
		*p = n
		return nil
	}
	enabled := func(p *bool) error {
		b, err := parseBool(val)
		if err != nil {
			return fmt.Errorf("%s %v", k, err)
		}
		*p = b
		return nil
	}
	switch k {
	case PropManagerPrometheusPort:
		return port(&s.ManagerPrometheusPort)
	case PropManagerPrometheusEnabled:
		return enabled(&s.ManagerPrometheusEnabled)
	case PropConnectorPrometheusPort:
		return port(&s.ConnectorPrometheusPort)
	case PropConnectorPrometheusEnabled:
		return enabled(&s.ConnectorPrometheusEnabled)
	}
	return nil
}
