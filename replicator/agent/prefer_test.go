package agent

import (
	"context"
	"fmt"
	"net"
	"testing"
)

// TestPreferFirst: a cluster slave's sources rank in their configured
// order (the primary first) while the primary accepts connections, and
// are left to the client when it does not.
func TestPreferFirst(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	up := l.Addr().String()
	down, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gone := down.Addr().String()
	down.Close()
	defer l.Close()
	ctx := context.Background()
	// Sources name hosts; the address comes from the resolver.
	names := map[string]string{"primary:1": up, "replica:1": gone}
	preferFirst := preferFirst(func(s string) string { return names[s] })
	if got := fmt.Sprint(preferFirst(ctx, []string{"primary:1", "replica:1"})); got != "[primary:1 replica:1]" {
		t.Errorf("primary up, by name: %s", got)
	}
	names = map[string]string{up: up, gone: gone}
	if got := fmt.Sprint(preferFirst(ctx, []string{up, gone})); got != fmt.Sprint([]string{up, gone}) {
		t.Errorf("primary up: %s", got)
	}
	if got := preferFirst(ctx, []string{gone, up}); got != nil {
		t.Errorf("primary down: %v, want nil (the client's order)", got)
	}
	if got := preferFirst(ctx, []string{up}); got != nil {
		t.Errorf("one source: %v, want nil", got)
	}
}
