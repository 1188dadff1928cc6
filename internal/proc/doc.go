// Package proc reads process liveness from /proc (Linux), for the packages
// that manage processes they did not necessarily start: internal/mysqld and
// internal/daemon. It imports only the standard library.
package proc
