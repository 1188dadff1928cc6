// Package clustercheck runs a consistency check across hosts: cctrl's
// cluster check and trepctl check. It asks a stream's master to write the
// markers (internal/consistency), collects what every host of the
// stream computed, compares each with the master's and checks again the
// chunks that changed between two hosts' snapshots, then reports per
// table: equal, or which host differs in which key range.
//
// It talks to replicators through their control API only (API); it
// imports internal/consistency for the comparison and nothing of the
// shell packages that use it.
package clustercheck
