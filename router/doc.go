// Package router is the connector: the MySQL TCP entry point for
// applications, which routes each new connection to the current primary (or
// a replica on the read-only port) and splices bytes both ways.
//
// It decides where connections go and when they close (the table, holds,
// drains); moving their bytes once routed is router/datapath's (the event
// loops and the kernel's BPF sockmap path).
//
// It may import rpc and internal packages only, and router/datapath.
package router
