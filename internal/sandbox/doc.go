// Package sandbox runs a whole tungsten.ini topology on one machine: every
// host gets its own loopback address (sites in ini order get 127.0.S.H, S
// the site's position, H the host's position in members=), its own real
// mariadbd on <address>:<replication-port>, and its install directories
// re-rooted under DIR/<host>/ (DIR/east1/continuent, DIR/east1/replicator),
// written by the same code as tpm install.
//
// Layout of DIR:
//
//	DIR/tungsten.ini     the topology's ini plus the [hosts] map and [sandbox] root
//	DIR/<host>/mysql/    the host's mariadbd instance (see internal/mysqld)
//	DIR/<host>/<install> the host's install directories
//	DIR/.lock            held while up, down or a mysql command runs
//
// Up is idempotent: a second Up leaves running processes alone and starts
// what is not running (a crashed mariadbd is restarted on its datadir).
// Down stops every process it can find a pid file for. Agents are started
// through their install's wrapper (`<install>/bin/replicator start`) when
// the release has them.
//
// It imports internal/config, internal/install and internal/mysqld.
package sandbox
