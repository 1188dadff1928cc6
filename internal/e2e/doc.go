// Package e2e holds end-to-end tests: a sandbox topology of real mariadbd
// servers and real agent processes, built from this source tree by
// TestMain, driven the way operators drive them (trepctl, SQL clients),
// ending with table checksums compared on every host.
//
// Its tests reach the agents only as their programs and clients do
// (commands, SQL, gRPC through rpc); no program imports it.
package e2e
