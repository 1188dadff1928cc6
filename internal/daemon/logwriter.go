package daemon

import (
	"io"
	"log/slog"
)

// LogWriter turns a library's log lines (memberlist's, raft's) into debug
// records of an agent's logger (nil: dropped).
type LogWriter struct{ Log *slog.Logger }

func (w LogWriter) Write(b []byte) (int, error) {
	if w.Log != nil {
		w.Log.Debug("lib", "line", string(trimNL(b)))
	}
	return len(b), nil
}

func trimNL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

var _ io.Writer = LogWriter{}
