// Package tpm is the tpm command: validate a tungsten.ini (and, with
// --check-db, every host's database), install and update a host's install
// directories and its agents' systemd units (install starts the agents
// with start=true), uninstall them, query the release directory,
// print the configuration back, and write the cluster's TLS certificates
// and keystores (cert). Commands write to the injected writers; exit codes
// are 0 (ok), 1 (problems found) and 2 (usage). systemctl runs only
// through Env.Systemd, which tests fake.
//
// It imports internal/config, internal/install, internal/systemd,
// internal/daemon (an agent's pid file), internal/certs, internal/security
// and rpc/gen/replicatorpb; it must not import a manager, replicator or
// router package.
package tpm
