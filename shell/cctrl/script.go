package cctrl

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
)

// ScriptError is a failed command of a script or -e list: where it was
// and why.
type ScriptError struct {
	Where string // "line 3", "command 2 of -e"
	Err   error
}

func (e *ScriptError) Error() string { return e.Where + ": " + e.Err.Error() }
func (e *ScriptError) Unwrap() error { return e.Err }

// RunScript runs the commands read from r, one per line, the way cctrl
// runs when its input is not a terminal: blank lines and # comments are
// skipped, only results and errors are printed, and the first failed
// command stops it with a ScriptError naming its line. exit ends it.
func (s *Session) RunScript(ctx context.Context, r io.Reader) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if len(Fields(line)) == 0 {
			continue
		}
		if err := s.Exec(ctx, line); err != nil {
			if errors.Is(err, errExit) {
				return nil
			}
			return &ScriptError{Where: fmt.Sprintf("line %d", n), Err: err}
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("reading the commands: %w", err)
	}
	return nil
}

// RunList runs a ';'-separated list of commands (-e) like a script.
func (s *Session) RunList(ctx context.Context, list string) error {
	for i, cmd := range strings.Split(list, ";") {
		if len(Fields(cmd)) == 0 {
			continue
		}
		if err := s.Exec(ctx, cmd); err != nil {
			if errors.Is(err, errExit) {
				return nil
			}
			return &ScriptError{Where: fmt.Sprintf("command %d of -e (%s)", i+1, strings.TrimSpace(cmd)), Err: err}
		}
	}
	return nil
}
