// Package membership is the site's gossip pool (hashicorp/memberlist):
// which managers are alive, and the facts each publishes about its host
// (its database, its replicators, its connector) as node metadata,
// bounded to what gossip carries.
//
// It reports; it decides nothing. It must not import the manager, raft,
// or any rpc client.
package membership
