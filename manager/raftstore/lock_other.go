//go:build !unix

package raftstore

import (
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// lockDir opens the lock file; other systems get no flock, only the file.
func lockDir(dir string, _ time.Duration) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, lockName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("raftstore: open lock file: %w", err)
	}
	return f, nil
}
