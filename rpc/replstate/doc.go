// Package replstate is the one vocabulary of replicator states: the typed
// state (replicatorpb.ReplicatorState) that programs decide on, and the
// guide's text of it (trepctl's "state : OFFLINE:ERROR") that people read.
// It imports nothing of Carbide but the generated replicatorpb.
package replstate
