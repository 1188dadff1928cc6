// Package agent is the replicator process: it hosts the services of one
// install directory (the cluster install's service, or the cross-site
// install's services), serves the control API on rmi-port and the THL on
// thl-port, and brings every service online at start.
//
// Run owns every goroutine it starts; on shutdown it takes the services
// offline (the pipelines stop at a transaction boundary), then stops the
// servers.
//
// It imports the replicator's packages, rpc and internal; it must not
// import the manager, the router or shell.
package agent
