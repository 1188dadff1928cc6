//go:build unix

package thl

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// lockDir takes the store's process lock: an exclusive flock on thl.lock,
// held until the returned file is closed.
func lockDir(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("thl: open lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s is locked by a running replicator", ErrLocked, path)
		}
		return nil, fmt.Errorf("thl: lock %s: %w", path, err)
	}
	return f, nil
}
