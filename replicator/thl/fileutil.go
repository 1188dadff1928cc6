package thl

import (
	"os"

	"github.com/carbidedb/carbide/internal/fileutil"
)

// writeFileAtomic writes data to path through a synced temporary file and
// a rename; the caller syncs the directory.
func (s *Store) writeFileAtomic(path string, data []byte) error {
	tmp := path + tmpSuffix
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = s.fsync(f)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// fsync syncs f, unless the store is a test's that skips fsync.
func (s *Store) fsync(f *os.File) error {
	if s.cfg.noSync {
		return nil
	}
	return f.Sync()
}

// syncDir makes renames and removals in the store's directory durable.
func (s *Store) syncDir() error {
	if s.cfg.noSync {
		return nil
	}
	return fileutil.SyncDir(s.cfg.Dir)
}

// removeIfExists removes path; a missing file is not an error.
func removeIfExists(path string) error { return fileutil.RemoveIfExists(path) }
