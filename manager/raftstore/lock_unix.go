//go:build unix

package raftstore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// lockRetry is how often lockDir tries again while the lock is held.
const lockRetry = 50 * time.Millisecond

// lockDir takes the store's process lock: an exclusive flock on dir/LOCK,
// held until the returned file is closed. While another process holds it,
// lockDir keeps trying for up to wait: the kernel may release the flocks of
// a killed process a moment after it dies.
func lockDir(dir string, wait time.Duration) (*os.File, error) {
	path := filepath.Join(dir, lockName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("raftstore: open lock file: %w", err)
	}
	deadline := time.Now().Add(wait)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		switch {
		case err == nil:
			return f, nil
		case errors.Is(err, syscall.EINTR):
			continue
		case !errors.Is(err, syscall.EWOULDBLOCK):
			f.Close()
			return nil, fmt.Errorf("raftstore: lock %s: %w", path, err)
		case !time.Now().Before(deadline):
			f.Close()
			return nil, fmt.Errorf("raft store %s is in use by another process: %s stayed locked for %v; "+
				"stop the other manager or give this one its own directory (%w)", dir, path, wait, ErrLocked)
		}
		time.Sleep(min(lockRetry, time.Until(deadline)))
	}
}
