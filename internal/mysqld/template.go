package mysqld

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// templateLogFileSize is innodb_log_file_size both for mariadb-install-db and
// for every instance, so that a copied datadir starts without resizing its
// redo log.
const templateLogFileSize = "48M"

// Template is a datadir made once by mariadb-install-db and copied into each
// new instance: a copy takes tens of milliseconds, an install ~0.5 s. A
// Template is never started, so it never changes and may be shared by
// concurrent processes.
type Template struct {
	datadir string
}

// NewTemplate returns the template in dir, making it with mariadb-install-db
// when dir holds none yet. Several processes may call it on the same dir at
// once: each installs into a private folder and renames it into place, and
// the losers use the winner's.
func NewTemplate(ctx context.Context, dir string) (*Template, error) {
	bins, err := LookPath()
	if err != nil {
		return nil, err
	}
	dir, err = filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	t := &Template{datadir: filepath.Join(dir, "data")}
	if isDatadir(t.datadir) {
		return t, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("mysqld: create template folder: %w", err)
	}
	removeStaleTemps(dir, "data.tmp-", time.Hour)
	removeStaleTemps(dir, "install-tmp-", time.Hour)
	err = fillDatadir(t.datadir, func(tmp string) error { return installDB(ctx, bins, tmp) })
	if err != nil && !isDatadir(t.datadir) {
		return nil, err
	}
	return t, nil
}

// templateFormat changes whenever installDB makes templates differently, so
// that TemplateName changes too.
const templateFormat = "2"

// TemplateName names a template folder after the installed mariadbd version
// and the way this package makes templates, for callers that keep templates
// across runs: "mariadb-template-<12 hex digits>".
func TemplateName() (string, error) {
	bins, err := LookPath()
	if err != nil {
		return "", err
	}
	version, err := exec.Command(bins.Mariadbd, "--version").Output()
	if err != nil {
		return "", fmt.Errorf("mysqld: run %s --version: %w", bins.Mariadbd, err)
	}
	sum := sha256.Sum256(append(version, "\x00format "+templateFormat+" log "+templateLogFileSize...))
	return "mariadb-template-" + hex.EncodeToString(sum[:6]), nil
}

// Datadir is the template's datadir; do not start a server on it.
func (t *Template) Datadir() string { return t.datadir }

// isDatadir reports whether path holds an initialised datadir.
func isDatadir(path string) bool {
	fi, err := os.Stat(filepath.Join(path, "mysql"))
	return err == nil && fi.IsDir()
}

// fillDatadir makes dst by running fill on a fresh folder beside it and
// renaming that folder to dst, so that dst is either absent or complete.
// An empty dst is replaced; a non-empty one is an error.
func fillDatadir(dst string, fill func(tmp string) error) error {
	if err := os.Remove(dst); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("mysqld: %s exists but holds no MariaDB datadir (no mysql/ folder); remove it or choose another Dir", dst)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dst), filepath.Base(dst)+".tmp-")
	if err != nil {
		return fmt.Errorf("mysqld: create datadir: %w", err)
	}
	if err := os.Chmod(tmp, 0o750); err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("mysqld: create datadir: %w", err)
	}
	if err := fill(tmp); err != nil {
		os.RemoveAll(tmp)
		return err
	}
	if err := os.Rename(tmp, dst); err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("mysqld: put datadir in place: %w", err)
	}
	return nil
}

// installDB runs mariadb-install-db into the empty folder datadir. Bump
// templateFormat when changing it.
func installDB(ctx context.Context, bins Binaries, datadir string) error {
	args := []string{
		"--no-defaults",
		"--datadir=" + datadir,
		"--auth-root-authentication-method=normal",
		"--skip-test-db",
		// No root@<hostname> account (mariadbd warns about it at every start
		// under skip-name-resolve) and no host name lookup: the template
		// does not depend on the machine that made it.
		"--cross-bootstrap",
		"--innodb-log-file-size=" + templateLogFileSize,
	}
	// A private tmpdir: bootstraps that share one (/tmp) and run at once
	// crash now and then (SIGSEGV in ha_maria::drop_table while creating
	// the sys schema's views, MariaDB 10.11.19).
	tmpdir, err := os.MkdirTemp(filepath.Dir(datadir), "install-tmp-")
	if err != nil {
		return fmt.Errorf("mysqld: create a tmpdir for mariadb-install-db: %w", err)
	}
	defer os.RemoveAll(tmpdir)
	args = append(args, "--tmpdir="+tmpdir)
	if os.Geteuid() == 0 {
		args = append(args, "--user=root")
	}
	cmd := exec.CommandContext(ctx, bins.InstallDB, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("mysqld: mariadb-install-db into %s failed (%w); its errors:\n%s", datadir, err, installErrors(out.Bytes()))
	}
	return nil
}

// installErrors returns the last lines mariadb-install-db printed before
// its long generic help text ("Installation of system tables failed!").
func installErrors(out []byte) string {
	s := string(out)
	if i := strings.Index(s, "Installation of system tables failed!"); i >= 0 {
		s = s[:i]
	}
	return lastLines([]byte(strings.TrimSpace(s)), 20)
}

// removeStaleTemps removes folders dir/prefix* older than age, left by
// processes that died while filling them.
func removeStaleTemps(dir, prefix string, age time.Duration) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), prefix) {
			continue
		}
		if fi, err := e.Info(); err == nil && time.Since(fi.ModTime()) > age {
			os.RemoveAll(filepath.Join(dir, e.Name()))
		}
	}
}

// copyTree copies the regular files and folders under src into the existing
// folder dst, keeping permissions and leaving runs of zeros as holes.
func copyTree(src, dst string) error {
	buf := make([]byte, 64<<10)
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			if rel == "." {
				return nil
			}
			return os.Mkdir(target, info.Mode().Perm())
		case info.Mode().IsRegular():
			return copyFileSparse(path, target, info.Mode().Perm(), buf)
		default:
			return fmt.Errorf("mysqld: cannot copy %s: not a regular file or folder", path)
		}
	})
}

// copyFileSparse copies src to the new file dst, seeking over all-zero
// blocks so that they stay holes (InnoDB's redo log is mostly zeros).
func copyFileSparse(src, dst string, perm fs.FileMode, buf []byte) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	var off int64
	for {
		n, rerr := io.ReadFull(in, buf)
		if n > 0 {
			chunk := buf[:n]
			if !allZero(chunk) {
				if _, err := out.WriteAt(chunk, off); err != nil {
					out.Close()
					return err
				}
			}
			off += int64(n)
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			out.Close()
			return rerr
		}
	}
	if err := out.Truncate(off); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

var zeros [64 << 10]byte

func allZero(b []byte) bool {
	for len(b) > 0 {
		n := min(len(b), len(zeros))
		if !bytes.Equal(b[:n], zeros[:n]) {
			return false
		}
		b = b[n:]
	}
	return true
}

// lastLines returns at most n final lines of b.
func lastLines(b []byte, n int) string {
	s := strings.TrimRight(string(b), "\n")
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// TemplateFrom uses dir, an existing datadir (a prepared mariabackup, or
// a stopped server's), as a template: new datadirs are copies of it.
func TemplateFrom(dir string) (*Template, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if !isDatadir(dir) {
		return nil, fmt.Errorf("mysqld: %s holds no MariaDB datadir (no mysql/ folder)", dir)
	}
	return &Template{datadir: dir}, nil
}
