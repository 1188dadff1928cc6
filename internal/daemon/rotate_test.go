package daemon

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

func readLog(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func write(t *testing.T, r *Rotating, s string) {
	t.Helper()
	if n, err := r.Write([]byte(s)); err != nil || n != len(s) {
		t.Fatalf("Write(%q) = %d, %v", s, n, err)
	}
}

// TestRotateAtLimit: a write that would take the file past the limit goes
// to a new file, the old one becoming x.log.1; a write larger than the
// limit fills a file of its own.
func TestRotateAtLimit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log", "x.log")
	var opened int
	r, err := OpenRotating(path, 10, KeepLogs, func(*os.File) { opened++ })
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	write(t, r, "aaaa\n")
	write(t, r, "bbbb\n") // exactly 10: no rotation
	if _, err := os.Stat(path + ".1"); err == nil || readLog(t, path) != "aaaa\nbbbb\n" {
		t.Fatalf("rotated before the limit: %q", readLog(t, path))
	}
	write(t, r, "c\n")
	if got, got1 := readLog(t, path), readLog(t, path+".1"); got != "c\n" || got1 != "aaaa\nbbbb\n" {
		t.Fatalf("after the limit: x.log %q, x.log.1 %q", got, got1)
	}
	write(t, r, "a line longer than the limit\n")
	if got, got1 := readLog(t, path), readLog(t, path+".1"); got != "a line longer than the limit\n" || got1 != "c\n" {
		t.Fatalf("a long line: x.log %q, x.log.1 %q", got, got1)
	}
	if opened != 3 {
		t.Errorf("onOpen called %d times, want 3 (the first file and two rotations)", opened)
	}
}

// TestRotateKeepsFive: after many rotations x.log.1 … x.log.5 hold the
// newest, in order, and nothing older is kept.
func TestRotateKeepsFive(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.log")
	r, err := OpenRotating(path, 8, KeepLogs, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for i := range 10 {
		write(t, r, fmt.Sprintf("line %d\n", i))
	}
	if got := readLog(t, path); got != "line 9\n" {
		t.Errorf("x.log = %q", got)
	}
	for n := 1; n <= KeepLogs; n++ {
		if got, want := readLog(t, fmt.Sprintf("%s.%d", path, n)), fmt.Sprintf("line %d\n", 9-n); got != want {
			t.Errorf("x.log.%d = %q, want %q", n, got, want)
		}
	}
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := []string{"x.log", "x.log.1", "x.log.2", "x.log.3", "x.log.4", "x.log.5"}; !slices.Equal(names, want) {
		t.Errorf("files %v, want %v", names, want)
	}
}

// TestRotateAfterRestart: a writer opened on the file a previous process
// left appends to it and counts what it holds toward the limit.
func TestRotateAfterRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.log")
	r, err := OpenRotating(path, 100, KeepLogs, nil)
	if err != nil {
		t.Fatal(err)
	}
	write(t, r, strings.Repeat("a", 59)+"\n")
	r.Close()
	if _, err := r.Write([]byte("late\n")); err == nil {
		t.Error("a write after Close succeeded")
	}
	r, err = OpenRotating(path, 100, KeepLogs, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	write(t, r, strings.Repeat("b", 29)+"\n") // 90 bytes
	if _, err := os.Stat(path + ".1"); err == nil {
		t.Fatal("rotated below the limit after a restart")
	}
	write(t, r, strings.Repeat("c", 19)+"\n") // 110: rotates
	if got := readLog(t, path+".1"); len(got) != 90 || !strings.HasPrefix(got, "aaa") {
		t.Errorf("x.log.1 = %q, want both runs' 90 bytes", got)
	}
	if got := readLog(t, path); got != strings.Repeat("c", 19)+"\n" {
		t.Errorf("x.log = %q", got)
	}
}

// TestRotateConcurrentWrites: writers racing through rotations lose no
// line and split none.
func TestRotateConcurrentWrites(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.log")
	const writers, lines, keep = 8, 200, 100
	r, err := OpenRotating(path, 1024, keep, nil)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range lines {
				fmt.Fprintf(r, "writer %d line %04d\n", w, i)
			}
		})
	}
	wg.Wait()
	r.Close()
	seen := map[string]bool{}
	entries, _ := os.ReadDir(dir)
	if len(entries) < 10 {
		t.Fatalf("%d files: the test did not rotate much", len(entries))
	}
	for _, e := range entries {
		data := readLog(t, filepath.Join(dir, e.Name()))
		if len(data) > 1024 {
			t.Errorf("%s holds %d bytes, past the limit", e.Name(), len(data))
		}
		for l := range strings.Lines(data) {
			var w, i int
			if _, err := fmt.Sscanf(l, "writer %d line %04d\n", &w, &i); err != nil || seen[l] {
				t.Fatalf("%s: line %q split or repeated", e.Name(), l)
			}
			seen[l] = true
		}
	}
	if len(seen) != writers*lines {
		t.Errorf("%d lines kept, want %d", len(seen), writers*lines)
	}
}
