package testutil

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
)

// Logger returns a slog.Logger that writes to t.Log, so that a component's
// logs show up with the test that produced them (and only when it fails or
// runs with -v). Logging after the test has ended is dropped.
func Logger(t testing.TB) *slog.Logger {
	h := &tbHandler{state: &tbState{t: t}}
	t.Cleanup(func() {
		h.state.mu.Lock()
		h.state.done = true
		h.state.mu.Unlock()
	})
	return slog.New(h)
}

type tbState struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

type tbHandler struct {
	state  *tbState
	prefix string // pre-formatted attributes from WithAttrs
	group  string
}

func (h *tbHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *tbHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Level.String())
	b.WriteByte(' ')
	b.WriteString(r.Message)
	b.WriteString(h.prefix)
	r.Attrs(func(a slog.Attr) bool {
		writeAttr(&b, h.group, a)
		return true
	})
	h.state.mu.Lock()
	defer h.state.mu.Unlock()
	if !h.state.done {
		h.state.t.Log(b.String())
	}
	return nil
}

func (h *tbHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	var b strings.Builder
	b.WriteString(h.prefix)
	for _, a := range attrs {
		writeAttr(&b, h.group, a)
	}
	return &tbHandler{state: h.state, prefix: b.String(), group: h.group}
}

func (h *tbHandler) WithGroup(name string) slog.Handler {
	return &tbHandler{state: h.state, prefix: h.prefix, group: h.group + name + "."}
}

func writeAttr(b *strings.Builder, group string, a slog.Attr) {
	if a.Equal(slog.Attr{}) {
		return
	}
	b.WriteByte(' ')
	b.WriteString(group)
	b.WriteString(a.Key)
	b.WriteByte('=')
	b.WriteString(a.Value.Resolve().String())
}
