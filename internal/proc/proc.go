package proc

import (
	"bytes"
	"os"
	"strconv"
)

// State returns the state letter of /proc/PID/stat ('R', 'S', 'Z' …), or 0
// when there is no such process.
func State(pid int) byte {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// "pid (comm) S ...": comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return 0
	}
	return b[i+2]
}

// Alive reports whether pid runs: it exists and is neither a zombie nor
// dead. kill -0 is no use for this: it succeeds on a zombie that init has
// not reaped yet, and this machine's init reaps late.
func Alive(pid int) bool {
	switch State(pid) {
	case 0, 'Z', 'X', 'x':
		return false
	}
	return true
}
