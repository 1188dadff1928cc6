// Package stream moves THL between replicators over gRPC: the Server
// streams a service's stored events to replicas, the Client fetches them
// into the replica's own store.
//
// The handshake carries the client's last stored transaction (seqno,
// epoch, event id). The server streams only when it holds that very
// transaction: a client whose history differs has diverged (a failover
// moved the primary past events it never received, or its THL came from
// elsewhere) and is refused with "diverged at seqno N". That check is what
// makes a failover safe. A replica serving as source may not hold the
// client's last transaction yet: it says so (ErrBehind), and the client
// tries another source.
//
// A stream starts at the transaction after the client's last complete
// one. A client that holds part of that transaction (its last stream
// ended inside it) keeps it: it checks the fragments it holds against the
// ones the source sends again and stores only the rest, so that the
// replica's applier, which may be reading them, is never cut short by a
// reconnect. Only a source holding another transaction there replaces
// them.
//
// An event over a message size limit, or one the replica's store
// refuses, ends Run with an error (LimitError, ErrStore): every source
// would send the same event, so the replicator stops before it.
//
// It imports rpc/gen/thlpb and declares the store interfaces it needs.
package stream
