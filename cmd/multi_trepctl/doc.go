// Command multi_trepctl shows every replicator of the installed
// configuration in one table (multi_trepctl --by-service) and runs trepctl
// on all of them (multi_trepctl run status). Run as mm_multi_trepctl from
// the cross-site install it shows the same.
//
// Mains are thin: the tool is shell/multitrepctl.
//
// It imports shell/multitrepctl alone of Carbide.
package main
