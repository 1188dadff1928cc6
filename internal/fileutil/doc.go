// Package fileutil holds small file helpers shared by the packages that
// write configuration and state files (install, sandbox, mysqld, daemon).
// It imports only the standard library.
package fileutil
