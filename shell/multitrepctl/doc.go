// Package multitrepctl is the multi_trepctl command: one table of every
// replicator of a Multi-Site Active/Active deployment, one row per host
// and replication service, in the layout of the operator guide
// (`multi_trepctl --by-service`), and trepctl run on all of them at once.
//
// The hosts come from the configuration (the install CARBIDE_HOME binds, or
// --ini): for every host it asks both replicators, the cluster install's and
// the cross-site install's, over their control API (rmi-port at the host's
// address) — no ssh. Replicators are asked concurrently, each with a short
// timeout; one that does not answer becomes a row with state NOT RUNNING and
// makes the exit status 1, it never hides the others.
//
// Tables are built by pure functions (fields, rows) → cells and written by
// one printer per --output format. Commands write to injected writers; exit
// status 0 ok, 1 a replicator failed or did not answer, 2 usage.
//
// It imports shell/trepctl (for run), rpc and internal/config,
// internal/install.
package multitrepctl
