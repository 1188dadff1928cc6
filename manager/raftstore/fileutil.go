package raftstore

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/carbidedb/carbide/internal/fileutil"
)

// File names in the store's directory.
const (
	logName    = "raft.log"
	stableName = "stable"
	lockName   = "LOCK"
	tmpSuffix  = ".tmp"
)

// makeDir creates dir (mode 0700) if it does not exist and syncs its parent.
func makeDir(dir string) error {
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return syncDir(filepath.Dir(filepath.Clean(dir)))
}

// syncDir makes file creations and renames in dir durable.
func syncDir(dir string) error { return fileutil.SyncDir(dir) }

// writeTemp writes data to a new path+tmpSuffix and fsyncs it, returning
// the file still open (for the log, which keeps appending to it).
func writeTemp(path string, data []byte) (*os.File, error) {
	tmp := path + tmpSuffix
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if err != nil {
		f.Close()
		os.Remove(tmp)
		return nil, err
	}
	return f, nil
}

// replaceWith renames path+tmpSuffix, written by writeTemp as f, over path.
// On failure it closes f and removes the temporary file.
func replaceWith(path string, f *os.File) error {
	if err := os.Rename(f.Name(), path); err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	return nil
}

// removeIfExists removes path; a missing file is not an error.
func removeIfExists(path string) error { return fileutil.RemoveIfExists(path) }
