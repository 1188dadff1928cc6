// Package testutil is the test harness shared by Carbide's tests: real
// MariaDB servers for a test (StartMariaDB, RequireDB), polling with a
// deadline instead of sleeping (Eventually), and small SQL helpers that fail
// the test on error.
//
// Servers are real mariadbd processes (internal/mysqld) on random 127.x.y.z
// addresses, each on its own temporary datadir copied from one template;
// t.Cleanup stops them and removes their folders. Several test binaries may
// run at once: addresses are random and a bind failure is retried with
// another one. The template is made once per machine and user under the user
// cache folder (~/.cache/carbide), keyed by the mariadbd version, so test
// binaries neither rebuild it nor leave copies behind.
//
// A test process killed by a signal runs no cleanup, so every folder a test
// runs processes from is claimed (Claim: an owner file naming the process),
// and the first claim of a test process stops whatever runs from the
// folders of test processes that are gone, and removes them (ReapOrphans).
// The e2e and bench sandboxes claim theirs too.
//
// Set CARBIDE_REQUIRE_DB=1 to turn "MariaDB is not installed" from a skip into
// a failure (CI does).
//
// testutil may import internal/mysqld and the standard library; only test
// code imports testutil.
package testutil
