package cctrl

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"

	prompt "github.com/c-bata/go-prompt"
	"golang.org/x/sys/unix"
)

// Version is the banner's first line.
var Version = "Carbide cctrl 0.1.0"

// historyKeep is how many lines of history the REPL loads.
const historyKeep = 1000

// RunPrompt is the interactive loop on a terminal (go-prompt): completion
// of commands, sub-commands, hosts, services and values, history in
// ~/.cctrl_history. Ctrl-D on an empty line, exit and quit leave it; the
// terminal's settings are restored as they were, whatever go-prompt did.
// Ctrl-C clears the line; while a command runs it interrupts the command.
// Pasted lines run one by one as if typed (keyReader); a line that fails
// or is interrupted drops the rest of its paste.
func RunPrompt(ctx context.Context, s *Session) error {
	fd := int(os.Stdin.Fd())
	if saved, err := unix.IoctlGetTermios(fd, unix.TCGETS); err == nil {
		defer unix.IoctlSetTermios(fd, unix.TCSETS, saved)
	}
	fmt.Fprintln(s.env.Out, Version)
	cctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout*2)
	msg, err := s.Connect(cctx)
	cancel()
	if err != nil {
		fmt.Fprintf(s.env.Err, "%s\n", err)
	} else {
		fmt.Fprintln(s.env.Out, msg)
	}
	hist := s.historyPath()
	// Commands run under the session's context, not canceled by a Ctrl-C
	// that interrupted an earlier command.
	base := context.WithoutCancel(ctx)
	// Each read of the terminal is split into keys, so that every line of
	// a paste or a fast burst runs as if typed.
	keys := newKeyReader(prompt.NewStandardInputParser(), s.env.Out)
	// Whatever way the prompt ends, the terminal stops marking pastes.
	defer io.WriteString(s.env.Out, pasteOff)
	exited := false
	executor := func(line string) {
		if strings.TrimSpace(line) == "" {
			return
		}
		appendHistory(hist, line)
		cctx, stop := signal.NotifyContext(base, os.Interrupt)
		err := s.Exec(cctx, line)
		interrupted := cctx.Err() != nil
		stop()
		switch {
		case errors.Is(err, errExit):
			exited = true
		case err != nil:
			fmt.Fprintln(s.env.Err, err)
		}
		// A failing line is followed by the next, as when typed; Ctrl-C
		// drops what was typed or pasted ahead, as a terminal's interrupt
		// flushes its input.
		if interrupted && keys.Discard() {
			fmt.Fprintln(s.env.Err, "the pasted lines after it were not run: Ctrl-C stops the rest of a paste")
		}
	}
	completer := func(d prompt.Document) []prompt.Suggest {
		var out []prompt.Suggest
		for _, c := range s.Complete(d.TextBeforeCursor()) {
			out = append(out, prompt.Suggest{Text: c.Text, Description: c.Description})
		}
		return out
	}
	p := prompt.New(executor, completer,
		prompt.OptionPrefix(s.Prompt()),
		prompt.OptionLivePrefix(func() (string, bool) { return s.Prompt(), true }),
		prompt.OptionHistory(loadHistory(hist)),
		prompt.OptionSetExitCheckerOnInput(func(string, bool) bool { return exited }),
		prompt.OptionCompletionWordSeparator(" "),
		prompt.OptionMaxSuggestion(10),
		prompt.OptionPrefixTextColor(prompt.DefaultColor),
		prompt.OptionParser(keys),
	)
	p.Run()
	if exited {
		// go-prompt drew a last prompt after the exit command: erase it.
		fmt.Fprint(s.env.Out, "\r\x1b[2K")
	}
	return nil
}

// historyPath is the history file, "" with -no-history.
func (s *Session) historyPath() string {
	if s.cfg.NoHistory {
		return ""
	}
	if s.cfg.HistoryFile != "" {
		return s.cfg.HistoryFile
	}
	home := s.env.Getenv("HOME")
	if home == "" {
		var err error
		if home, err = os.UserHomeDir(); err != nil {
			return ""
		}
	}
	return filepath.Join(home, ".cctrl_history")
}

// loadHistory reads the last lines of the history file.
func loadHistory(path string) []string {
	if path == "" {
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) > historyKeep {
		lines = lines[len(lines)-historyKeep:]
	}
	return lines
}

// appendHistory adds a line to the history file; a failure only loses
// history.
func appendHistory(path, line string) {
	if path == "" {
		return
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintln(f, strings.TrimSpace(line))
}
