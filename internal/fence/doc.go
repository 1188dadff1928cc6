// Package fence stops a MariaDB server from taking writes: the one way
// Carbide's processes turn a database read-only in a hurry (a failover's
// fence, a primary whose lease ran out).
//
// It imports nothing of Carbide's agents; the manager and the replicator call it.
package fence
