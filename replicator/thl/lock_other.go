//go:build !unix

package thl

import (
	"fmt"
	"os"
)

// lockDir opens the lock file; other systems get no flock, only the file.
func lockDir(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("thl: open lock file: %w", err)
	}
	return f, nil
}
