package config

import "time"

// Settings are the resolved options of one install on one host: [defaults]
// overlaid with the sections that apply to it. Every field has a default
// (see DefaultSettings), so a Settings is always usable.
type Settings struct {
	User string
	// UserNamed is set when the ini names the user (user=), rather than
	// the default applying: only then do the systemd units run the
	// agents as that user.
	UserNamed        bool
	InstallDirectory string // cluster install; for the cross-site install: its home directory
	ExecutablePrefix string
	ProfileScript    string

	ReplicationUser     string
	ReplicationPassword string
	ReplicationPort     int // the database's port
	DataDirectory       string
	BootScript          string // start|stop|restart|status the database

	ApplicationUser     string
	ApplicationPassword string
	ApplicationPort     int
	ReadOnlyPort        int // 0: no read-only listener
	HoldTimeout         time.Duration
	DisconnectTimeout   time.Duration
	// FailoverCatchUp bounds how long a failover waits for its candidate
	// to hold and apply every transaction a replica of the site stored
	// (manager-failover-catchup-timeout).
	FailoverCatchUp time.Duration
	// CommandWait bounds how long an operator command that changes the
	// routing or the policy waits for the running connectors and the live
	// managers to confirm they applied it (manager-command-wait).
	CommandWait time.Duration

	THLPort      int
	RMIPort      int
	THLRetention time.Duration
	// ReplicatorMemoryMB is the replicator's soft memory limit
	// (repl-java-mem-size, Tungsten's heap size): its garbage collector
	// works harder as the heap nears it.
	ReplicatorMemoryMB int
	// Channels is how many blocks a slave applies at once (parallel apply,
	// commits in order).
	Channels int
	// BlockCommitRows and BlockCommitInterval bound an applier block
	// (property=replicator.stage.q-to-dbms.blockCommitRowCount / …Interval);
	// 0 means the applier's defaults (10 transactions, 100 ms).
	BlockCommitRows     int
	BlockCommitInterval time.Duration
	// ConflictPolicy resolves conflicts on apply (repl-conflict-policy);
	// "" leaves it to the topology (conflicts.go).
	ConflictPolicy string
	// ConflictSiteOrder ranks the sites for the converge policy, the one
	// whose writes win first (repl-conflict-site-order); empty: ini order.
	ConflictSiteOrder []string

	ManagerRPCPort int
	GossipPort     int
	RaftPort       int

	RESTAdminUser         string
	RESTAdminPassword     string
	ReplicatorREST        bool
	ReplicatorRESTAddress string
	ReplicatorRESTPort    int
	ManagerRESTAddress    string
	ManagerRESTPort       int
	ConnectorRESTAddress  string
	ConnectorRESTPort     int

	PrometheusEnabled bool
	PrometheusPort    int

	// The manager's and connector's /metrics (exporters.go).
	ManagerPrometheusEnabled   bool
	ManagerPrometheusPort      int
	ConnectorPrometheusEnabled bool
	ConnectorPrometheusPort    int

	THLSSL bool
	// ControlTLSOnly (control-tls-only=true, with thl-ssl=true) makes the
	// control ports (replicator rmi-port, manager-rpc-port) refuse
	// plaintext clients and the agents' and tools' control clients never
	// fall back to plaintext: for once every host runs with thl-ssl=true
	// (tpm update says when).
	ControlTLSOnly         bool
	SSLCert, SSLKey, SSLCA string
	KeystorePath           string
	KeystorePassword       string
	TruststorePath         string
	TruststorePassword     string

	SkipValidationChecks []string
	// Start has tpm install start the agents that do not run: it enables
	// and starts their systemd units when it writes them into the
	// system's unit directory, and runs each agent's wrapper start
	// (never in a sandbox). tpm update enables the units only.
	Start bool
	// StartAndReport starts them as Start does, then has tpm install
	// print each agent's status (a replicator's services).
	StartAndReport bool
	// LogMaxSizeMB is the size in MB past which an agent started without
	// systemd rotates its log (log-max-size).
	LogMaxSizeMB int

	// Properties are the property=key=value lines, later ones overriding
	// earlier ones with the same key.
	Properties map[string]string
}

// DefaultSettings returns the defaults every install starts from (DESIGN.md §3).
func DefaultSettings() Settings {
	return Settings{
		User:                  "tungsten",
		InstallDirectory:      "/opt/continuent",
		ReplicationUser:       "tungsten",
		ReplicationPort:       13306,
		ApplicationPort:       3306,
		HoldTimeout:           30 * time.Second,
		DisconnectTimeout:     5 * time.Second,
		FailoverCatchUp:       60 * time.Second,
		CommandWait:           2 * time.Second,
		THLPort:               2112,
		RMIPort:               10000,
		THLRetention:          7 * 24 * time.Hour,
		ReplicatorMemoryMB:    1024,
		ManagerRPCPort:        9997,
		GossipPort:            7800,
		RaftPort:              7801,
		ReplicatorREST:        true,
		ReplicatorRESTPort:    8097,
		ManagerRESTPort:       8090,
		ConnectorRESTPort:     8096,
		ReplicatorRESTAddress: "127.0.0.1",
		ManagerRESTAddress:    "127.0.0.1",
		ConnectorRESTAddress:  "127.0.0.1",
		PrometheusEnabled:     true,
		PrometheusPort:        8091,
		Start:                 true,
		LogMaxSizeMB:          100,
		Properties:            map[string]string{},

		ManagerPrometheusEnabled:   true,
		ManagerPrometheusPort:      8092,
		ConnectorPrometheusEnabled: true,
		ConnectorPrometheusPort:    8093,
	}
}

func (s Settings) clone() Settings {
	c := s
	c.Properties = make(map[string]string, len(s.Properties))
	for k, v := range s.Properties {
		c.Properties[k] = v
	}
	c.SkipValidationChecks = append([]string(nil), s.SkipValidationChecks...)
	c.ConflictSiteOrder = append([]string(nil), s.ConflictSiteOrder...)
	return c
}

// Property names with a meaning of their own.
const (
	PropPrometheusPort      = "replicator.prometheus.exporter.port"
	PropPrometheusEnabled   = "replicator.prometheus.exporter.enabled"
	PropBlockCommitRowCount = "replicator.stage.q-to-dbms.blockCommitRowCount"
	PropBlockCommitInterval = "replicator.stage.q-to-dbms.blockCommitInterval"
)
