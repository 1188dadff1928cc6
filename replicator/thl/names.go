package thl

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
)

const (
	dataPrefix  = "thl.data."
	indexPrefix = "thl.index."
	lockName    = "thl.lock"
	tmpSuffix   = ".tmp"
	numDigits   = 10
)

// DirFor returns the THL directory of service in the install at home:
// <home>/thl/<service>. The replicator and the thl program both use it.
func DirFor(home, service string) string {
	return filepath.Join(home, "thl", service)
}

// DataName and IndexName return the file names of segment num.
func DataName(num uint64) string  { return fmt.Sprintf("%s%0*d", dataPrefix, numDigits, num) }
func IndexName(num uint64) string { return fmt.Sprintf("%s%0*d", indexPrefix, numDigits, num) }

// parseName returns the segment number of a data or index file name.
func parseName(name, prefix string) (uint64, bool) {
	rest, ok := strings.CutPrefix(name, prefix)
	if !ok || len(rest) != numDigits {
		return 0, false
	}
	n, err := strconv.ParseUint(rest, 10, 64)
	if err != nil || n == 0 {
		return 0, false
	}
	return n, true
}
