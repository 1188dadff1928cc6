package consensus

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/carbidedb/carbide/internal/testutil"
	"github.com/carbidedb/carbide/manager/policy"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(l.Addr().(*net.TCPAddr).Port))
}

// A group of one: it leads, applies changes in order, refuses a change
// the state refuses, and keeps what it applied across a restart.
func TestNodeOfOne(t *testing.T) {
	dir, addr := t.TempDir(), freeAddr(t)
	notified := make(chan struct{}, 100)
	open := func() *Node {
		n, err := Open(Config{Dir: dir, ID: "east1", Bind: addr, Advertise: addr, Voters: map[string]string{"east1": addr},
			Local: net.ParseIP("127.0.0.1"), Logger: testutil.Logger(t), Notify: func() { notified <- struct{}{} }})
		if err != nil {
			t.Fatal(err)
		}
		testutil.Eventually(t, 10*time.Second, func() error {
			if !n.Leading() || !n.InTouch() || n.Leader() != "east1" {
				return fmt.Errorf("not leading yet: %v", n.Describe())
			}
			return nil
		})
		return n
	}
	n := open()
	if err := n.Barrier(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if err := n.Apply(policy.Change{Op: policy.OpInit, Host: "east1", Hosts: []string{"east1", "east2"}},
		policy.Change{Op: policy.OpPolicy, Value: policy.Maintenance}); err != nil {
		t.Fatal(err)
	}
	st, index := n.View()
	if st.Primary != "east1" || st.Policy != policy.Maintenance || index == 0 || index != n.Index() || !n.CaughtUp() {
		t.Fatalf("state %+v at %d (index %d, applied %d)", st, index, n.Index(), n.AppliedIndex())
	}
	if err := n.Apply(policy.Change{Op: policy.OpPromote, Host: "west9"}); err == nil {
		t.Fatal("a change the state refuses was applied")
	}
	if got := n.State(); got.Primary != "east1" {
		t.Fatalf("a refused change changed the state: %+v", got)
	}
	select {
	case <-notified:
	default:
		t.Fatal("no notification of an applied change")
	}
	n.Close(testutil.Logger(t))

	n = open()
	defer n.Close(testutil.Logger(t))
	testutil.Eventually(t, 5*time.Second, func() error {
		if st := n.State(); st.Primary != "east1" || st.Policy != policy.Maintenance {
			return fmt.Errorf("after a restart: %+v", st)
		}
		return nil
	})
}

// A snapshot restores the state and its index.
func TestSnapshotRestore(t *testing.T) {
	f := &fsm{}
	st, err := policy.State{}.Apply(policy.Change{Op: policy.OpInit, Host: "east1", Hosts: []string{"east1"}})
	if err != nil {
		t.Fatal(err)
	}
	f.st, f.index = st, 41
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	sink := &memSink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	snap.Release()
	g := &fsm{}
	if err := g.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	if got, index := g.view(); got.Primary != "east1" || index != 41 {
		t.Fatalf("restored %+v at %d", got, index)
	}
	if err := g.Restore(io.NopCloser(bytes.NewReader([]byte("{torn")))); err == nil {
		t.Fatal("a torn snapshot was restored")
	}
	if err, _ := g.Apply(&raft.Log{Index: 42, Data: []byte("not json")}).(error); err == nil {
		t.Fatal("a torn entry was applied")
	}
}

type memSink struct {
	bytes.Buffer
	cancelled bool
}

func (s *memSink) ID() string    { return "mem" }
func (s *memSink) Cancel() error { s.cancelled = true; return nil }
func (s *memSink) Close() error  { return nil }
