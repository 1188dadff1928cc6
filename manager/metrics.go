package manager

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/carbidedb/carbide/internal/exporter"
	"github.com/carbidedb/carbide/manager/policy"
	"github.com/carbidedb/carbide/rpc/gen/managerpb"
	"github.com/carbidedb/carbide/rpc/reason"
)

// The manager's metrics, read from its view of the site at each scrape
// (docs/observability.md lists them).
var (
	descPolicy      = prometheus.NewDesc("carbide_manager_policy", "1 for the site's policy (AUTOMATIC, MAINTENANCE), 0 for the other.", []string{"site", "policy"}, nil)
	descCoordinator = prometheus.NewDesc("carbide_manager_coordinator", "1 while this manager is the site's coordinator.", []string{"site"}, nil)
	descHasCoord    = prometheus.NewDesc("carbide_manager_coordinator_known", "1 while this manager knows a coordinator (0: no quorum, or an election).", []string{"site"}, nil)
	descQuorum      = prometheus.NewDesc("carbide_manager_quorum", "1 while this manager is in touch with the coordinator through raft; on the primary's manager, while it holds the primary's lease.", []string{"site"}, nil)
	descMembers     = prometheus.NewDesc("carbide_manager_members", "The site's managers (witnesses included) by state as this manager sees them.", []string{"site", "state"}, nil)
	descTerm        = prometheus.NewDesc("carbide_manager_term", "The site's term: 1 at the start, one more at every promotion (switch or failover); replicated.", []string{"site"}, nil)
	descInTransit   = prometheus.NewDesc("carbide_manager_transition", "1 while a switch or failover is under way.", []string{"site", "kind"}, nil)
	descTransitions = prometheus.NewDesc("carbide_manager_transitions_total", "Switches and failovers this manager ran as coordinator, by result (completed, failed, refused).", []string{"site", "kind", "result"}, nil)
	descDSState     = prometheus.NewDesc("carbide_manager_datasource_state", "1 for the datasource's state (ONLINE, OFFLINE, SHUNNED, FAILED), 0 for the others.", []string{"site", "datasource", "state"}, nil)
	descDSPrimary   = prometheus.NewDesc("carbide_manager_datasource_primary", "1 for the site's primary, 0 for a replica.", []string{"site", "datasource"}, nil)
	descDSApplied   = prometheus.NewDesc("carbide_manager_datasource_applied_seqno", "The last seqno the datasource's replicator applied, as its manager reports; -1 for none.", []string{"site", "datasource"}, nil)
	descDSLatency   = prometheus.NewDesc("carbide_manager_datasource_applied_latency_seconds", "The datasource's applied latency, as its manager reports.", []string{"site", "datasource"}, nil)
	descDSAlive     = prometheus.NewDesc("carbide_manager_datasource_manager_alive", "1 while the datasource's manager reports.", []string{"site", "datasource"}, nil)
	descAlert       = prometheus.NewDesc("carbide_manager_alert_active", "1 for each alert whose condition holds now (cctrl ls shows them), by key.", []string{"site", "key"}, nil)
	descReaders     = prometheus.NewDesc("carbide_manager_cross_site_readers_online", "1 while another site's host reads this site through an ONLINE cross-site service, 0 otherwise (seen by this site's coordinator).", []string{"site", "reader_site", "host", "service"}, nil)
	descCross       = prometheus.NewDesc("carbide_manager_cross_site_online", "1 while a host's cross-site service (named after the site it reads) is ONLINE, 0 otherwise.", []string{"site", "host", "service"}, nil)
	descRouter      = prometheus.NewDesc("carbide_manager_router_state", "1 for the connector's administrative state (ONLINE, OFFLINE), 0 for the other.", []string{"site", "router", "state"}, nil)
)

var (
	policies        = []string{policy.Automatic, policy.Maintenance}
	datasourceState = []string{policy.Online, policy.Offline, policy.Shunned, policy.Failed}
	routerStates    = []string{policy.Online, policy.Offline}
	memberStates    = []string{"alive", "suspect", "dead", "left", "unknown"}
	metricKinds     = []string{policy.Switch, policy.Failover}
	results         = []string{"completed", "failed", "refused"}
)

// transitionCounts counts the switches and failovers this manager ran.
type transitionCounts struct {
	n [2][3]atomic.Uint64 // by kind, result (metricKinds, results)
}

// doSwitch is actions' Switch, counted.
func (a *Agent) doSwitch(ctx context.Context, to string) (_ []string, err error) {
	defer a.transitions.count(policy.Switch, &err)
	return a.act.Switch(ctx, to)
}

// doFailover is actions' Failover, counted.
func (a *Agent) doFailover(ctx context.Context, to, why string, force bool) (_ []string, err error) {
	defer a.transitions.count(policy.Failover, &err)
	return a.act.Failover(ctx, to, why, force)
}

