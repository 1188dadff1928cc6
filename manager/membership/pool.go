package membership

import (
	"encoding/json"
	"fmt"
	"log"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/carbidedb/carbide/internal/daemon"
	"github.com/carbidedb/carbide/manager/netbind"
	"github.com/carbidedb/carbide/manager/policy"
	"github.com/carbidedb/carbide/rpc/replstate"
)

// Config configures a site's membership pool.
type Config struct {
	Name     string // host name
	Addr     string // bind and advertise address
	Port     int
	Key      []byte // 32 bytes
	Peers    []string
	Stale    time.Duration // a member not heard from for this long is out of contact
	Logger   *slog.Logger
	OnChange func()
}

// member is what the pool knows of another manager.
type member struct {
	node  string
	addr  string
	state memberlist.NodeStateType
	facts policy.Facts
	seen  time.Time // last report received
}

// Pool is the site's memberlist pool: liveness of every manager and the
// facts each publishes in its node metadata.
type Pool struct {
	cfg   Config
	ml    *memberlist.Memberlist
	mu    sync.Mutex
	local []byte
	peers map[string]*member
}

func New(cfg Config) (*Pool, error) {
	p := &Pool{cfg: cfg, peers: map[string]*member{}}
	p.local, _ = json.Marshal(policy.Facts{Host: cfg.Name})
	mc := memberlist.DefaultLANConfig()
	mc.Name = cfg.Name
	mc.BindAddr, mc.BindPort = cfg.Addr, cfg.Port
	mc.AdvertiseAddr, mc.AdvertisePort = cfg.Addr, cfg.Port
	mc.SecretKey = cfg.Key
	mc.ProbeInterval = 500 * time.Millisecond
	mc.ProbeTimeout = 300 * time.Millisecond
	mc.GossipInterval = 200 * time.Millisecond
	mc.SuspicionMult = 2
	mc.PushPullInterval = 5 * time.Second
	mc.TCPTimeout = 2 * time.Second
	mc.DeadNodeReclaimTime = time.Second // a restarted manager rejoins at once
	mc.Delegate = p
	mc.Events = p
	mc.Logger = log.New(daemon.LogWriter{Log: cfg.Logger}, "", 0)
	nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{BindAddrs: []string{cfg.Addr}, BindPort: cfg.Port, Logger: mc.Logger})
	if err != nil {
		return nil, fmt.Errorf("gossip on %s: %w", net.JoinHostPort(cfg.Addr, strconv.Itoa(cfg.Port)), err)
	}
	mc.Transport = &boundTransport{NetTransport: nt, local: netbind.IP(cfg.Addr)}
	ml, err := memberlist.Create(mc)
	if err != nil {
		return nil, fmt.Errorf("gossip on %s: %w", net.JoinHostPort(cfg.Addr, strconv.Itoa(cfg.Port)), err)
	}
	p.ml = ml
	return p, nil
}

// Join contacts the peers not yet known; it returns how many answered.
func (p *Pool) Join() int {
	var missing []string
	p.mu.Lock()
	for _, addr := range p.cfg.Peers {
		known := false
		for _, m := range p.peers {
			if m.addr == addr && m.state == memberlist.StateAlive {
				known = true
			}
		}
		if !known {
			missing = append(missing, addr)
		}
	}
	p.mu.Unlock()
	if len(missing) == 0 {
		return 0
	}
	n, _ := p.ml.Join(missing)
	return n
}

// Publish makes f this manager's facts.
func (p *Pool) Publish(f policy.Facts) {
	b, err := Gossiped(f)
	if err != nil {
		p.cfg.Logger.Error("facts too large to gossip", "bytes", len(b))
		return
	}
	p.mu.Lock()
	p.local = b
	p.mu.Unlock()
	if p.ml == nil {
		return
	}
	if err := p.ml.UpdateNode(time.Second); err != nil {
		p.cfg.Logger.Debug("gossip update", "error", err)
	}
}

// Gossiped is f as node metadata. Facts too large for it go without
// their conflict counts (ls shows none for the host then) rather than not
// at all: the other managers act on the states.
func Gossiped(f policy.Facts) ([]byte, error) {
	b, err := json.Marshal(f)
	if err == nil && len(b) > memberlist.MetaMaxSize && f.Conflicts != nil {
		f.Conflicts = nil
		b, err = json.Marshal(f)
	}
	if err == nil && len(b) > memberlist.MetaMaxSize {
		err = fmt.Errorf("facts of %d bytes, gossip takes at most %d", len(b), memberlist.MetaMaxSize)
	}
	return b, err
}

