// Package netbind dials from a host's own address. Every connection a
// manager opens leaves from its host's address, so that (in a sandbox of
// loopback addresses, as on a real network) what reaches a peer comes
// from this host and a partition of the host cuts all of it.
//
// It is a leaf: it imports the standard library only.
package netbind
