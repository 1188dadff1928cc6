package daemon

import (
	"os"
	"syscall"
)

// followStdio points this process's standard output and error at f, so
// that what the Go runtime writes there itself (a crash's trace, the
// scheduler's trace line) lands in the current log.
func followStdio(f *os.File) {
	fd := int(f.Fd())
	_ = syscall.Dup3(fd, 1, 0)
	_ = syscall.Dup3(fd, 2, 0)
}
