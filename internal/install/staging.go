package install

import (
	"fmt"
	"os"
	"path/filepath"
)

// Staging returns the release directory the running program belongs to:
// $CARBIDE_STAGING when set, else the parent of the bin/ directory holding
// the executable.
func Staging() (string, error) {
	if s := os.Getenv(EnvStaging); s != "" {
		return filepath.Abs(s)
	}
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("cannot find the release directory: %w", err)
	}
	if real, err := filepath.EvalSymlinks(exe); err == nil {
		exe = real
	}
	dir := filepath.Dir(exe)
	if filepath.Base(dir) != "bin" {
		return "", fmt.Errorf("cannot find the release directory: %s is not in a bin/ directory; set %s", exe, EnvStaging)
	}
	return filepath.Dir(dir), nil
}
