// Package tprovision is the tprovision command: it rebuilds the database
// of the host it runs on from another host's, through the managers (shun,
// stop and start the database, recover) and the replicators (offline, the
// source's Backup stream and Locate, SetPosition, online), with
// mysqldump or mariabackup. docs/operations.md describes it.
//
// It reaches the agents through rpc only; it must not import manager,
// replicator or router.
package tprovision
