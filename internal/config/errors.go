package config

import (
	"errors"
	"fmt"
	"strings"
)

// ErrInvalid is wrapped by every validation problem Load reports.
var ErrInvalid = errors.New("config: invalid tungsten.ini")

// Problems is the list of everything wrong with a configuration. Load
// returns it (as an error) so tpm can print one line per problem.
type Problems []string

func (p Problems) Error() string {
	if len(p) == 1 {
		return p[0]
	}
	return fmt.Sprintf("%d problems: %s", len(p), strings.Join(p, "; "))
}

// Unwrap lets errors.Is(err, ErrInvalid) hold for every Problems value.
func (p Problems) Unwrap() error { return ErrInvalid }

// maxProblems bounds what one Load reports: a file of garbage must not
// take long to reject nor bury the first problem.
const maxProblems = 20

const moreProblems = "further problems are not listed; fix these and run again"

// oneLine escapes line breaks: a problem quotes what came from the file
// (a key, a path, the ini library's message with the line it choked on)
// and must stay one line, as tpm prints one problem a line.
var oneLine = strings.NewReplacer("\r", `\r`, "\n", `\n`)

// problem is a single problem.
func problem(format string, args ...any) Problems {
	return Problems{oneLine.Replace(fmt.Sprintf(format, args...))}
}

func (p *Problems) addf(format string, args ...any) {
	switch {
	case len(*p) < maxProblems:
		*p = append(*p, oneLine.Replace(fmt.Sprintf(format, args...)))
	case len(*p) == maxProblems:
		*p = append(*p, moreProblems)
	}
}
