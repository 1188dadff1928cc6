// Package trepctl is the trepctl command: one-liners against a replicator's
// control API (rmi-port), with the option names, field names and output
// layout operators know from Tungsten (`trepctl -service east status`,
// `trepctl online -skip-seqno 12`, `trepctl reset -all -y`).
//
// Commands write to injected writers; exit status 0 ok, 1 failed, 2 usage.
// It imports rpc and internal/install.
package trepctl
