package membership

import (
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/carbidedb/carbide/internal/testutil"
	"github.com/carbidedb/carbide/manager/policy"
	"github.com/carbidedb/carbide/rpc/gen/replicatorpb"
)

// freePort is a TCP and UDP port free on 127.0.0.1 at the moment.
func freePort(t *testing.T) int {
	t.Helper()
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		u, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err == nil {
			u.Close()
			return port
		}
	}
	t.Fatal("no free port")
	return 0
}

// Two managers' pools on loopback: each sees the other's published facts
// with Alive set, and one that leaves is out of contact.
func TestPoolGossipsFacts(t *testing.T) {
	key := make([]byte, 32)
	ports := []int{freePort(t), freePort(t)}
	var pools []*Pool
	for i, name := range []string{"east1", "east2"} {
		other := net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[1-i]))
		p, err := New(Config{Name: name, Addr: "127.0.0.1", Port: ports[i], Key: key, Peers: []string{other}, Stale: 2 * time.Second,
			Logger: testutil.Logger(t)})
		if err != nil {
			t.Fatal(err)
		}
		pools = append(pools, p)
	}
	defer pools[0].Leave()
	pools[1].Publish(policy.Facts{Host: "east2", ReplState: "ONLINE", Applied: 42})
	testutil.Eventually(t, 10*time.Second, func() error {
		pools[0].Join()
		facts, out := pools[0].View(time.Now())
		if f := facts["east2"]; !f.Alive || f.Applied != 42 || len(out) != 0 {
			return fmt.Errorf("east1 sees %+v, out of contact %v", facts, out)
		}
		return nil
	})
	if !pools[0].SeenWithin("east2", time.Now(), 5*time.Second) || pools[0].SeenWithin("east3", time.Now(), time.Hour) {
		t.Fatal("SeenWithin wrong")
	}
	if n := len(pools[0].Members()); n != 2 {
		t.Fatalf("%d members, want 2", n)
	}
	pools[1].Leave()
	testutil.Eventually(t, 10*time.Second, func() error {
		if facts, _ := pools[0].View(time.Now()); facts["east2"].Alive {
			return fmt.Errorf("east2 still alive after it left")
		}
		return nil
	})
}

// A static pool knows what it heard, stale after Stale.
func TestStaticPool(t *testing.T) {
	p := NewStatic("east1", time.Second)
	now := time.Now()
	p.Heard("east2", policy.Facts{Applied: 7}, now)
	p.Heard("east3", policy.Facts{Applied: 9}, now.Add(-time.Minute))
	facts, out := p.View(now)
	if !facts["east2"].Alive || facts["east2"].Host != "east2" || facts["east3"].Alive || out["east3"] < time.Minute {
		t.Fatalf("facts %+v, out %v", facts, out)
	}
	if p.Members() != nil {
		t.Fatal("a static pool has no members")
	}
	p.Leave()
}

// A manager of a release before the typed replicator state sends the
// text alone: the kind is taken from it.
func TestNodeMetaAndOldFacts(t *testing.T) {
	p := NewStatic("east1", time.Second)
	p.Publish(policy.Facts{Host: "east1", ReplState: "ONLINE"})
	if len(p.NodeMeta(10)) != 0 || len(p.NodeMeta(512)) == 0 {
		t.Fatal("NodeMeta ignores the limit")
	}
	p.NotifyJoin(&memberlist.Node{Name: "east2", Addr: net.ParseIP("127.0.0.2"), Port: 7946, Meta: []byte(`{"h":"east2","rs":"OFFLINE:ERROR"}`)})
	facts, _ := p.View(time.Now())
	if got := facts["east2"].ReplKind; got != replicatorpb.ReplicatorState_REPLICATOR_STATE_OFFLINE_ERROR {
		t.Fatalf("kind %v from an old manager's text", got)
	}
	p.NotifyLeave(&memberlist.Node{Name: "east2", Addr: net.ParseIP("127.0.0.2"), Port: 7946})
	if facts, _ := p.View(time.Now()); facts["east2"].Alive {
		t.Fatal("alive after it left")
	}
}
