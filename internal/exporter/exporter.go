package exporter

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/carbidedb/carbide/internal/daemon"
)

// Addr is where /metrics listens: host (the host's own address, as every
// listener of an agent binds) and port; "" when the exporter is off.
func Addr(host string, enabled bool, port int) string {
	if !enabled || port == 0 {
		return ""
	}
	return net.JoinHostPort(host, strconv.Itoa(port))
}

// Serve serves /metrics from the collectors on addr until ctx ends.
func Serve(ctx context.Context, addr string, cs ...prometheus.Collector) error {
	l, err := daemon.Listen(ctx, addr)
	if err != nil {
		return err
	}
	return ServeListener(ctx, l, cs...)
}

// ServeListener is Serve on a listener the caller opened; it closes l.
func ServeListener(ctx context.Context, l net.Listener, cs ...prometheus.Collector) error {
	reg := prometheus.NewRegistry()
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			l.Close()
			return err
		}
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	stopped := make(chan struct{})
	defer close(stopped)
	go func() {
		select {
		case <-ctx.Done():
		case <-stopped:
			return
		}
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// StateSet sends one gauge per state in states: 1 for current, 0 for the
// others (Prometheus' state-set pattern: a series per state that never
// disappears). A current state not among states is sent too. labels
// precede the state label in d.
func StateSet(ch chan<- prometheus.Metric, d *prometheus.Desc, current string, states []string, labels ...string) {
	known := false
	for _, s := range states {
		v := 0.0
		if s == current {
			v, known = 1, true
		}
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, append(append([]string(nil), labels...), s)...)
	}
	if !known && current != "" {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, 1, append(append([]string(nil), labels...), current)...)
	}
}

// Bool is 1 for true, 0 for false.
func Bool(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
