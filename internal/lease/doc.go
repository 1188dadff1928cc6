// Package lease keeps the primary's lease on its host: how long the
// host's database may stay writable without a fresh grant from the site's
// coordinator (manager/lease.go). The end is kept in a file on the boot
// clock, which runs on across processes, so that a restarted manager takes
// over the lease, and the host's replicator, which fences the database
// when nobody renews it (its manager hung), sees the same one.
//
// It imports nothing of Carbide's agents; the manager renews the lease, the replicator fences on it.
package lease
