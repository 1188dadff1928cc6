package daemon

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"sync"
)

// KeepLogs is how many rotated logs an agent keeps: x.log.1 (the newest)
// to x.log.5.
const KeepLogs = 5

// Rotating is an io.Writer that appends to a log file and rotates it when
// a write would take it past its limit: x.log.4 becomes x.log.5 (the
// oldest x.log.5 is dropped), …, x.log becomes x.log.1, and writing goes
// on in a new x.log. A write is never split across two files; one larger
// than the limit fills a file of its own. It is safe for concurrent use,
// and a process that restarts appends to the file the last one left,
// counting what it holds.
type Rotating struct {
	path   string
	limit  int64
	keep   int
	onOpen func(*os.File)

	mu   sync.Mutex
	f    *os.File
	size int64
}

// OpenRotating opens path for appending (creating it and its directory),
// to be rotated past limit bytes keeping keep rotated files. onOpen, when
// not nil, is called with every file it opens, the first one included.
func OpenRotating(path string, limit int64, keep int, onOpen func(*os.File)) (*Rotating, error) {
	if limit <= 0 || keep < 1 {
		return nil, errors.New("daemon: a rotating log needs a positive size limit and at least one rotated file")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	r := &Rotating{path: path, limit: limit, keep: keep, onOpen: onOpen}
	if err := r.open(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *Rotating) open() error {
	f, err := os.OpenFile(r.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	old := r.f
	r.f, r.size = f, st.Size()
	if r.onOpen != nil {
		r.onOpen(f)
	}
	if old != nil {
		old.Close()
	}
	return nil
}

// Write appends p, rotating first when p would take the file past its
// limit. When rotating fails (a rename refused), p goes to the current
// file and the next write tries again: a log line is never dropped.
func (r *Rotating) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f == nil {
		return 0, os.ErrClosed
	}
	if r.size > 0 && r.size+int64(len(p)) > r.limit {
		_ = r.rotate()
	}
	n, err := r.f.Write(p)
	r.size += int64(n)
	return n, err
}

// rotate shifts the rotated files up by one and opens a new file.
func (r *Rotating) rotate() error {
	for i := r.keep - 1; i >= 1; i-- {
		if err := os.Rename(r.rotated(i), r.rotated(i+1)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	// x.log gone (an operator removed it) leaves nothing to rename.
	if err := os.Rename(r.path, r.rotated(1)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return r.open()
}

func (r *Rotating) rotated(n int) string { return r.path + "." + strconv.Itoa(n) }

// Close closes the current file; later writes fail.
func (r *Rotating) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f == nil {
		return nil
	}
	err := r.f.Close()
	r.f = nil
	return err
}
