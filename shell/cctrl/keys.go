package cctrl

import (
	"bytes"
	"errors"
	"io"
	"time"
	"unicode/utf8"

	prompt "github.com/c-bata/go-prompt"
)

// Bracketed paste: the terminal is asked to mark pasted text, so that a
// paste is told from typing and a pasted control character cannot act as
// a key.
const (
	pasteOn    = "\x1b[?2004h"
	pasteOff   = "\x1b[?2004l"
	pasteStart = "\x1b[200~"
	pasteEnd   = "\x1b[201~"
)

// ttyReadSize is how much go-prompt's parser reads at once; a read that
// fills it means more may be waiting.
const ttyReadSize = 1024

// escWait is how long an incomplete escape sequence or UTF-8 character at
// the end of the input waits for its rest before its bytes are taken as
// they are: long enough for a sequence split by ssh, short enough that a
// lone Escape is not noticed.
const escWait = 50 * time.Millisecond

// errNoKey is what Read returns when no key is ready; go-prompt ignores a
// failed read and polls again.
var errNoKey = errors.New("no key is ready")

// keyReader is the REPL's go-prompt input: it wraps go-prompt's terminal
// parser so that each Read returns one key. go-prompt reads up to 1024
// bytes at a time and matches the whole read against one key, so a paste
// or a fast typist's "ls\r" arrived as text and Enter never registered;
// here a read is split into control keys, complete escape sequences and
// runs of text, and the rest is queued for the next Read.
//
// After an Enter, Read returns nothing until go-prompt has run the line
// and calls Setup again: go-prompt has no keys of the next lines buffered
// while a line runs, and Discard can drop them if Ctrl-C interrupts it.
type keyReader struct {
	in  prompt.ConsoleParser
	out io.Writer // where the bracketed paste switches are written; nil: none
	now func() time.Time
	// wait is how long an incomplete sequence waits for its rest.
	wait time.Duration

	pending []byte    // read from the terminal, not yet returned
	lastIn  time.Time // when the terminal last gave bytes
	paste   bool      // between the paste markers
	skip    bool      // dropping the rest of a paste whose line failed
	held    bool      // an Enter was returned and its line has not run yet
}

var _ prompt.ConsoleParser = (*keyReader)(nil)

// newKeyReader wraps in; the bracketed paste switches go to out.
func newKeyReader(in prompt.ConsoleParser, out io.Writer) *keyReader {
	return &keyReader{in: in, out: out, now: time.Now, wait: escWait}
}

// Setup puts the terminal in raw mode and asks it to mark pastes; it is
// called when the prompt starts and again after each line has run.
func (k *keyReader) Setup() error {
	k.held = false
	if err := k.in.Setup(); err != nil {
		return err
	}
	k.switchPaste(pasteOn)
	return nil
}

// TearDown stops marking pastes and restores the terminal's mode; it is
// called before each line runs and when the prompt ends, so a command
// that asks a question reads a plain terminal.
func (k *keyReader) TearDown() error {
	k.switchPaste(pasteOff)
	return k.in.TearDown()
}

// switchPaste writes a bracketed paste switch; a terminal that does not
// know it ignores it.
func (k *keyReader) switchPaste(seq string) {
	if k.out != nil {
		io.WriteString(k.out, seq)
	}
}

// GetWinSize returns the terminal's size.
func (k *keyReader) GetWinSize() *prompt.WinSize { return k.in.GetWinSize() }

// Read returns the next key: queued input first, without touching the
// terminal, then what one read of the terminal brings.
func (k *keyReader) Read() ([]byte, error) {
	if k.held {
		return nil, errNoKey
	}
	filled := false
	for {
		key, n, ok := k.next(false)
		if !ok && !filled {
			// Nothing complete is queued: read what the terminal has,
			// once per call, so a sequence split between reads gets
			// a poll's time to complete.
			filled = true
			if k.fill() > 0 {
				continue
			}
			if len(k.pending) > 0 && k.now().Sub(k.lastIn) >= k.wait {
				// Nothing followed the incomplete sequence: take
				// its bytes as they are.
				key, n, ok = k.next(true)
			}
		}
		if !ok {
			return nil, errNoKey
		}
		k.pending = k.pending[n:]
		if key == nil {
			continue // a paste marker or a dropped sequence
		}
		if key[0] == '\r' || key[0] == '\n' {
			k.held = true
		}
		// go-prompt keeps the key while later input is queued.
		return bytes.Clone(key), nil
	}
}

// fill appends what the terminal has to the queue and returns how many
// bytes it read. It reads until a read is short, so that the whole of a
// large paste is queued and none of it is left for a command's question.
func (k *keyReader) fill() int {
	total := 0
	for range 64 {
		b, err := k.in.Read()
		k.pending = append(k.pending, b...)
		total += len(b)
		if err != nil || len(b) < ttyReadSize {
			break
		}
	}
	if total > 0 {
		k.lastIn = k.now()
	}
	return total
}

