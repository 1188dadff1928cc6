//go:build !linux

package daemon

import "os"

// followStdio leaves standard output and error where they are: only Linux
// has dup3, and Carbide's agents run on Linux.
func followStdio(*os.File) {}
