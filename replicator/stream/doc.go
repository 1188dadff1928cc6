// Package stream moves THL between replicators over gRPC: the Server
// streams a service's stored events to replicas, the Client fetches them
// into the replica's own store.
//
// The handshake carries the client's last stored transaction (seqno,
// epoch, event id). The server streams only when it holds that very
// transaction: a client whose history differs has diverged (a failover
// moved the primary past events it never received, or its THL came from
// elsewhere) and is refused with "diverged at seqno N". That check is what
// makes a failover safe.
//
// It imports rpc/gen/thlpb and declares the store interfaces it needs.
package stream
