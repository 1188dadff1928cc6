// Package daemon starts, stops and reports agent processes the way the
// guide's `replicator start|stop|status` do: a detached process in a
// session of its own, logging to a file, recorded in a pid file it writes
// itself.
//
// Liveness comes from /proc/PID/stat and /proc/PID/cmdline, never from
// kill -0 (this machine's init reaps orphans late: a zombie looks alive).
// It imports only the standard library.
package daemon
