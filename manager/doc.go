// Package manager is the per-host cluster agent: membership (memberlist),
// consensus state (raft), health probes, the policy state machine, and
// switch/failover actions.
//
// It reaches replicators and connectors only through rpc clients, never by
// importing the replicator or router packages.
package manager