// Discard drops the rest of the input read with the line that just ran
// (the rest of a paste or a burst), and the rest of a bracketed paste not
// read yet. It is called when Ctrl-C interrupted the line, as a
// terminal's interrupt flushes what was typed ahead; it says whether a
// line was dropped.
func (k *keyReader) Discard() bool {
	rest := k.pending
	k.pending = nil
	if k.paste {
		if i := bytes.Index(rest, []byte(pasteEnd)); i >= 0 {
			// Keys typed after the paste are the operator's own.
			k.pending, rest = bytes.Clone(rest[i+len(pasteEnd):]), rest[:i]
			k.paste = false
		}
	} else if i := bytes.LastIndex(rest, []byte(pasteStart)); i >= 0 && !bytes.Contains(rest[i:], []byte(pasteEnd)) {
		k.paste = true // a paste began in what was dropped
	}
	k.skip = k.paste
	rest = bytes.ReplaceAll(rest, []byte(pasteStart), nil)
	rest = bytes.ReplaceAll(rest, []byte(pasteEnd), nil)
	return len(bytes.TrimSpace(rest)) > 0
}

// next parses the key at the head of the queue: its bytes (nil for input
// that is consumed without being a key), how many bytes it takes, and
// false when the queue holds no complete key. With flush an incomplete
// sequence at the end is taken as it is.
func (k *keyReader) next(flush bool) ([]byte, int, bool) {
	b := k.pending
	if k.skip {
		return k.skipPaste()
	}
	if len(b) == 0 {
		return nil, 0, false
	}
	switch c := b[0]; {
	case c == 0x1b:
		return k.escape(b, flush)
	case c == '\r' || c == '\n':
		n := 1
		if c == '\r' && len(b) > 1 && b[1] == '\n' {
			n = 2 // a CRLF line end is one Enter
		}
		return b[:1], n, true
	case c < 0x20 || c == 0x7f:
		if !k.paste {
			return b[:1], 1, true
		}
		if c == '\t' {
			// A pasted tab is a space: it must not complete.
			return []byte{' '}, 1, true
		}
		return nil, 1, true // a pasted control character is not a key
	}
	n := 0
	for n < len(b) && b[n] >= 0x20 && b[n] != 0x7f {
		n++
	}
	if n == len(b) && !flush {
		n -= partialRune(b[:n])
		if n == 0 {
			return nil, 0, false // wait for the rest of the character
		}
	}
	return b[:n], n, true
}

// escape parses the escape sequence at the head of b: the paste markers
// switch paste mode, a known key is returned, and an unknown sequence is
// dropped (go-prompt would insert its bytes into the line as text).
func (k *keyReader) escape(b []byte, flush bool) ([]byte, int, bool) {
	n := seqLen(b)
	if n == 0 {
		if !flush {
			return nil, 0, false
		}
		// A lone Escape, or a sequence that never completed: Escape is
		// a key of its own and the bytes after it are typed text.
		if k.paste {
			return nil, 1, true
		}
		return b[:1], 1, true
	}
	seq := b[:n]
	switch {
	case string(seq) == pasteStart:
		k.paste = true
		return nil, n, true
	case string(seq) == pasteEnd:
		k.paste = false
		return nil, n, true
	case k.paste || prompt.GetKey(seq) == prompt.NotDefined:
		return nil, n, true
	}
	return seq, n, true
}

// skipPaste drops queued input up to and including the end of the paste
// being skipped, keeping a possible start of the end marker at the end of
// the queue for the next read.
func (k *keyReader) skipPaste() ([]byte, int, bool) {
	b := k.pending
	if i := bytes.Index(b, []byte(pasteEnd)); i >= 0 {
		k.skip, k.paste = false, false
		return nil, i + len(pasteEnd), true
	}
	keep := 0
	for l := min(len(b), len(pasteEnd)-1); l > 0; l-- {
		if bytes.HasPrefix([]byte(pasteEnd), b[len(b)-l:]) {
			keep = l
			break
		}
	}
	if len(b) == keep {
		return nil, 0, false
	}
	return nil, len(b) - keep, true
}

// seqLen is the length of the complete escape sequence at the head of b
// (which starts with ESC), or 0 when b ends before the sequence does.
// Sequences are parsed by their grammar (CSI, SS3, ESC and one byte)
// rather than go-prompt's table, so an unknown one is skipped whole.
func seqLen(b []byte) int {
	if len(b) < 2 {
		return 0
	}
	switch b[1] {
	case '[':
		if len(b) > 2 && b[2] == '[' {
			// The Linux console's function keys: ESC [ [ A.
			if len(b) < 4 {
				return 0
			}
			return 4
		}
		// CSI: parameter and intermediate bytes, then a final byte.
		for i := 2; i < len(b); i++ {
			switch c := b[i]; {
			case c >= 0x20 && c <= 0x3f:
				continue
			case c >= 0x40 && c <= 0x7e:
				return i + 1
			default:
				return i // malformed: drop what came before c
			}
		}
		return 0
	case 'O':
		if len(b) < 3 {
			return 0
		}
		return 3
	case 0x1b:
		return 1 // Escape, then another sequence
	}
	if b[1] < 0x20 || b[1] == 0x7f {
		return 1 // Escape, then a control key
	}
	if b[1] >= 0x80 && !utf8.FullRune(b[1:]) {
		return 0
	}
	_, size := utf8.DecodeRune(b[1:])
	return 1 + size // Alt and a key
}

// partialRune is how many bytes at the end of b begin a UTF-8 character
// that is not complete yet.
func partialRune(b []byte) int {
	for i := 1; i <= utf8.UTFMax-1 && i <= len(b); i++ {
		c := b[len(b)-i]
		if c < 0x80 {
			return 0
		}
		if utf8.RuneStart(c) {
			if utf8.FullRune(b[len(b)-i:]) {
				return 0
			}
			return i
		}
	}
	return 0
}
