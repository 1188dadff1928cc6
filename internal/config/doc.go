// Package config is the tungsten.ini model shared by tpm, the sandbox and
// every agent.
//
// Load reads one or more ini files (the ones tpm reads: --ini a,b, else
// /etc/tungsten/tungsten.ini) into a Config: the [defaults] sections, the
// services in file order (topology=clustered sites and topology=cluster-slave
// links between them), the optional [hosts] address map and [sandbox]
// section. Load validates everything it can without touching the network:
// unknown keys, malformed values, duplicate hosts, a master that is not a
// member, a cluster-slave naming an unknown service, two listeners on one
// port of one host. Every problem is one sentence naming the file, the
// section, the key and the fix.
//
// Config.Plan expands a valid Config into a per-host plan: which processes
// each host runs (manager, cluster replicator, connector, cross-site
// replicator), in which install directories, on which ports, with which
// replication services.
//
// Invariants: a Config returned without error always yields a Plan; nothing
// in this package does I/O except reading the ini files. It imports only the
// standard library and gopkg.in/ini.v1.
package config
