// Package manager is the per-host cluster agent: it wires its parts and
// runs their loops. The parts are packages of their own:
//
//   - membership: the gossip pool, who is alive and each host's facts;
//   - consensus: the raft group and the agreed policy.State;
//   - health: the probes of this host that make its facts;
//   - fencing: the database connections, the one writer of read_only;
//   - actions: switch, failover and recover, against interfaces;
//   - policy: the state, its changes and the monitor's decisions.
//
// The agent (agent.go, run.go) owns the loops that tie them: probing and
// publishing, enforcing read_only under the primary's lease (lease.go),
// coordinating (the monitor's decisions executed by actions), and the
// gRPC and REST servers (server.go, commands.go, rest.go).
//
// It reaches replicators and connectors only through rpc clients, never by
// importing the replicator or router packages.
package manager
