package certs

import (
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// seedStores adds every fixture, whole and cut, to the corpus.
func seedStores(f *testing.F) {
	f.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "*.*"))
	if err != nil {
		f.Fatal(err)
	}
	for _, p := range paths {
		if filepath.Ext(p) == ".sh" || filepath.Ext(p) == ".md" {
			continue
		}
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
		f.Add(data[:len(data)/2])
		f.Add(data[:len(data)-1])
	}
	f.Add([]byte{})
	f.Add([]byte{0xFE, 0xED, 0xFE, 0xED, 0, 0, 0, 2, 0xFF, 0xFF, 0xFF, 0xFF})
}

// FuzzJKS: the JKS reader never panics, and whatever it reads with the
// right password the writer writes back readable.
func FuzzJKS(f *testing.F) {
	seedStores(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		ks, _, err := parseJKS(data)
		if err != nil {
			return
		}
		// The digest rarely survives a mutation: run the key protector on
		// every entry anyway.
		for _, k := range ks.keys {
			_, _ = recoverKey(k.protected, fixturePassword)
		}
		full, err := decodeJKS(data, fixturePassword)
		if err != nil {
			return
		}
		out, err := encodeJKS(full, fixturePassword, rand.Reader)
		if err != nil {
			return // a key type the writer cannot marshal
		}
		if _, err := decodeJKS(out, fixturePassword); err != nil {
			t.Fatalf("our own JKS does not read back: %v", err)
		}
	})
}

// FuzzLoad: loading any bytes as keystore and truststore never panics,
// and every error is one of the sentences Load promises.
func FuzzLoad(f *testing.F) {
	seedStores(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		const path = "/fuzz/keystore"
		ks, err := decodeStore(keystoreKind, path, data, fixturePassword)
		if err != nil {
			checkFuzzError(t, err)
			return
		}
		if _, err := material(ks, path, ks.certs()); err != nil {
			checkFuzzError(t, err)
		}
	})
}

func checkFuzzError(t *testing.T, err error) {
	t.Helper()
	for _, kind := range []error{ErrPassword, ErrFormat, ErrDamaged, ErrNoKey, ErrNoTrusted} {
		if errors.Is(err, kind) {
			return
		}
	}
	t.Fatalf("error %q is none of the package's kinds", err)
}
