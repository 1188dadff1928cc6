package lease

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Duration is the primary's lease: it runs this long from when it was
// asked for.
const Duration = 4 * time.Second

// File is where an install keeps the lease's end.
func File(home string) string { return filepath.Join(home, "var", "run", "primary.lease") }

// WriteEnd stores now+left on the boot clock in path.
func WriteEnd(path string, left time.Duration) error {
	now, err := bootClock()
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(strconv.FormatInt(int64(now+left), 10)+"\n"), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// Left reads how much of the stored lease is left (negative: run out).
func Left(path string) (time.Duration, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	end, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("lease file %s: %w", path, err)
	}
	now, err := bootClock()
	if err != nil {
		return 0, err
	}
	return time.Duration(end) - now, nil
}

// bootClock reads CLOCK_BOOTTIME: monotonic, and the same for every
// process of the host.
func bootClock() (time.Duration, error) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return 0, err
	}
	return time.Duration(ts.Nano()), nil
}
