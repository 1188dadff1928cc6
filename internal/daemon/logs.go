package daemon

import (
	"fmt"
	"io"
	"os"

	"github.com/carbidedb/carbide/internal/config"
	"github.com/carbidedb/carbide/internal/install"
)

// InvocationEnv is set by systemd in the environment of the process a unit
// starts: an agent that sees it logs to its standard error, which journald
// keeps.
const InvocationEnv = "INVOCATION_ID"

// logsToFile tells whether a foreground agent writes its log file itself:
// when `start` started it (its standard error is its log file) and not its
// systemd unit. Run by hand, or by its unit, it logs to standard error.
func logsToFile(invocationID string, stderr io.Writer, logFile string) bool {
	if invocationID != "" {
		return false
	}
	f, ok := stderr.(*os.File)
	if !ok {
		return false
	}
	a, err := f.Stat()
	if err != nil || !a.Mode().IsRegular() {
		return false
	}
	b, err := os.Stat(logFile)
	return err == nil && os.SameFile(a, b)
}

// agentLog returns where the foreground agent of the install at home logs,
// and what closes it: errOut, unless logsToFile; then logFile through a
// Rotating writer of the install's log-max-size keeping KeepLogs files,
// with standard output and error following each new file when errOut is
// the process's standard error.
func agentLog(home, logFile string, errOut io.Writer) (io.Writer, func()) {
	if !logsToFile(os.Getenv(InvocationEnv), errOut, logFile) {
		return errOut, func() {}
	}
	limit := int64(logMaxSizeMB(home)) << 20
	var onOpen func(*os.File)
	if errOut == io.Writer(os.Stderr) {
		onOpen = followStdio
	}
	w, err := OpenRotating(logFile, limit, KeepLogs, onOpen)
	if err != nil {
		fmt.Fprintf(errOut, "cannot rotate %s (%v); logging to it without rotation\n", logFile, err)
		return errOut, func() {}
	}
	return w, func() { w.Close() }
}

// logMaxSizeMB is the install's log-max-size; the default when the install
// cannot be read (the agent then says why itself).
func logMaxSizeMB(home string) int {
	if b, err := install.Open(home); err == nil {
		return b.Install.Settings.LogMaxSizeMB
	}
	return config.DefaultSettings().LogMaxSizeMB
}
