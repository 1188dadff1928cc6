package systemd

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/carbidedb/carbide/internal/config"
	"github.com/carbidedb/carbide/internal/fileutil"
)

// Target is where tpm writes the units of the installs it writes.
type Target struct {
	// Dir receives the units; empty means each install's share/systemd
	// (install.UnitDir).
	Dir string
	// System is set when Dir is the system's directory: tpm then runs
	// systemctl daemon-reload, and enable.
	System bool
	// Skip is set for a sandbox, whose agents never run under systemd.
	Skip bool
	// Why says why the units go into the install directories.
	Why string
}

// Choose picks the target of a tpm run that installs hosts hosts: forced
// (--systemd-dir) when given; none for a sandbox; the system's directory
// when systemd runs this machine, tpm runs as root and installs one host;
// else each install's share/systemd, and Why says why.
func (h Host) Choose(forced string, sandbox bool, hosts int) Target {
	switch {
	case forced != "":
		return Target{Dir: forced}
	case sandbox:
		return Target{Skip: true}
	case !h.Booted():
		return Target{Why: "this host does not run systemd"}
	case !h.Root():
		return Target{Why: "tpm is not running as root"}
	case hosts > 1:
		return Target{Why: "tpm installed several hosts, whose units have the same names"}
	}
	return Target{Dir: h.Dir, System: true}
}

// Write writes units of the install in into dir (created when missing),
// each atomically, and returns the names of the units of that install in
// dir that it no longer runs (a member turned witness leaves its
// replicator's): the caller removes them with Remove.
func Write(dir string, in *config.Install, units []Unit) (stale []string, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	for _, u := range units {
		if err := fileutil.WriteAtomic(filepath.Join(dir, u.Name), []byte(u.Text), 0o644); err != nil {
			return nil, err
		}
	}
	for _, a := range allAgents {
		if runs(in, a) {
			continue
		}
		name := UnitName(in.Kind, a)
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err == nil && HomeOf(string(data)) == in.Dir {
			stale = append(stale, name)
		}
	}
	return stale, nil
}

// Remove removes the unit name from dir; a unit already gone is no error.
func Remove(dir, name string) error {
	err := os.Remove(filepath.Join(dir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}
