// Package router is the connector: the MySQL TCP entry point for
// applications, which routes each new connection to the current primary (or
// a replica on the read-only port) and splices bytes both ways.
//
// It may import rpc and internal packages only.
package router
