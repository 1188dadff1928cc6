package fencing

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestOneWriterOfReadOnly: no Go source of Carbide's programs but this
// package and internal/fence (the replicator's fencer calls it) sets
// read_only; tests and the sandbox's my.cnf are not programs.
func TestOneWriterOfReadOnly(t *testing.T) {
	root := filepath.Join("..", "..")
	set := regexp.MustCompile("(?i)[\"`][^\"`\n]*SET\\s+(GLOBAL\\s+|@@global\\.)read_only") // in a string, not a comment
	allowed := map[string]bool{filepath.Join("manager", "fencing"): true, filepath.Join("internal", "fence"): true}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			if path != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "bin" || rel == filepath.Join("internal", "e2e") || rel == filepath.Join("internal", "bench")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") || allowed[filepath.Dir(rel)] {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if set.Match(b) {
			t.Errorf("%s sets read_only: only manager/fencing (and internal/fence) may", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
