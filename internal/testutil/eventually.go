package testutil

import (
	"testing"
	"time"
)

// PollInterval is how often Eventually calls its function.
const PollInterval = 20 * time.Millisecond

// Eventually calls f every PollInterval until it returns nil, and fails the
// test with f's last error when timeout passes first. f runs on the test's
// goroutine and must not call t.Fatal.
func Eventually(t testing.TB, timeout time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(PollInterval)
	defer tick.Stop()
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s: %v", timeout, err)
			return
		}
		<-tick.C
	}
}
