package exporter

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

type states struct{ current string }

var descState = prometheus.NewDesc("test_state", "1 for the current state.", []string{"site", "state"}, nil)

func (s states) Describe(ch chan<- *prometheus.Desc) { ch <- descState }
func (s states) Collect(ch chan<- prometheus.Metric) {
	StateSet(ch, descState, s.current, []string{"ONLINE", "OFFLINE"}, "east")
}

// TestServe: /metrics answers in the text format with every state of the
// set, and Serve returns when its context ends.
func TestServe(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ServeListener(ctx, l, states{"ONHOLD"}) }()
	resp, err := http.Get("http://" + l.Addr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("not Prometheus text: %v\n%s", err, body)
	}
	got := map[string]float64{}
	for _, m := range fams["test_state"].GetMetric() {
		got[m.GetLabel()[1].GetValue()] = m.GetGauge().GetValue()
	}
	if len(got) != 3 || got["ONLINE"] != 0 || got["OFFLINE"] != 0 || got["ONHOLD"] != 1 {
		t.Fatalf("states = %v\n%s", got, body)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestAddr(t *testing.T) {
	if a := Addr("127.0.150.1", true, 8092); a != "127.0.150.1:8092" {
		t.Fatalf("Addr = %q", a)
	}
	if a := Addr("127.0.150.1", false, 8092); a != "" {
		t.Fatalf("a disabled exporter listens on %q", a)
	}
}
