package mysqld

import (
	"os"
	"os/exec"
	"path/filepath"
)

// Binaries are the absolute paths of the MariaDB programs the package runs.
type Binaries struct {
	Mariadbd  string // the server
	InstallDB string // mariadb-install-db
	Client    string // the mariadb command-line client
}

// extraDirs are searched after PATH: sbin folders are often missing from the
// PATH of non-login shells and of services.
var extraDirs = []string{"/usr/sbin", "/usr/local/sbin", "/sbin", "/usr/bin", "/usr/local/bin"}

// LookPath finds mariadbd, mariadb-install-db and the mariadb client on PATH
// or in the usual system folders.
func LookPath() (Binaries, error) {
	var b Binaries
	for _, p := range []struct {
		name, where string
		dst         *string
	}{
		{"mariadbd", "/usr/sbin", &b.Mariadbd},
		{"mariadb-install-db", "/usr/bin", &b.InstallDB},
		{"mariadb", "/usr/bin", &b.Client},
	} {
		path, ok := lookPath(p.name)
		if !ok {
			return Binaries{}, errorf(ErrNotFound, "%s not found on PATH or in %s; run scripts/install-deps.sh", p.name, p.where)
		}
		*p.dst = path
	}
	return b, nil
}

func lookPath(name string) (string, bool) {
	if p, err := exec.LookPath(name); err == nil {
		if abs, err := filepath.Abs(p); err == nil {
			return abs, true
		}
	}
	for _, d := range extraDirs {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, true
		}
	}
	return "", false
}
