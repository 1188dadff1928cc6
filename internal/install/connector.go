package install

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/carbidedb/carbide/internal/fileutil"
)

// A connector reports its state and counters to the managers over RPC
// (managerpb.ConnectorReport); the one file it writes says it listens:
// its pid, once its listeners are up (what `connector start` waits for).

// ConnectorReadyFile is where the connector of the install at home says
// it listens.
func ConnectorReadyFile(home string) string { return filepath.Join(RunDir(home), "connector.ready") }

// WriteConnectorReady records that the connector of process pid listens.
func WriteConnectorReady(home string, pid int) error {
	return fileutil.WriteAtomic(ConnectorReadyFile(home), []byte(strconv.Itoa(pid)+"\n"), 0o644)
}

// ReadConnectorReady returns the pid of the connector that said it
// listens, if any.
func ReadConnectorReady(home string) (int, bool) {
	b, err := os.ReadFile(ConnectorReadyFile(home))
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid, err == nil
}
