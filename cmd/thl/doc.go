// Command thl lists, describes and purges a replication service's
// transaction history log (see replicator/thl/thlcmd).
//
// It imports replicator/thl/thlcmd alone of Carbide.
package main
