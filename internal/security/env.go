package security

import (
	"github.com/carbidedb/carbide/internal/config"
	"github.com/carbidedb/carbide/internal/install"
)

// ForInstall is the security of an opened install.
func ForInstall(b *install.Bound) (*Cluster, error) { return New(b.Install.Settings) }

// ForConfig is the security of a tool that reads a tungsten.ini without
// an install (multi_trepctl --ini): the first site's cluster settings.
func ForConfig(cfg *config.Config) (*Cluster, error) {
	sites := cfg.Clustered()
	if len(sites) == 0 {
		return Insecure(config.DefaultSettings().ReplicationPassword), nil
	}
	return New(cfg.ClusterSettings(sites[0].Name))
}

// FromEnv is the security of a tool run from an install (CARBIDE_HOME,
// read through getenv). Without one the tool has no secret, and the
// cluster refuses what it sends with a sentence saying so.
func FromEnv(getenv func(string) string) (*Cluster, error) {
	home := ""
	if getenv != nil {
		home = getenv(install.EnvHome)
	}
	if home == "" {
		return Insecure(""), nil
	}
	b, err := install.Open(home)
	if err != nil {
		return nil, err
	}
	return ForInstall(b)
}
