package lease

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "primary.lease")
	if _, err := Left(path); err == nil {
		t.Fatal("no lease file: want an error")
	}
	if err := WriteEnd(path, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	left, err := Left(path)
	if err != nil || left <= time.Second || left > 2*time.Second {
		t.Fatalf("left %v (%v), want just under 2s", left, err)
	}
	if err := os.WriteFile(path, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Left(path); err == nil {
		t.Fatal("a damaged lease file must not give a lease")
	}
}
