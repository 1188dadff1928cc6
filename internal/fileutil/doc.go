// Package fileutil holds small file helpers shared by the packages that
// write configuration and state files (install, sandbox, mysqld, daemon,
// the THL and the raft store).
// It imports only the standard library.
package fileutil
