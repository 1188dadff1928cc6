package raftstore

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzOpen opens stores whose raft.log holds arbitrary bytes. Open must not
// panic; it either fails with ErrCorrupt or succeeds, and then the repaired
// store must reopen with the same contents.
//
// With framed set, data is not the file but a list of payloads, each a
// 2-byte little-endian length and the bytes, that are written as records
// with valid CRCs: random bytes almost never pass a CRC, so this is what
// reaches the payload decoder.
func FuzzOpen(f *testing.F) {
	dir := f.TempDir()
	s, err := open(dir, testOptions())
	if err != nil {
		f.Fatal(err)
	}
	storeLogs(f, s, mkLogs(1, 5, 1))
	storeLogs(f, s, mkLogs(6, 6, 2))
	deleteRange(f, s, 1, 2)
	storeLogs(f, s, mkLogs(3, 4, 3))
	s.Close()
	valid, err := os.ReadFile(filepath.Join(dir, logName))
	if err != nil {
		f.Fatal(err)
	}
	var payloads []byte
	for off := 0; off < len(valid); {
		payload, next, _ := readRecord(valid, off)
		payloads = binary.LittleEndian.AppendUint16(payloads, uint16(len(payload)))
		payloads = append(payloads, payload...)
		off = next
	}
	for _, seed := range [][]byte{
		valid, valid[:len(valid)-3], valid[:headerSize+1], {}, make([]byte, 64),
		frame([]byte{kindEntries, 0xff, 0xff, 0xff, 0xff, 0x0f}),
		frame(appendDelete(nil, 0, ^uint64(0))),
	} {
		f.Add(false, seed)
	}
	f.Add(true, payloads)

	f.Fuzz(func(t *testing.T, framed bool, data []byte) {
		if framed {
			data = framePayloads(data)
		}
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, logName), data, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := open(dir, testOptions())
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Open: %v; want success or ErrCorrupt", err)
			}
			return
		}
		before := renderEntries(s)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s, err = open(dir, testOptions())
		if err != nil {
			t.Fatalf("reopen after a successful open: %v", err)
		}
		defer s.Close()
		diff(t, "contents after reopen", renderEntries(s), before)
	})
}

// framePayloads turns a list of length-prefixed payloads into records.
func framePayloads(data []byte) []byte {
	var out []byte
	for len(data) >= 2 {
		n := min(int(binary.LittleEndian.Uint16(data)), len(data)-2)
		out = append(out, frame(data[2:2+n])...)
		data = data[2+n:]
	}
	return out
}
