package wanlink

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// OpenTap creates the TAP device name (Ethernet frames, no packet
// information header) and returns it as a Port. The device lives while
// the file is open: closing it, or the process ending, removes it.
func OpenTap(name string) (*os.File, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("open /dev/net/tun for %s: %w", name, err)
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("TAP device name %q: %w", name, err)
	}
	ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("create TAP device %s: %w", name, err)
	}
	// Non-blocking, so reads wait in the runtime's poller and Close
	// unblocks them.
	return os.NewFile(uintptr(fd), "tap:"+name), nil
}
