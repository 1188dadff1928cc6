// Package shell holds the operator front ends: the cctrl REPL, its command
// parser and renderers (ls boxes, tables), and the trepctl, multi_trepctl and
// tpm command front ends.
//
// Commands write to injected writers so the same code serves the REPL, piped
// scripts and one-liners. It may import rpc and internal packages, never
// manager, replicator or router.
package shell
