package testutil

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// RequireTests fails the test for each name in names (comma-separated)
// that is not a test function of the package under test (its *_test.go
// files in the working directory). The flag walks of the command-line
// tools name the test that shows each option acting; this keeps those
// names true when tests are renamed or removed.
func RequireTests(t testing.TB, what, names string) {
	t.Helper()
	have := testFuncs(t)
	for _, n := range strings.Split(names, ",") {
		if n = strings.TrimSpace(n); n != "" && !have[n] {
			t.Errorf("%s names %s, and the package has no such test", what, n)
		}
	}
}

var (
	testFuncMu    sync.Mutex
	testFuncCache map[string]bool
)

// testFuncs returns the names of the package's top-level functions in its
// test files.
func testFuncs(t testing.TB) map[string]bool {
	t.Helper()
	testFuncMu.Lock()
	defer testFuncMu.Unlock()
	if testFuncCache != nil {
		return testFuncCache
	}
	files, err := filepath.Glob("*_test.go")
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, name := range files {
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			if fn, ok := d.(*ast.FuncDecl); ok && fn.Recv == nil {
				names[fn.Name.Name] = true
			}
		}
	}
	testFuncCache = names
	return names
}
