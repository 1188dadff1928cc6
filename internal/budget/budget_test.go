package budget

import (
	"context"
	"testing"
	"time"
)

func TestBound(t *testing.T) {
	b := New(100)
	ctx := context.Background()
	if err := b.Acquire(ctx, 500); err != nil { // alone: passes however large
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() { got <- b.Acquire(ctx, 1) }()
	select {
	case err := <-got:
		t.Fatalf("acquired past the bound: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	b.Release(500)
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	if err := b.Acquire(ctx, 99); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	go func() { got <- b.Acquire(cctx, 1) }()
	cancel()
	if err := <-got; err != context.Canceled {
		t.Fatalf("cancelled acquire = %v", err)
	}
}
