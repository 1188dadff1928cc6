package testutil

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestEventuallySucceeds(t *testing.T) {
	calls := 0
	Eventually(t, 5*time.Second, func() error {
		calls++
		if calls < 3 {
			return fmt.Errorf("call %d", calls)
		}
		return nil
	})
	if calls != 3 {
		t.Errorf("f called %d times, want 3", calls)
	}
}

// fatalTB records Fatalf instead of stopping the goroutine.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Helper() {}
func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
}

func TestEventuallyTimesOutWithLastError(t *testing.T) {
	fake := &fatalTB{TB: t}
	calls := 0
	begin := time.Now()
	Eventually(fake, 100*time.Millisecond, func() error {
		calls++
		return errors.New("not yet " + fmt.Sprint(calls))
	})
	if !strings.Contains(fake.msg, fmt.Sprintf("not yet %d", calls)) {
		t.Errorf("Fatalf message %q does not carry the last error (call %d)", fake.msg, calls)
	}
	if d := time.Since(begin); d < 100*time.Millisecond {
		t.Errorf("gave up after %s, before the timeout", d)
	}
	if calls < 3 {
		t.Errorf("f called %d times in 100ms, want polling every ~20ms", calls)
	}
}
