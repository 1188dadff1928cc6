// Package policy is the manager's decision logic as a deterministic state
// machine: the replicated cluster State and the Changes that mutate it,
// the Facts managers publish about their hosts, and the Monitor that turns
// facts and ticks into Decisions (fail a datasource, fail over, recover).
// Nothing here does I/O or reads a clock; the scripts under testdata/
// drive it (see script_test.go).
//
// It imports nothing of Carbide but rpc/replstate and the generated
// replicatorpb (the typed replicator states); it must not import the rest
// of the manager.
package policy