// View returns every other member's last facts with Alive set, and how
// long each has been out of contact (0: in contact).
func (p *Pool) View(now time.Time) (map[string]policy.Facts, map[string]time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	facts := map[string]policy.Facts{}
	out := map[string]time.Duration{}
	for name, m := range p.peers {
		f := m.facts
		f.Host = name
		age := now.Sub(m.seen)
		f.Alive = m.state == memberlist.StateAlive && age < p.cfg.Stale
		if !f.Alive {
			out[name] = age
		}
		facts[name] = f
	}
	return facts, out
}

// SeenWithin reports whether name's last report arrived less than d
// before now, by the monotonic clock (a wall-clock step changes nothing).
func (p *Pool) SeenWithin(name string, now time.Time, d time.Duration) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	m, ok := p.peers[name]
	return ok && m.state == memberlist.StateAlive && !m.seen.IsZero() && now.Sub(m.seen) < d
}

// Members lists the pool's members with their gossip state.
func (p *Pool) Members() []*memberlist.Node {
	if p.ml == nil {
		return nil
	}
	return p.ml.Members()
}

// Leave leaves the pool and stops gossiping.
func (p *Pool) Leave() {
	if p.ml == nil {
		return
	}
	_ = p.ml.Leave(time.Second)
	_ = p.ml.Shutdown()
}

func (p *Pool) record(n *memberlist.Node, state memberlist.NodeStateType) {
	if n.Name == p.cfg.Name {
		return
	}
	p.mu.Lock()
	m := p.peers[n.Name]
	if m == nil {
		m = &member{node: n.Name}
		p.peers[n.Name] = m
	}
	m.addr = net.JoinHostPort(n.Addr.String(), strconv.Itoa(int(n.Port)))
	m.state = state
	if state == memberlist.StateAlive {
		var f policy.Facts
		if err := json.Unmarshal(n.Meta, &f); err == nil {
			if f.ReplKind == 0 && f.ReplState != "" {
				// A manager of a release before the typed state (during a
				// rolling tpm update) sends the text alone.
				f.ReplKind = replstate.Of(f.ReplState)
			}
			m.facts = f
			m.seen = time.Now()
		}
	}
	p.mu.Unlock()
	if p.cfg.OnChange != nil {
		p.cfg.OnChange()
	}
}

// NodeMeta is memberlist.Delegate's: this manager's facts.
func (p *Pool) NodeMeta(limit int) []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.local) > limit {
		return nil
	}
	return append([]byte(nil), p.local...)
}

func (p *Pool) NotifyMsg([]byte)                           {}
func (p *Pool) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (p *Pool) LocalState(join bool) []byte                { return nil }
func (p *Pool) MergeRemoteState(buf []byte, join bool)     {}

func (p *Pool) NotifyJoin(n *memberlist.Node)   { p.record(n, memberlist.StateAlive) }
func (p *Pool) NotifyUpdate(n *memberlist.Node) { p.record(n, memberlist.StateAlive) }

// NotifyLeave: n.State is not reliable here (memberlist passes the node
// as it was); a leaving node is dead to us until it rejoins.
func (p *Pool) NotifyLeave(n *memberlist.Node) { p.record(n, memberlist.StateDead) }

// boundTransport is memberlist's network transport dialing from local.
type boundTransport struct {
	*memberlist.NetTransport
	local net.IP
}

func (t *boundTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return netbind.Dialer(t.local, timeout).Dial("tcp", addr)
}

func (t *boundTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	return t.DialTimeout(a.Addr, timeout)
}

// NewStatic is a pool without a network, for tests: it knows what Heard
// tells it; Members lists nobody.
func NewStatic(name string, stale time.Duration) *Pool {
	return &Pool{cfg: Config{Name: name, Stale: stale}, peers: map[string]*member{}}
}

// Heard records name's facts as received at at (a static pool's way in).
func (p *Pool) Heard(name string, f policy.Facts, at time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.peers[name] = &member{node: name, state: memberlist.StateAlive, facts: f, seen: at}
}
