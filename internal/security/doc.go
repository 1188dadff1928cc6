// Package security secures the cluster's connections: every control RPC
// and every THL stream carries a token derived from the install's
// secret (tungsten.ini's replication-password, the same on every install
// of the cluster), and with thl-ssl=true connections run over mutual TLS
// with the cluster certificate.
//
// THL ports are strict: with SSL on they take TLS only, and a plaintext
// client is told so. Control ports (manager, replicator rmi-port) take
// TLS and, while a rolling change has some hosts on the old settings,
// plaintext too; clients with SSL on try TLS first and fall back to
// plaintext only when the server answers without TLS. Either way the
// token is required.
//
// It imports only internal packages (certs, config, install); the agents and the shell call it.
package security
