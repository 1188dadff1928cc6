package config

import (
	"fmt"
	"net"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// component says which part of an install a key configures; it decides in
// which [defaults.X] section the key may appear.
type component int

const (
	general component = iota
	replicatorKey
	managerKey
	connectorKey
	serviceKey // topology keys: only in service sections
)

func (c component) String() string {
	switch c {
	case replicatorKey:
		return "the replicator"
	case managerKey:
		return "the manager"
	case connectorKey:
		return "the connector"
	case serviceKey:
		return "a service"
	}
	return "every component"
}

// keyDef describes one ini key we understand.
type keyDef struct {
	name   string
	comp   component
	secret bool // masked by tpm reverse and never logged
	repeat bool // may appear several times in a section
	link   bool // may appear in a cluster-slave section too
	set    func(s *Settings, v string) error
}

var keyTable = buildKeyTable()

// maxLogMB bounds log-max-size (1 TB): beyond it a log is not rotated in
// any useful sense.
const maxLogMB = 1 << 20

// aliases maps accepted spellings to the canonical key.
var aliases = map[string]string{
	"rest-api-admin-pass": "rest-api-admin-password",
	"java-mem-size":       "repl-java-mem-size",
}

func buildKeyTable() map[string]keyDef {
	defs := []keyDef{
		{name: "user", set: func(s *Settings, v string) error {
			if v == "" {
				return fmt.Errorf("is empty")
			}
			s.User, s.UserNamed = v, true
			return nil
		}},
		{name: "install-directory", set: setDir(func(s *Settings) *string { return &s.InstallDirectory })},
		{name: "home-directory", set: setDir(func(s *Settings) *string { return &s.InstallDirectory })},
		{name: "executable-prefix", set: setPrefix},
		{name: "profile-script", set: setString(func(s *Settings) *string { return &s.ProfileScript })},
		{name: "replication-user", set: setString(func(s *Settings) *string { return &s.ReplicationUser })},
		{name: "replication-password", secret: true, set: setAny(func(s *Settings) *string { return &s.ReplicationPassword })},
		{name: "replication-port", set: setPort(func(s *Settings) *int { return &s.ReplicationPort })},
		{name: "datasource-mysql-data-directory", set: setDir(func(s *Settings) *string { return &s.DataDirectory })},
		{name: "skip-validation-check", repeat: true, set: func(s *Settings, v string) error {
			s.SkipValidationChecks = append(s.SkipValidationChecks, splitList(v)...)
			return nil
		}},
		{name: "rest-api-admin-user", set: setString(func(s *Settings) *string { return &s.RESTAdminUser })},
		{name: "rest-api-admin-password", secret: true, set: setAny(func(s *Settings) *string { return &s.RESTAdminPassword })},
		{name: "property", repeat: true, set: setProperty},
		{name: "thl-ssl", comp: replicatorKey, set: setBool(func(s *Settings) *bool { return &s.THLSSL })},
		{name: "control-tls-only", comp: replicatorKey, set: setBool(func(s *Settings) *bool { return &s.ControlTLSOnly })},
		{name: "ssl-cert", set: setString(func(s *Settings) *string { return &s.SSLCert })},
		{name: "ssl-key", set: setString(func(s *Settings) *string { return &s.SSLKey })},
		{name: "ssl-ca", set: setString(func(s *Settings) *string { return &s.SSLCA })},
		{name: "java-keystore-path", set: setString(func(s *Settings) *string { return &s.KeystorePath })},
		{name: "java-keystore-password", secret: true, set: setAny(func(s *Settings) *string { return &s.KeystorePassword })},
		{name: "java-truststore-path", set: setString(func(s *Settings) *string { return &s.TruststorePath })},
		{name: "java-truststore-password", secret: true, set: setAny(func(s *Settings) *string { return &s.TruststorePassword })},
		{name: "start", set: setBool(func(s *Settings) *bool { return &s.Start })},
		{name: "start-and-report", set: setBool(func(s *Settings) *bool { return &s.StartAndReport })},
		{name: "log-max-size", set: func(s *Settings, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > maxLogMB {
				return fmt.Errorf("must be the size in MB at which an agent's log is rotated, a whole number from 1 to %d, not %q", maxLogMB, v)
			}
			s.LogMaxSizeMB = n
			return nil
		}},

		{name: "thl-port", comp: replicatorKey, set: setPort(func(s *Settings) *int { return &s.THLPort })},
		{name: "rmi-port", comp: replicatorKey, set: setPort(func(s *Settings) *int { return &s.RMIPort })},
		{name: "repl-java-mem-size", comp: replicatorKey, set: func(s *Settings, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 128 || n > 1<<20 {
				return fmt.Errorf("must be the replicator's memory in MB, from 128, not %q", v)
			}
			s.ReplicatorMemoryMB = n
			return nil
		}},
		{name: "thl-log-retention", comp: replicatorKey, set: setDuration(func(s *Settings) *time.Duration { return &s.THLRetention })},
		{name: "channels", comp: replicatorKey, set: func(s *Settings, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 64 {
				return fmt.Errorf("must be a number of apply channels from 1 to 64, not %q", v)
			}
			s.Channels = n
			return nil
		}},
		{name: "replicator-rest-api", comp: replicatorKey, set: setBool(func(s *Settings) *bool { return &s.ReplicatorREST })},
		{name: "replicator-rest-api-address", comp: replicatorKey, set: setAddress(func(s *Settings) *string { return &s.ReplicatorRESTAddress })},
		{name: "replicator-rest-api-port", comp: replicatorKey, set: setPort(func(s *Settings) *int { return &s.ReplicatorRESTPort })},

		{name: "manager-rpc-port", comp: managerKey, set: setPort(func(s *Settings) *int { return &s.ManagerRPCPort })},
		{name: "manager-gossip-port", comp: managerKey, set: setPort(func(s *Settings) *int { return &s.GossipPort })},
		{name: "manager-raft-port", comp: managerKey, set: setPort(func(s *Settings) *int { return &s.RaftPort })},
		{name: "manager-rest-api-address", comp: managerKey, set: setAddress(func(s *Settings) *string { return &s.ManagerRESTAddress })},
		{name: "manager-rest-api-port", comp: managerKey, set: setPort(func(s *Settings) *int { return &s.ManagerRESTPort })},
		{name: "manager-failover-catchup-timeout", comp: managerKey, set: setDuration(func(s *Settings) *time.Duration { return &s.FailoverCatchUp })},
		{name: "manager-command-wait", comp: managerKey, set: setDuration(func(s *Settings) *time.Duration { return &s.CommandWait })},
		{name: "datasource-boot-script", comp: managerKey, set: setString(func(s *Settings) *string { return &s.BootScript })},

		{name: "application-user", comp: connectorKey, set: setString(func(s *Settings) *string { return &s.ApplicationUser })},
		{name: "application-password", comp: connectorKey, secret: true, set: setAny(func(s *Settings) *string { return &s.ApplicationPassword })},
		{name: "application-port", comp: connectorKey, set: setPort(func(s *Settings) *int { return &s.ApplicationPort })},
		{name: "connector-readonly-listen-port", comp: connectorKey, set: setPort(func(s *Settings) *int { return &s.ReadOnlyPort })},
		{name: "connector-hold-timeout", comp: connectorKey, set: setDuration(func(s *Settings) *time.Duration { return &s.HoldTimeout })},
		{name: "connector-disconnect-timeout", comp: connectorKey, set: setDuration(func(s *Settings) *time.Duration { return &s.DisconnectTimeout })},
		{name: "connector-rest-api-address", comp: connectorKey, set: setAddress(func(s *Settings) *string { return &s.ConnectorRESTAddress })},
		{name: "connector-rest-api-port", comp: connectorKey, set: setPort(func(s *Settings) *int { return &s.ConnectorRESTPort })},

		{name: "topology", comp: serviceKey},
		{name: "members", comp: serviceKey},
		{name: "master", comp: serviceKey},
		{name: "connectors", comp: serviceKey},
		{name: "witnesses", comp: serviceKey},
		{name: "master-dataservice", comp: serviceKey},
		{name: "slave-dataservice", comp: serviceKey},
	}
	defs = append(defs, conflictKeys...)
	m := make(map[string]keyDef, len(defs))
	for _, d := range defs {
		m[d.name] = d
	}
	return m
}

// lookupKey returns the definition of key (after aliases).
func lookupKey(key string) (keyDef, bool) {
	if c, ok := aliases[key]; ok {
		key = c
	}
	d, ok := keyTable[key]
	return d, ok
}

// suggest returns the known key closest to an unknown one, or "".
func suggest(key string) string {
	best, bestDist := "", 4
	names := make([]string, 0, len(keyTable)+len(aliases))
	for k := range keyTable {
		names = append(names, k)
	}
	for k := range aliases {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if d := editDistance(key, k); d < bestDist {
			best, bestDist = k, d
		}
	}
	if bestDist > len(key)/2 {
		return ""
	}
	return best
}

func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func setString(field func(*Settings) *string) func(*Settings, string) error {
	return func(s *Settings, v string) error {
		if v == "" {
			return fmt.Errorf("is empty")
		}
		*field(s) = v
		return nil
	}
}

// setAny accepts any value, the empty one included (passwords).
func setAny(field func(*Settings) *string) func(*Settings, string) error {
	return func(s *Settings, v string) error {
		*field(s) = v
		return nil
	}
}

func setDir(field func(*Settings) *string) func(*Settings, string) error {
	return func(s *Settings, v string) error {
		if !path.IsAbs(v) {
			return fmt.Errorf("must be an absolute path, not %q", v)
		}
		*field(s) = path.Clean(v)
		return nil
	}
}

var prefixRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9]*$`)

func setPrefix(s *Settings, v string) error {
	if !prefixRE.MatchString(v) || len(v) > 16 {
		return fmt.Errorf("must be a short word of letters and digits (like mm), not %q", v)
	}
	s.ExecutablePrefix = v
	return nil
}

func setPort(field func(*Settings) *int) func(*Settings, string) error {
	return func(s *Settings, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("must be a port number from 1 to 65535, not %q", v)
		}
		*field(s) = n
		return nil
	}
}

func parseBool(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "true", "yes", "on", "1":
		return true, nil
	case "false", "no", "off", "0":
		return false, nil
	}
	return false, fmt.Errorf("must be true or false, not %q", v)
}

func setBool(field func(*Settings) *bool) func(*Settings, string) error {
	return func(s *Settings, v string) error {
		b, err := parseBool(v)
		if err != nil {
			return err
		}
		*field(s) = b
		return nil
	}
}

// parseDuration accepts Go durations plus a d (days) suffix; a bare number
// is seconds.
func parseDuration(v string) (time.Duration, error) {
	bad := fmt.Errorf("must be a duration like 30s, 15m, 24h or 7d, not %q", v)
	if v == "" {
		return 0, bad
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 && n < 1<<31 {
		return time.Duration(n) * time.Second, nil
	}
	if days, ok := strings.CutSuffix(v, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 || n > 100000 {
			return 0, bad
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, bad
	}
	return d, nil
}

func setDuration(field func(*Settings) *time.Duration) func(*Settings, string) error {
	return func(s *Settings, v string) error {
		d, err := parseDuration(v)
		if err != nil {
			return err
		}
		*field(s) = d
		return nil
	}
}

func setAddress(field func(*Settings) *string) func(*Settings, string) error {
	return func(s *Settings, v string) error {
		if net.ParseIP(v) == nil && !hostRE.MatchString(v) {
			return fmt.Errorf("must be an IP address or host name, not %q", v)
		}
		*field(s) = v
		return nil
	}
}

func setProperty(s *Settings, v string) error {
	k, val, ok := strings.Cut(v, "=")
	k = strings.TrimSpace(k)
	if !ok || k == "" {
		return fmt.Errorf("must be property=name=value, not property=%s", v)
	}
	val = strings.TrimSpace(val)
	switch k {
	case PropPrometheusPort:
		n, err := strconv.Atoi(val)
		if err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("%s must be a port number from 1 to 65535, not %q", k, val)
		}
		s.PrometheusPort = n
	case PropBlockCommitRowCount:
		n, err := strconv.Atoi(val)
		if err != nil || n < 1 || n > 100000 {
			return fmt.Errorf("%s must be a number of transactions from 1 to 100000, not %q", k, val)
		}
		s.BlockCommitRows = n
	case PropBlockCommitInterval:
		d, err := parseDuration(val)
		if err != nil {
			return fmt.Errorf("%s %v", k, err)
		}
		s.BlockCommitInterval = d
	case PropPrometheusEnabled:
		b, err := parseBool(val)
		if err != nil {
			return fmt.Errorf("%s %v", k, err)
		}
		s.PrometheusEnabled = b
	default:
		if err := setExporterProperty(s, k, val); err != nil {
			return err
		}
	}
	s.Properties[k] = val
	return nil
}

// hostRE matches a host name as it may appear in members=, connectors= and
// the [hosts] map.
var hostRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9_-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9_-]{0,62}))*$`)

// serviceRE matches a service name: it becomes part of schema names
// (tungsten_<service>), so letters, digits and underscores only.
var serviceRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,47}$`)

func splitList(v string) []string {
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
