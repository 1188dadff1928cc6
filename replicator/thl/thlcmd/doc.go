// Package thlcmd is the thl program: it lists, describes and purges a
// replication service's THL store (replicator/thl), with Tungsten's
// commands and output layout. list, info and index open the store
// read-only and never change it; purge opens it for writing, so it is
// refused while a replicator holds the store.
//
// Which store: -dir DIR, else the install bound by CARBIDE_HOME and its
// service (-service S, or the only one). Commands write to the Env's
// writers, so tests run them in-process.
//
// It imports replicator/thl, internal/install and rpc/gen/thlpb.
package thlcmd
