// Command replicator runs the replicator of an install: `replicator start`,
// `mm_replicator stop`, `replicator status`, `replicator run`.
//
// It imports replicator/agent alone of Carbide.
package main
