// Package actions carries out the manager's operations on a site: the
// planned switch of the primary, the failover of a failed one (fenced,
// its candidate made complete first), and the recovery of a datasource as
// a replica. Each is a sequence of steps against the interfaces this
// package declares (actions.go) — the agreed state, the databases, the
// replicators, the connectors, the leases and the alerts — which the
// manager's agent wires to raft, fencing and its RPC clients, and unit
// tests to fakes.
//
// It must not import the manager package, raft, memberlist or a database
// driver: it acts only through its interfaces.
package actions
