package tpm

import (
	"fmt"
	"os"
	"testing"
)

// TestMain points HOME at a temporary directory: tpm install may write the
// profile-script (~/.bashrc), and a test must never touch the real one.
func TestMain(m *testing.M) {
	home, err := os.MkdirTemp("", "carbide-tpm-home-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv("HOME", home)
	code := m.Run()
	os.RemoveAll(home)
	os.Exit(code)
}
