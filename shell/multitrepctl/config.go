package multitrepctl

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Output formats.
var outputs = []string{"info", "tab", "list", "json", "name"}

// Config is one multi_trepctl invocation's options.
type Config struct {
	ByService   bool
	Hosts       []string // only these hosts; all when empty
	Services    []string // only these services; all when empty
	Fields      []string // columns; the command's defaults when empty
	Output      string
	HideHeaders bool
	SortBy      string
	INI         string // a tungsten.ini (comma-separated list) instead of the install's
	Timeout     time.Duration
	// HeartbeatName names the heartbeats the heartbeat command writes.
	HeartbeatName string
}

// DefaultConfig returns the defaults of the command line.
func DefaultConfig() Config {
	return Config{Output: "info", Timeout: DefaultTimeout, HeartbeatName: "NONE"}
}

// Validate checks what can be checked without the configuration: the
// output format, the timeout and the spelling of field names.
func (c *Config) Validate() error {
	ok := false
	for _, o := range outputs {
		ok = ok || c.Output == o
	}
	if !ok {
		return fmt.Errorf("--output takes %s or %s, not %q", strings.Join(outputs[:len(outputs)-1], ", "), outputs[len(outputs)-1], c.Output)
	}
	if c.Timeout <= 0 {
		return fmt.Errorf("--timeout must be positive, not %s", c.Timeout)
	}
	var fields []string
	for _, f := range c.Fields {
		if f = strings.ToLower(f); !slices.Contains(fields, f) {
			fields = append(fields, f)
		}
	}
	c.Fields = fields
	c.SortBy = strings.ToLower(strings.TrimSpace(c.SortBy))
	return nil
}
