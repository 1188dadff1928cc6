package thl

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/carbidedb/carbide/rpc/gen/thlpb"
)

// nextAsync runs r.Next in a goroutine.
func nextAsync(ctx context.Context, r *Reader) <-chan result {
	ch := make(chan result, 1)
	go func() {
		ev, err := r.Next(ctx)
		ch <- result{ev, err}
	}()
	return ch
}

type result struct {
	ev  *thlpb.Event
	err error
}

func waitResult(t *testing.T, ch <-chan result) result {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("reader did not wake up")
		return result{}
	}
}

// notReady fails when ch has a result already (the reader should wait).
func notReady(t *testing.T, ch <-chan result) {
	t.Helper()
	select {
	case r := <-ch:
		t.Fatalf("reader returned %v, %v; want it to wait", r.ev, r.err)
	default:
	}
}

func TestTailingReaderWakesOnAppend(t *testing.T) {
	s := mustOpen(t, testConfig(t, t.TempDir()))
	// On an empty log it waits for its seqno; then it follows, fragment
	// by fragment, across rotations.
	r, err := s.NewReader(10)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for q := uint64(10); q < 200; q++ {
		for _, ev := range txn(q, 1+int(q%2), 100) {
			ch := nextAsync(t.Context(), r)
			notReady(t, ch)
			if err := s.Append(ev); err != nil {
				t.Fatal(err)
			}
			if res := waitResult(t, ch); res.err != nil || res.ev.GetSeqno() != ev.GetSeqno() || res.ev.GetFragno() != ev.GetFragno() {
				t.Fatalf("got %v, %v; want seqno %d fragno %d", res.ev, res.err, ev.GetSeqno(), ev.GetFragno())
			}
		}
	}
	if len(s.Info().Files) < 2 {
		t.Fatal("no rotation happened")
	}
}

func TestTailingReaderStops(t *testing.T) {
	s := mustOpen(t, testConfig(t, t.TempDir()))
	appendAll(t, s, workload(0, 5, 10), 5)
	r, _ := s.NewReader(5)

	// ctx cancel.
	ctx, cancel := context.WithCancel(t.Context())
	ch := nextAsync(ctx, r)
	notReady(t, ch)
	cancel()
	if res := waitResult(t, ch); !errors.Is(res.err, context.Canceled) {
		t.Fatalf("after cancel: %v", res.err)
	}
	// Reader.Close from another goroutine.
	ch = nextAsync(t.Context(), r)
	notReady(t, ch)
	r.Close()
	if res := waitResult(t, ch); !errors.Is(res.err, ErrClosed) {
		t.Fatalf("after Reader.Close: %v", res.err)
	}
	// Store.Close.
	r2, _ := s.NewReader(5)
	ch = nextAsync(t.Context(), r2)
	notReady(t, ch)
	s.Close()
	if res := waitResult(t, ch); !errors.Is(res.err, ErrClosed) {
		t.Fatalf("after Store.Close: %v", res.err)
	}
	if _, err := r2.Next(t.Context()); !errors.Is(err, ErrClosed) {
		t.Fatal(err)
	}
	r2.Close()
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := s.Append(event(5, 0, true, 1)); !errors.Is(err, ErrClosed) {
		t.Fatalf("append after close: %v", err)
	}
	if _, err := s.NewReader(0); !errors.Is(err, ErrClosed) {
		t.Fatalf("reader after close: %v", err)
	}
}

func TestConcurrentAppenderAndReaders(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.SegmentSize = 32 << 10
	s := mustOpen(t, cfg)
	const total = 4000
	evs := workload(0, total, 80)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < len(evs); {
			n := min(1+i%17, len(evs)-i)
			if err := s.Append(evs[i : i+n]...); err != nil {
				errs <- err
				return
			}
			i += n
			if i%100 < n {
				if err := s.Sync(); err != nil {
					errs <- err
					return
				}
			}
		}
	}()
	for k := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			from := uint64(k * 700)
			r, err := s.NewReader(from)
			if err != nil {
				errs <- err
				return
			}
			defer r.Close()
			want := evs[find(evs, from):]
			for i := range want {
				ev, err := r.Next(ctx)
				if err != nil {
					errs <- fmt.Errorf("reader %d at %d: %w", k, i, err)
					return
				}
				if ev.GetSeqno() != want[i].GetSeqno() || ev.GetFragno() != want[i].GetFragno() {
					errs <- fmt.Errorf("reader %d: got seqno %d fragno %d, want %d %d", k, ev.GetSeqno(), ev.GetFragno(), want[i].GetSeqno(), want[i].GetFragno())
					return
				}
			}
		}()
	}
	wg.Add(1)
	go func() { // Get and Info while it all runs
		defer wg.Done()
		for q := uint64(0); q < total; q += 37 {
			for {
				if max, ok := s.MaxSeqno(); ok && max >= q {
					break
				}
				select {
				case <-ctx.Done():
					errs <- ctx.Err()
					return
				case <-time.After(time.Millisecond):
				}
			}
			if _, err := s.Get(q); err != nil {
				errs <- fmt.Errorf("get %d: %w", q, err)
				return
			}
			_ = s.Info()
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestResetWakesWaitingReader: a reader waiting at the end of the log
// fails with ErrTruncated as soon as the log is reset.
func TestResetWakesWaitingReader(t *testing.T) {
	s, err := Open(Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Append(&thlpb.Event{Seqno: 0, LastFrag: true, EventId: "mysql-bin.000001:0000000000000100"}); err != nil {
		t.Fatal(err)
	}
	r, err := s.NewReader(1)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	done := make(chan error, 1)
	go func() {
		_, err := r.Next(context.Background())
		done <- err
	}()
	time.Sleep(20 * time.Millisecond) // let Next park at the end
	if err := s.Reset(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, ErrTruncated) {
			t.Fatalf("Next after Reset = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a reader waiting at the end was not woken by Reset")
	}
}
