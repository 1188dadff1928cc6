package install

import "github.com/carbidedb/carbide/internal/config"

// Programs lists the release's programs an install of kind binds, by their
// names in the release's bin/ directory.
func Programs(kind config.InstallKind) []string {
	if kind == config.CrossSiteInstall {
		return []string{"trepctl", "replicator", "thl", "tpm", "multi_trepctl", "cctrl"}
	}
	return []string{"cctrl", "trepctl", "thl", "tpm", "multi_trepctl", "tprovision", "replicator", "manager", "connector"}
}

// CommandName is the name a program has in an install's bin/: prefixed with
// the install's executable-prefix and an underscore when it has one
// (mm_trepctl).
func CommandName(prefix, program string) string {
	if prefix == "" {
		return program
	}
	return prefix + "_" + program
}
