package daemon

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLogsToFile: an agent writes its log file itself only when `start`
// started it (standard error is that file) and systemd did not.
func TestLogsToFile(t *testing.T) {
	dir := t.TempDir()
	logFile := filepath.Join(dir, "x.log")
	f, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	other, err := os.Create(filepath.Join(dir, "other.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	for _, tc := range []struct {
		name         string
		invocationID string
		stderr       io.Writer
		want         bool
	}{
		{"started by start", "", f, true},
		{"started by its unit", "0123abcd", f, false},
		{"run by hand, stderr elsewhere", "", other, false},
		{"stderr not a file", "", &bytes.Buffer{}, false},
	} {
		if got := logsToFile(tc.invocationID, tc.stderr, logFile); got != tc.want {
			t.Errorf("%s: logsToFile = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestAgentLog: started by start, the agent's log goes through a rotating
// writer (the default limit without an install); by its unit, to
// standard error as given.
func TestAgentLog(t *testing.T) {
	dir := t.TempDir()
	logFile := filepath.Join(dir, "var", "log", "x.log")
	os.MkdirAll(filepath.Dir(logFile), 0o755)
	f, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	t.Setenv(InvocationEnv, "")
	w, closeLog := agentLog(dir, logFile, f)
	r, ok := w.(*Rotating)
	if !ok {
		t.Fatalf("agentLog gave %T, want a *Rotating", w)
	}
	if r.limit != 100<<20 || r.keep != KeepLogs {
		t.Errorf("limit %d keep %d, want log-max-size's default 100 MB and %d files", r.limit, r.keep, KeepLogs)
	}
	io.WriteString(w, "hello\n")
	closeLog()
	if got := readLog(t, logFile); !strings.HasSuffix(got, "hello\n") {
		t.Errorf("x.log = %q", got)
	}
	t.Setenv(InvocationEnv, "0123abcd")
	if w, _ := agentLog(dir, logFile, f); w != io.Writer(f) {
		t.Errorf("under systemd agentLog gave %T, want standard error", w)
	}
}
