// Package install writes and reads install directories: what tpm install
// and tpm update lay down for one host from a validated config.Config, and
// what every program bound to an install (through CARBIDE_HOME) reads back.
//
// An install directory holds
//
//	bin/<prefix_>program   small sh wrappers that set CARBIDE_HOME and exec
//	                       the program from the release (staging) directory
//	conf/tungsten.ini      the configuration it was installed from (mode 0600)
//	conf/install.json      the Manifest: host, kind, staging, ini files
//	share/env.sh           PATH, CARBIDE_HOST and CARBIDE_INI for a shell
//	share/systemd          the agents' systemd units (internal/systemd), when
//	                       tpm install does not put them in /etc/systemd/system
//	var/log, var/run       agents' logs and pid files
//
// Every file is written to a temporary name and renamed, so a crash leaves
// either the old file or the new one. It imports internal/config and
// internal/fileutil only.
package install
