// Package exporter serves an agent's Prometheus metrics: /metrics on the
// host's address and the port the install's property= lines give
// (docs/observability.md). It holds no metrics of its own: each agent
// passes the collectors that read its state at every scrape.
//
// It imports the Prometheus client, internal/daemon and the standard
// library only.
package exporter