// count records the outcome of a switch or failover: deferred with the
// operation's error.
func (t *transitionCounts) count(kind string, err *error) {
	k := 0
	if kind == policy.Failover {
		k = 1
	}
	switch {
	case *err == nil:
		t.n[k][0].Add(1)
	case reason.Refused(*err):
		t.n[k][2].Add(1)
	default:
		t.n[k][1].Add(1)
	}
}

// collector reads the site's status and this manager's counts.
type collector struct {
	site        string
	status      func() *managerpb.StatusReply
	quorum      func() bool
	self        string
	transitions *transitionCounts
	// cross is every host's cross-site services' states, by host.
	cross func() map[string]map[string]string
	// readers is the other sites' hosts reading this site ("site/host").
	readers func() map[string]string
}

var _ prometheus.Collector = collector{}

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descPolicy, descCoordinator, descHasCoord, descQuorum, descMembers, descTerm, descInTransit,
		descTransitions, descDSState, descDSPrimary, descDSApplied, descDSLatency, descDSAlive, descRouter, descCross, descReaders, descAlert} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	r := c.status()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, append([]string{c.site}, labels...)...)
	}
	if r.GetInitialized() {
		exporter.StateSet(ch, descPolicy, r.GetPolicy(), policies, c.site)
	}
	gauge(descCoordinator, exporter.Bool(r.GetCoordinator() == c.self))
	gauge(descHasCoord, exporter.Bool(r.GetCoordinator() != ""))
	gauge(descQuorum, exporter.Bool(c.quorum()))
	byState := map[string]int{}
	for _, m := range r.GetMembers() {
		byState[m.GetState()]++
	}
	for _, s := range memberStates {
		gauge(descMembers, float64(byState[s]), s)
	}
	gauge(descTerm, float64(r.GetTerm()))
	for _, k := range metricKinds {
		gauge(descInTransit, exporter.Bool(r.GetTransitionKind() == transitionKinds[k]), k)
	}
	for i, k := range metricKinds {
		for j, res := range results {
			ch <- prometheus.MustNewConstMetric(descTransitions, prometheus.CounterValue, float64(c.transitions.n[i][j].Load()), c.site, k, res)
		}
	}
	for _, d := range r.GetDatasources() {
		h := d.GetHost()
		if d.GetState() != "" {
			exporter.StateSet(ch, descDSState, d.GetState(), datasourceState, c.site, h)
		}
		gauge(descDSPrimary, exporter.Bool(r.GetInitialized() && h == r.GetPrimary()), h)
		gauge(descDSApplied, float64(d.GetAppliedSeqno()), h)
		gauge(descDSLatency, d.GetAppliedLatency(), h)
		gauge(descDSAlive, exporter.Bool(d.GetManagerAlive()), h)
	}
	for _, rt := range r.GetRouters() {
		exporter.StateSet(ch, descRouter, rt.GetState(), routerStates, c.site, rt.GetHost())
	}
	for _, al := range r.GetActiveAlerts() {
		gauge(descAlert, 1, al.GetKey())
	}
	if c.readers != nil {
		for k, state := range c.readers() {
			site, host, _ := strings.Cut(k, "/")
			gauge(descReaders, exporter.Bool(state == "ONLINE"), site, host, c.site)
		}
	}
	if c.cross != nil {
		for h, services := range c.cross() {
			for svc, state := range services {
				gauge(descCross, exporter.Bool(state == "ONLINE"), h, svc)
			}
		}
	}
}

// metricsAddr is where /metrics listens, "" when the exporter is off
// (property=manager.prometheus.exporter.enabled=false).
func (a *Agent) metricsAddr() string {
	return exporter.Addr(a.bound.Host.Bind(""), a.st.ManagerPrometheusEnabled, a.st.ManagerPrometheusPort)
}

// startMetrics serves /metrics until ctx ends, in a goroutine wg waits for.
func (a *Agent) startMetrics(ctx context.Context, wg *sync.WaitGroup) {
	addr := a.metricsAddr()
	if addr == "" {
		return
	}
	c := collector{site: a.site.Name, self: a.self, status: a.status, transitions: &a.transitions, quorum: func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		return a.hadQuorum
	}, readers: a.crossReaders, cross: func() map[string]map[string]string {
		out := map[string]map[string]string{}
		for h, f := range a.allFacts() {
			if len(f.Cross) > 0 {
				out[h] = f.Cross
			}
		}
		return out
	}}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := exporter.Serve(ctx, addr, c); err != nil {
			a.log.Error("metrics", "address", addr, "error", err)
		}
	}()
	a.log.Info("metrics", "address", addr)
}
