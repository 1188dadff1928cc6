package agent

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/carbidedb/carbide/internal/exporter"
	"github.com/carbidedb/carbide/rpc/gen/replicatorpb"
)

// The replicator's metrics, read from its services at each scrape
// (docs/observability.md lists them).
var (
	descApplied  = prometheus.NewDesc("carbide_replicator_applied_last_seqno", "The last transaction applied (a master: stored) by the service; -1 for none.", []string{"service"}, nil)
	descLatency  = prometheus.NewDesc("carbide_replicator_applied_latency_seconds", "Commit on the origin to apply here of the last applied transaction.", []string{"service"}, nil)
	descMinStore = prometheus.NewDesc("carbide_replicator_min_stored_seqno", "The first seqno in the service's THL; -1 when empty.", []string{"service"}, nil)
	descMaxStore = prometheus.NewDesc("carbide_replicator_max_stored_seqno", "The last seqno in the service's THL; -1 when empty.", []string{"service"}, nil)
	descState    = prometheus.NewDesc("carbide_replicator_state", "1 for the service's state (ONLINE, OFFLINE:NORMAL, OFFLINE:ERROR, GOING-ONLINE:SYNCHRONIZING, GOING-OFFLINE).", []string{"service", "state"}, nil)
	descRole     = prometheus.NewDesc("carbide_replicator_role", "1 for the service's role (master or slave).", []string{"service", "role"}, nil)
	descError    = prometheus.NewDesc("carbide_replicator_apply_error", "1 while the service is stopped on an error (OFFLINE:ERROR), else 0.", []string{"service"}, nil)
	descErrSeqno = prometheus.NewDesc("carbide_replicator_pending_error_seqno", "The seqno the service stopped on; -1 for none.", []string{"service"}, nil)
	descEvents   = prometheus.NewDesc("carbide_replicator_applied_events_total", "Transactions applied by the service (a master: stored as extracted; a slave: taken from the THL by the applier).", []string{"service"}, nil)
	descBytes    = prometheus.NewDesc("carbide_replicator_applied_bytes_total", "THL bytes of the transactions counted by carbide_replicator_applied_events_total.", []string{"service"}, nil)
	descErrors   = prometheus.NewDesc("carbide_replicator_apply_errors_total", "Times the service stopped on an error (OFFLINE:ERROR).", []string{"service"}, nil)
	descChecks   = prometheus.NewDesc("carbide_replicator_causal_checks_total", "Reads of another stream's tracking row by the applier (causal order across streams).", []string{"service"}, nil)
	descHolds    = prometheus.NewDesc("carbide_replicator_causal_holds_total", "Transactions the applier held until another stream had been applied as much here as at their source.", []string{"service"}, nil)
	descAbandon  = prometheus.NewDesc("carbide_replicator_causal_abandoned_total", "Transactions applied without the stream they waited for, which had not moved for 10 s (a reset history, a stream stopped for good).", []string{"service"}, nil)
	descDelAsk   = prometheus.NewDesc("carbide_replicator_delete_questions_total", "Concurrent-change questions the applier asked another replicator of this host (rows another site may have changed concurrently).", []string{"service"}, nil)
	descDelSkip  = prometheus.NewDesc("carbide_replicator_delete_unchecked_total", "Rows applied without the concurrent-change check because the replicator asked had no answer (stopped, or its extractor 5 s behind): possible divergence, see cluster check.", []string{"service"}, nil)
	descHeld     = prometheus.NewDesc("carbide_replicator_causal_held_seconds_total", "Time the transactions counted by carbide_replicator_causal_holds_total were held.", []string{"service"}, nil)
	descConflict = prometheus.NewDesc("carbide_replicator_conflicts_total", "Conflicts the service's applier met, by decision: applied (the source's change), kept (the target's row), stopped (the service stopped on it).", []string{"service", "decision"}, nil)
)

type collector struct{ a *Agent }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descApplied, descLatency, descMinStore, descMaxStore, descState, descRole, descError, descErrSeqno, descEvents, descBytes, descErrors, descChecks, descHolds, descAbandon, descDelAsk, descDelSkip, descHeld, descConflict} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.a.services {
		st := s.Status()
		name := st.GetService()
		gauge := func(d *prometheus.Desc, v float64, labels ...string) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, append([]string{name}, labels...)...)
		}
		gauge(descApplied, float64(st.GetAppliedLastSeqno()))
		gauge(descLatency, st.GetAppliedLatency())
		gauge(descMinStore, float64(st.GetMinStoredSeqno()))
		gauge(descMaxStore, float64(st.GetMaxStoredSeqno()))
		gauge(descState, 1, st.GetState())
		gauge(descRole, 1, st.GetRole())
		failed := 0.0
		if st.GetStateKind() == replicatorpb.ReplicatorState_REPLICATOR_STATE_OFFLINE_ERROR {
			failed = 1
		}
		gauge(descError, failed)
		gauge(descErrSeqno, float64(st.GetPendingErrorSeqno()))
		n := s.Counters()
		for d, v := range map[*prometheus.Desc]uint64{descEvents: n.AppliedEvents, descBytes: n.AppliedBytes, descErrors: n.Errors, descChecks: n.CausalChecks, descHolds: n.CausalHolds, descAbandon: n.CausalAbandoned,
			descDelAsk: n.DeleteQuestions, descDelSkip: n.DeleteUnchecked} {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), name)
		}
		ch <- prometheus.MustNewConstMetric(descHeld, prometheus.CounterValue, n.CausalHeld.Seconds(), name)
		for decision, v := range n.Conflicts {
			ch <- prometheus.MustNewConstMetric(descConflict, prometheus.CounterValue, float64(v), name, string(decision))
		}
	}
}

// metricsAddr is where /metrics listens, "" when the exporter is off
// (property=replicator.prometheus.exporter.enabled=false).
func (a *Agent) metricsAddr() string {
	st := a.bound.Install.Settings
	return exporter.Addr(a.bound.Host.Bind(""), st.PrometheusEnabled, st.PrometheusPort)
}

// serveMetrics serves /metrics until ctx ends.
func (a *Agent) serveMetrics(ctx context.Context, addr string) error {
	return exporter.Serve(ctx, addr, collector{a})
}
