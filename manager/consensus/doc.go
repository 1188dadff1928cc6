// Package consensus is the site's agreed state: a raft group of the
// site's managers and witnesses (hashicorp/raft over manager/raftstore)
// whose log is a sequence of policy.Change and whose state machine is the
// policy.State they build. A Node applies changes (only the coordinator,
// raft's leader, can), and tells who leads and whether this manager is in
// touch.
//
// It decides nothing about the site: the manager's monitor and actions
// do. It must not import the manager, membership, or any rpc package.
package consensus
