package cctrl

import (
	"bytes"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	prompt "github.com/c-bata/go-prompt"
)

// pastedBlock is the guide's maintenance steps as an operator pastes them.
var pastedBlock = []string{
	"ls",
	"set policy maintenance",
	"router * offline",
	"set force true",
	"datasource east2 shun",
	"replicator east2 offline",
	"datasource east2 recover",
	"datasource east2 online",
	"router * online",
	"set policy automatic",
}

// fakeTTY is a terminal whose input arrives in chunks; a Read returns what
// has arrived, at most 1024 bytes as go-prompt's parser does, or EAGAIN.
type fakeTTY struct {
	avail             []byte
	reads             int
	setups, teardowns int
}

func (f *fakeTTY) Setup() error    { f.setups++; return nil }
func (f *fakeTTY) TearDown() error { f.teardowns++; return nil }
func (f *fakeTTY) GetWinSize() *prompt.WinSize {
	return &prompt.WinSize{Row: 24, Col: 80}
}

func (f *fakeTTY) Read() ([]byte, error) {
	f.reads++
	if len(f.avail) == 0 {
		return []byte{}, syscall.EAGAIN
	}
	n := min(len(f.avail), ttyReadSize)
	b := bytes.Clone(f.avail[:n])
	f.avail = f.avail[n:]
	return b, nil
}

// keyTest drives a keyReader as go-prompt does: a Read every 10ms, and
// after an Enter the line runs (TearDown, then Setup).
type keyTest struct {
	t     *testing.T
	tty   *fakeTTY
	k     *keyReader
	out   bytes.Buffer
	clock time.Time
	keys  []string
	line  string // the text keys since the last Enter
	// fail is a line that fails when it runs: then the driver calls
	// Discard, and dropped is what it said.
	fail    string
	dropped bool
}

func newKeyTest(t *testing.T) *keyTest {
	kt := &keyTest{t: t, tty: &fakeTTY{}, clock: time.Unix(1e9, 0)}
	kt.k = newKeyReader(kt.tty, &kt.out)
	kt.k.now = func() time.Time { return kt.clock }
	if err := kt.k.Setup(); err != nil {
		t.Fatal(err)
	}
	return kt
}

// poll reads n times, 10ms apart, collecting the keys.
func (kt *keyTest) poll(n int) {
	for range n {
		kt.clock = kt.clock.Add(10 * time.Millisecond)
		b, err := kt.k.Read()
		if err != nil {
			if err != errNoKey {
				kt.t.Fatalf("Read: %v", err)
			}
			continue
		}
		kt.keys = append(kt.keys, string(b))
		switch prompt.GetKey(b) {
		case prompt.Enter, prompt.ControlM:
			kt.k.TearDown()
			if kt.line == kt.fail {
				kt.dropped = kt.k.Discard()
			}
			kt.line = ""
			kt.k.Setup()
		case prompt.NotDefined:
			kt.line += string(b)
		}
	}
}

// feed delivers each chunk in one read, polling a little (less than the
// escape wait) after each, then long enough for everything to come out.
func (kt *keyTest) feed(chunks ...string) []string {
	for _, c := range chunks {
		kt.tty.avail = append(kt.tty.avail, c...)
		kt.poll(3)
	}
	kt.poll(2000)
	return kt.keys
}

func splitKeys(chunks ...string) func(*testing.T) []string {
	return func(t *testing.T) []string { return newKeyTest(t).feed(chunks...) }
}

func TestKeyReaderSplitsReads(t *testing.T) {
	block := strings.Join(pastedBlock, "\r") + "\r"
	var blockKeys []string
	for _, l := range pastedBlock {
		blockKeys = append(blockKeys, l, "\r")
	}
	for _, c := range []struct {
		name string
		got  func(*testing.T) []string
		want []string
	}{
		{"one line", splitKeys("ls\r"), []string{"ls", "\r"}},
		{"two lines", splitKeys("ls\rphysical\r"), []string{"ls", "\r", "physical", "\r"}},
		{"line feeds and CRLF", splitKeys("ls\nphysical\r\nping\r"), []string{"ls", "\n", "physical", "\r", "ping", "\r"}},
		{"ten lines in one read", splitKeys(block), blockKeys},
		{"ten lines a byte at a time", splitKeys(strings.Split(block, "")...), byteKeys(block)},
		{"control keys", splitKeys("se\tpo\x7f\x03\x01\x05ls\x04"), []string{"se", "\t", "po", "\x7f", "\x03", "\x01", "\x05", "ls", "\x04"}},
		{"arrows and Home/End", splitKeys("ls\x1b[A\x1b[B\x1b[D\x1b[C\x1b[H\x1b[F\x1b[1~\x1b[4~\x1b[3~\x1bOA\x1b[1;5C"),
			[]string{"ls", "\x1b[A", "\x1b[B", "\x1b[D", "\x1b[C", "\x1b[H", "\x1b[F", "\x1b[1~", "\x1b[4~", "\x1b[3~", "\x1bOA", "\x1b[1;5C"}},
		{"escape split across reads", splitKeys("ls\x1b", "[", "1;5", "D\x1b[", "A"), []string{"ls", "\x1b[1;5D", "\x1b[A"}},
		{"unknown sequences dropped", splitKeys("\x1b[I\x1bbls\x1b[O\x1b[12;5R\r"), []string{"ls", "\r"}},
		{"lone escape", splitKeys("ls\x1b"), []string{"ls", "\x1b"}},
		{"escape then a control key", splitKeys("\x1b\x7f"), []string{"\x1b", "\x7f"}},
		{"UTF-8 kept whole", splitKeys("use café – 東京 🐬\r"), []string{"use café – 東京 🐬", "\r"}},
		{"UTF-8 split across reads", splitKeys("caf\xc3", "\xa9 \xf0\x9f", "\x90", "\xac\r"), []string{"caf", "é ", "🐬", "\r"}},
		{"bracketed paste", splitKeys(pasteStart + block + pasteEnd), blockKeys},
		{"bracketed paste, markers split", splitKeys("\x1b[20", "0~ls\rphys", "ical\r\x1b[2", "01", "~ping\r"),
			[]string{"ls", "\r", "phys", "ical", "\r", "ping", "\r"}},
		{"pasted controls are not keys", splitKeys(pasteStart + "set\tpolicy\x04 maintenance\x1b[A\x03\r" + pasteEnd + "\x1b[A"),
			[]string{"set", " ", "policy", " maintenance", "\r", "\x1b[A"}},
		{"Ctrl-D after a paste", splitKeys("ls\rphysical\r\x04"), []string{"ls", "\r", "physical", "\r", "\x04"}},
		{"Ctrl-D after a bracketed paste", splitKeys(pasteStart+"ls\rphysical\n"+pasteEnd, "\x04"), []string{"ls", "\r", "physical", "\n", "\x04"}},
		{"a paste larger than a read", splitKeys(strings.Repeat("ping\r", 500)), repeatKeys(500, "ping", "\r")},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := c.got(t); fmt.Sprintf("%q", got) != fmt.Sprintf("%q", c.want) {
				t.Errorf("keys\n%q\nwant\n%q", got, c.want)
			}
		})
	}
}

