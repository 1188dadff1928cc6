// Package cctrl is the operator shell of a Carbide cluster, modelled on
// Tungsten's cctrl: `ls` in the operator guide's layout, policy, datasource,
// replicator, router, switch and failover commands, and `mm` mode for the
// cross-site replicators of a Multi-Site Active/Active deployment.
//
// One Session runs every command, whatever the front end: the go-prompt REPL
// on a terminal (repl.go), piped scripts read line by line and `-e` lists
// (script.go). Commands are parsed locally first (parse.go), with no I/O, so
// a typo costs one sentence and contacts nothing; then they run against a
// site's managers (manager.proto Status and Command) or a replicator's
// control API (replicator.proto), through the small interfaces ManagerAPI
// and ReplicatorAPI that tests fake. Commands write to the Env's writers.
//
// What `ls` prints is built by pure functions (StatusReply in, lines out) in
// render_*.go and checked against golden files under testdata/ (go test
// -update rewrites them); colour is added afterwards, only on a terminal and
// never with NO_COLOR.
//
// Invariants: a command that fails to parse sends nothing; a script stops at
// its first failed command; the session's own settings (service, force,
// expert, mode) change only by the commands that name them.
//
// It imports rpc/gen and internal/install, internal/config; never manager,
// replicator or router.
package cctrl
