// Package fencing is the manager's hands on the site's databases: it
// keeps one small pool of connections per host and is the one writer of
// read_only (SetReadOnly, and Fence, which kills the application's
// sessions first through internal/fence). It also reads what a fenced
// primary holds that the site never got (Orphans), before a recover
// brings it back.
//
// It decides nothing: when to fence or make a host writable is the
// manager's (its enforce loop, its lease, its actions). It must not import
// the manager, its policy or any rpc package.
package fencing
