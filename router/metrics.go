package router

import (
	"context"
	"sort"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/carbidedb/carbide/internal/exporter"
)

// The connector's metrics, read from its proxy at each scrape
// (docs/observability.md lists them).
var (
	descState     = prometheus.NewDesc("carbide_connector_state", "1 for the connector's state (ONLINE, OFFLINE, ONHOLD), 0 for the others.", []string{"site", "state"}, nil)
	descCreated   = prometheus.NewDesc("carbide_connector_connections_created_total", "Application connections the connector made to a datasource.", []string{"site"}, nil)
	descActive    = prometheus.NewDesc("carbide_connector_connections_active", "Application connections open through the connector.", []string{"site"}, nil)
	descDSCreated = prometheus.NewDesc("carbide_connector_datasource_connections_created_total", "Application connections the connector made to the datasource.", []string{"site", "datasource"}, nil)
	descDSActive  = prometheus.NewDesc("carbide_connector_datasource_connections_active", "Application connections open to the datasource.", []string{"site", "datasource"}, nil)
	descBytes     = prometheus.NewDesc("carbide_connector_bytes_total", "Bytes the connector moved: direction to_server (from applications) or to_client (from databases).", []string{"site", "direction"}, nil)
	descRouting   = prometheus.NewDesc("carbide_connector_routing_changes_total", "Routing tables that changed where connections go (state, targets, term, drain, failed datasources).", []string{"site"}, nil)
	descRouteTerm = prometheus.NewDesc("carbide_connector_term", "The site's term (promotions) in the connector's routing table.", []string{"site"}, nil)
	descStalls    = prometheus.NewDesc("carbide_connector_kernel_stalls_total", "Connections moved from the kernel path to the event loops because their bytes stopped moving in the kernel.", []string{"site"}, nil)
)

var connectorStates = []string{StateOnline, StateOffline, StateOnHold}

// proxyStats is what the collector reads of a Proxy.
type proxyStats interface {
	Table() Table
	Counters() Counters
	Bytes() Bytes
	RoutingChanges() uint64
	Stalls() uint64
}

var _ proxyStats = (*Proxy)(nil)

type collector struct {
	site string
	p    proxyStats
}

var _ prometheus.Collector = collector{}

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descState, descCreated, descActive, descDSCreated, descDSActive, descBytes, descRouting, descRouteTerm, descStalls} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	t := c.p.Table()
	n := c.p.Counters()
	b := c.p.Bytes()
	metric := func(d *prometheus.Desc, kind prometheus.ValueType, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, kind, v, append([]string{c.site}, labels...)...)
	}
	exporter.StateSet(ch, descState, t.State, connectorStates, c.site)
	metric(descCreated, prometheus.CounterValue, float64(n.Created))
	metric(descActive, prometheus.GaugeValue, float64(n.Active))
	hosts := make([]string, 0, len(n.PerHost))
	for h := range n.PerHost {
		hosts = append(hosts, h)
	}
	sort.Strings(hosts)
	for _, h := range hosts {
		metric(descDSCreated, prometheus.CounterValue, float64(n.PerHost[h][0]), h)
		metric(descDSActive, prometheus.GaugeValue, float64(n.PerHost[h][1]), h)
	}
	metric(descBytes, prometheus.CounterValue, float64(b.FromClients), "to_server")
	metric(descBytes, prometheus.CounterValue, float64(b.FromServers), "to_client")
	metric(descRouting, prometheus.CounterValue, float64(c.p.RoutingChanges()))
	metric(descRouteTerm, prometheus.GaugeValue, float64(t.Term))
	metric(descStalls, prometheus.CounterValue, float64(c.p.Stalls()))
}

// metricsAddr is where /metrics listens, "" when the exporter is off
// (property=connector.prometheus.exporter.enabled=false).
func (a *Agent) metricsAddr() string {
	return exporter.Addr(a.bound.Host.Bind(""), a.st.ConnectorPrometheusEnabled, a.st.ConnectorPrometheusPort)
}

// startMetrics serves /metrics until ctx ends, in a goroutine wg waits for.
func (a *Agent) startMetrics(ctx context.Context, wg *sync.WaitGroup) {
	addr := a.metricsAddr()
	if addr == "" {
		return
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := exporter.Serve(ctx, addr, collector{site: a.site.Name, p: a.proxy}); err != nil {
			a.log.Error("metrics", "address", addr, "error", err)
		}
	}()
	a.log.Info("metrics", "address", addr)
}
