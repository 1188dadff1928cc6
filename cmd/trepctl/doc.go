// Command trepctl controls a replicator: status, online, offline, reset,
// setrole, heartbeat, wait. Run as mm_trepctl it talks to the cross-site
// replicator of the install its wrapper binds.
//
// It imports shell/trepctl alone of Carbide.
package main
