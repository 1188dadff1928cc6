// Package tpm is the tpm command: validate a tungsten.ini (and, with
// --check-db, every host's database), install and update a host's install
// directories, query the release directory, print the configuration back,
// and write the cluster's TLS certificates and keystores (cert). Commands
// write to the injected writers; exit codes are 0 (ok), 1 (problems found)
// and 2 (usage).
//
// It imports internal/config, internal/install and internal/certs.
package tpm