func byteKeys(s string) []string {
	var out []string
	for _, c := range []byte(s) {
		out = append(out, string(c))
	}
	return out
}

func repeatKeys(n int, keys ...string) []string {
	var out []string
	for range n {
		out = append(out, keys...)
	}
	return out
}

// A lone Escape waits for what may follow, then is a key of its own.
func TestKeyReaderEscapeWaits(t *testing.T) {
	kt := newKeyTest(t)
	kt.tty.avail = []byte("\x1b")
	kt.poll(3)
	if len(kt.keys) != 0 {
		t.Fatalf("a lone Escape came out at once: %q", kt.keys)
	}
	kt.poll(5)
	if fmt.Sprint(kt.keys) != "[\x1b]" {
		t.Fatalf("keys %q after the wait, want Escape", kt.keys)
	}
	// An Escape whose sequence never completes: Escape, then text.
	kt.keys = nil
	kt.tty.avail = []byte("\x1b[2")
	kt.poll(20)
	if fmt.Sprintf("%q", kt.keys) != `["\x1b" "[2"]` {
		t.Fatalf("keys %q", kt.keys)
	}
}

// Queued keys come out without reading the terminal, and nothing comes
// out between an Enter and the next Setup.
func TestKeyReaderQueueAndHold(t *testing.T) {
	tty := &fakeTTY{avail: []byte("ls\rphysical\r")}
	k := newKeyReader(tty, nil)
	k.Setup()
	for _, want := range []string{"ls", "\r"} {
		b, err := k.Read()
		if err != nil || string(b) != want {
			t.Fatalf("Read = %q, %v; want %q", b, err, want)
		}
	}
	if tty.reads != 1 {
		t.Errorf("%d reads of the terminal for one chunk", tty.reads)
	}
	if b, err := k.Read(); err != errNoKey {
		t.Fatalf("Read after Enter = %q, %v; want no key until the line has run", b, err)
	}
	k.TearDown()
	k.Setup()
	for _, want := range []string{"physical", "\r"} {
		if b, err := k.Read(); err != nil || string(b) != want {
			t.Fatalf("Read = %q, %v; want %q", b, err, want)
		}
	}
	if tty.reads != 1 {
		t.Errorf("queued keys read the terminal: %d reads", tty.reads)
	}
}

// Setup asks the terminal for bracketed paste, TearDown stops it.
func TestKeyReaderSwitchesPaste(t *testing.T) {
	kt := newKeyTest(t)
	kt.k.TearDown()
	if got := kt.out.String(); got != pasteOn+pasteOff || kt.tty.setups != 1 || kt.tty.teardowns != 1 {
		t.Errorf("wrote %q; setups %d, teardowns %d", got, kt.tty.setups, kt.tty.teardowns)
	}
}

// After an interrupted line, Discard drops the rest of its paste, including
// the part of a bracketed paste not read yet, and keeps later typing.
func TestKeyReaderDiscard(t *testing.T) {
	for _, c := range []struct {
		name    string
		chunks  []string
		dropped bool
		want    string
	}{
		{"burst", []string{"swich\rls\rphysical\r", "ping\r"}, true, `["swich" "\r" "ping" "\r"]`},
		{"bracketed paste read in two", []string{pasteStart + "swich\rls\r", "physical\r\x1b[2", "01~ping\r"}, true, `["swich" "\r" "ping" "\r"]`},
		{"bracketed paste, then typing", []string{pasteStart + "swich\rls\r" + pasteEnd + "ping\r"}, true, `["swich" "\r" "ping" "\r"]`},
		{"failing last line", []string{pasteStart + "ls\rswich\r" + pasteEnd, "ping\r"}, false, `["ls" "\r" "swich" "\r" "ping" "\r"]`},
		{"failing typed line", []string{"swich\r", "ping\r"}, false, `["swich" "\r" "ping" "\r"]`},
	} {
		t.Run(c.name, func(t *testing.T) {
			kt := newKeyTest(t)
			kt.fail = "swich"
			if got := fmt.Sprintf("%q", kt.feed(c.chunks...)); got != c.want {
				t.Errorf("keys %s, want %s", got, c.want)
			}
			if kt.dropped != c.dropped {
				t.Errorf("Discard said %t, want %t", kt.dropped, c.dropped)
			}
		})
	}
}
