package install

import (
	"encoding/json"
	"os"
	"path/filepath"
	"time"

	"github.com/carbidedb/carbide/internal/fileutil"
)

// ConnectorStatus is what a connector reports to its host's manager, in
// ConnectorStatusFile, every 500 ms and on every state change.
type ConnectorStatus struct {
	PID     int64  `json:"pid"`
	State   string `json:"state"` // ONLINE, OFFLINE, ONHOLD
	Created int64  `json:"created"`
	Active  int64  `json:"active"`
	// PerHost are the connections per datasource: created, active.
	PerHost map[string][2]int64 `json:"per_host,omitempty"`
	At      time.Time           `json:"at"`
}

// ConnectorStatusFile is where the connector of the install at home reports.
func ConnectorStatusFile(home string) string { return filepath.Join(RunDir(home), "connector.json") }

// WriteConnectorStatus replaces the report of the install at home.
func WriteConnectorStatus(home string, s ConnectorStatus) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	return fileutil.WriteAtomic(ConnectorStatusFile(home), b, 0o644)
}

// ReadConnectorStatus returns the connector's last report if it is more
// recent than maxAge (a stopped connector's report is stale).
func ReadConnectorStatus(home string, maxAge time.Duration) (ConnectorStatus, bool) {
	var s ConnectorStatus
	b, err := os.ReadFile(ConnectorStatusFile(home))
	if err != nil || json.Unmarshal(b, &s) != nil || time.Since(s.At) > maxAge {
		return ConnectorStatus{}, false
	}
	return s, true
}
