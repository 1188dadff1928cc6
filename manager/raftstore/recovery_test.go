package raftstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
)

// threeBatches writes entries 1-10, 11-20 and 21-30 as three StoreLogs
// calls (three records) into a closed store in a new directory. It returns
// the directory and the offsets where the second and third records start
// and where the file ends.
func threeBatches(t *testing.T) (dir string, ends [3]int64) {
	t.Helper()
	dir = t.TempDir()
	s := openStore(t, dir)
	for i := range 3 {
		storeLogs(t, s, mkLogs(uint64(10*i+1), uint64(10*i+10), 1))
		ends[i] = s.size
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return dir, ends
}

// frame returns payload as a record.
func frame(payload []byte) []byte {
	buf, start := beginRecord(nil)
	buf = append(buf, payload...)
	endRecord(buf, start)
	return buf
}

// TestTornTail damages the end of raft.log as a crash in the middle of the
// last write can, and requires Open to cut the damage off and keep every
// record before it.
func TestTornTail(t *testing.T) {
	fourth := frame(appendEntry([]byte{kindEntries, 1}, mkLog(31, 1)))
	tests := []struct {
		name     string
		damage   func(data []byte, ends [3]int64) []byte
		wantLast uint64
	}{
		{"partial header", func(d []byte, _ [3]int64) []byte { return append(d, 0x20, 0, 0) }, 30},
		{"partial record", func(d []byte, _ [3]int64) []byte { return append(d, fourth[:len(fourth)-3]...) }, 30},
		{"header only", func(d []byte, _ [3]int64) []byte { return append(d, fourth[:headerSize]...) }, 30},
		{"zeros", func(d []byte, _ [3]int64) []byte { return append(d, make([]byte, 4096)...) }, 30},
		{"garbage", func(d []byte, _ [3]int64) []byte { return append(d, bytes.Repeat([]byte("\xde\xad\xbe\xef"), 64)...) }, 30},
		{"last record cut short", func(d []byte, e [3]int64) []byte { return d[:e[2]-5] }, 20},
		{"last record fails its CRC", func(d []byte, e [3]int64) []byte { d[e[2]-1] ^= 0x40; return d }, 20},
		{"last record followed by zeros", func(d []byte, e [3]int64) []byte {
			d[e[1]+headerSize+2] ^= 1
			return append(d, make([]byte, 512)...)
		}, 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, ends := threeBatches(t)
			path := filepath.Join(dir, logName)
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, tt.damage(data, ends), 0o600); err != nil {
				t.Fatal(err)
			}
			want := raft.NewInmemStore()
			storeLogs(t, want, mkLogs(1, tt.wantLast, 1))

			s := openStore(t, dir)
			diff(t, "log after repair", renderLogStore(s, 40), renderLogStore(want, 40))
			wantSize := ends[tt.wantLast/10-1]
			if fi, err := os.Stat(path); err != nil {
				t.Fatal(err)
			} else if fi.Size() != wantSize {
				t.Fatalf("raft.log after repair: %d bytes, want %d", fi.Size(), wantSize)
			}
			// The store appends after the last good record and reopens.
			for _, st := range []store{s, want} {
				storeLogs(t, st, mkLogs(tt.wantLast+1, tt.wantLast+1, 2))
			}
			s = reopen(t, s)
			diff(t, "log after append and reopen", renderLogStore(s, 40), renderLogStore(want, 40))
		})
	}
}

// TestCorruption damages raft.log or the stable file where no crash can,
// and requires Open to fail, naming the file and the record's offset.
func TestCorruption(t *testing.T) {
	tests := []struct {
		name   string
		file   string
		damage func(data []byte, ends [3]int64) (out []byte, offset int64)
	}{
		{"flipped byte in the first record", logName, func(d []byte, _ [3]int64) ([]byte, int64) {
			d[headerSize+5] ^= 0x01
			return d, 0
		}},
		{"flipped byte in the middle record", logName, func(d []byte, e [3]int64) ([]byte, int64) {
			d[(e[0]+e[1])/2] ^= 0x80
			return d, e[0]
		}},
		{"flipped CRC in the middle record", logName, func(d []byte, e [3]int64) ([]byte, int64) {
			d[e[0]+4] ^= 0x01
			return d, e[0]
		}},
		{"length past the end of the file", logName, func(d []byte, e [3]int64) ([]byte, int64) {
			binary.LittleEndian.PutUint32(d[e[0]:], 0xffff_ffff)
			return d, e[0]
		}},
		{"length one byte short", logName, func(d []byte, e [3]int64) ([]byte, int64) {
			n := binary.LittleEndian.Uint32(d[e[0]:])
			binary.LittleEndian.PutUint32(d[e[0]:], n-1)
			return d, e[0]
		}},
		{"zero length", logName, func(d []byte, e [3]int64) ([]byte, int64) {
			binary.LittleEndian.PutUint32(d[e[0]:], 0)
			return d, e[0]
		}},
		{"valid CRC, unknown kind at the tail", logName, func(d []byte, e [3]int64) ([]byte, int64) {
			return append(d, frame([]byte{99, 1, 2, 3})...), e[2]
		}},
		{"valid CRC, trailing bytes at the tail", logName, func(d []byte, e [3]int64) ([]byte, int64) {
			return append(d, frame(append(appendDelete(nil, 1, 2), 0))...), e[2]
		}},
		{"flipped byte in the stable file", stableName, func(d []byte, _ [3]int64) ([]byte, int64) {
			d[len(d)-1] ^= 0x01
			return d, 0
		}},
		{"stable file cut short", stableName, func(d []byte, _ [3]int64) ([]byte, int64) {
			return d[:len(d)-1], 0
		}},
		{"stable file with a second record", stableName, func(d []byte, _ [3]int64) ([]byte, int64) {
			return append(d, d...), int64(len(d))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, ends := threeBatches(t)
			s := openStore(t, dir)
			if err := s.SetUint64([]byte("CurrentTerm"), 7); err != nil {
				t.Fatal(err)
			}
			s.Close()
			path := filepath.Join(dir, tt.file)
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			damaged, offset := tt.damage(data, ends)
			if err := os.WriteFile(path, damaged, 0o600); err != nil {
				t.Fatal(err)
			}

			s, err = open(dir, testOptions())
			if err == nil {
				s.Close()
				t.Fatal("Open of a damaged store succeeded")
			}
			if !errors.Is(err, ErrCorrupt) {
				t.Errorf("error %v does not wrap ErrCorrupt", err)
			}
			for _, want := range []string{path, fmt.Sprintf("offset %d", offset)} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
			after, _ := os.ReadFile(path)
			if !bytes.Equal(after, damaged) {
				t.Error("Open changed a damaged file")
			}
		})
	}
}
