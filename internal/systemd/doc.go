// Package systemd owns the agents' systemd units: their names, their text
// (a pure function of an install, so tests read it whole), where tpm
// writes them, and how tpm and the agents' start, stop and status commands
// reach systemd (Host, which tests replace with a fake that never runs
// systemctl).
//
// A unit is named carbide-<install>-<agent>.service, <install> being
// "cluster" for the cluster install and "cross-site" for the cross-site
// one (UnitName): a host has at most one install of each kind, so the name
// is unique on the host, and it stays the same across tpm update.
//
// It imports internal/config, internal/install and internal/fileutil; it
// must not import internal/daemon (which imports it), rpc or any agent
// package, and the sandbox must not import it: a sandbox's agents never
// run under systemd.
package systemd
