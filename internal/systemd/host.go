package systemd

import (
	"context"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"

	"github.com/carbidedb/carbide/internal/config"
)

// SystemDir is where systemd reads the units an administrator installs.
const SystemDir = "/etc/systemd/system"

// Host is this machine's systemd as tpm and the agents' commands see it.
// Its zero value is a machine without systemd; tests give a fake (a
// temporary Dir, a Systemctl that records its calls).
type Host struct {
	// Dir is the system's unit directory (SystemDir).
	Dir string
	// IsBooted reports whether systemd runs this machine.
	IsBooted func() bool
	// IsRoot reports whether this process runs as root.
	IsRoot func() bool
	// Systemctl runs systemctl with args and returns what it printed.
	Systemctl func(ctx context.Context, args ...string) (string, error)
	// PrimaryGroup returns the name of user's primary group here.
	PrimaryGroup func(user string) (string, error)
}

// System returns the running machine's Host: booted when
// /run/systemd/system exists (the test sd_booted(3) makes).
func System() Host {
	return Host{
		Dir: SystemDir,
		IsBooted: func() bool {
			st, err := os.Stat("/run/systemd/system")
			return err == nil && st.IsDir()
		},
		IsRoot: func() bool { return os.Geteuid() == 0 },
		Systemctl: func(ctx context.Context, args ...string) (string, error) {
			out, err := exec.CommandContext(ctx, "systemctl", args...).CombinedOutput()
			return string(out), err
		},
		PrimaryGroup: func(name string) (string, error) {
			u, err := user.Lookup(name)
			if err != nil {
				return "", err
			}
			g, err := user.LookupGroupId(u.Gid)
			if err != nil {
				return "", err
			}
			return g.Name, nil
		},
	}
}

// Booted reports whether systemd runs this machine.
func (h Host) Booted() bool { return h.IsBooted != nil && h.IsBooted() }

// Root reports whether this process runs as root.
func (h Host) Root() bool { return h.IsRoot != nil && h.IsRoot() }

// Group returns the primary group of user, or "" when it is unknown here.
func (h Host) Group(user string) string {
	if h.PrimaryGroup == nil {
		return ""
	}
	g, err := h.PrimaryGroup(user)
	if err != nil {
		return ""
	}
	return g
}

// InstalledUnit returns the unit that runs agent for the install of kind
// at home, when systemd runs this machine and the system's directory holds
// that unit for this install (a unit of the same name written for another
// install directory is not this agent's).
func (h Host) InstalledUnit(home string, kind config.InstallKind, agent string) (string, bool) {
	if !h.Booted() || h.Dir == "" || h.Systemctl == nil {
		return "", false
	}
	name := UnitName(kind, agent)
	data, err := os.ReadFile(filepath.Join(h.Dir, name))
	if err != nil || HomeOf(string(data)) != filepath.Clean(home) {
		return "", false
	}
	return name, true
}
