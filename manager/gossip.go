package manager

import (
	"encoding/json"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/carbidedb/carbide/manager/policy"
	"github.com/carbidedb/carbide/rpc/replstate"
)

// gossipConfig configures a site's membership pool.
type gossipConfig struct {
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

// pool is the site's memberlist pool: liveness of every manager and the
// facts each publishes in its node metadata.
type pool struct {
	cfg   gossipConfig
	ml    *memberlist.Memberlist
	mu    sync.Mutex
	local []byte
	peers map[string]*member
}

func newPool(cfg gossipConfig) (*pool, error) {
	p := &pool{cfg: cfg, peers: map[string]*member{}}
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
	mc.Logger = log.New(slogWriter{cfg.Logger}, "", 0)
	nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{BindAddrs: []string{cfg.Addr}, BindPort: cfg.Port, Logger: mc.Logger})
	if err != nil {
		return nil, fmt.Errorf("gossip on %s: %w", net.JoinHostPort(cfg.Addr, strconv.Itoa(cfg.Port)), err)
	}
	mc.Transport = &boundTransport{NetTransport: nt, local: localIP(cfg.Addr)}
	ml, err := memberlist.Create(mc)
	if err != nil {
		return nil, fmt.Errorf("gossip on %s: %w", net.JoinHostPort(cfg.Addr, strconv.Itoa(cfg.Port)), err)
	}
	p.ml = ml
	return p, nil
}

// join contacts the peers not yet known; it returns how many answered.
func (p *pool) join() int {
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

// crossErrorMax bounds the error a cross-site service's state carries in
// the facts: they are gossiped as memberlist metadata, at most
// memberlist.MetaMaxSize (512) bytes in all, and a conflict's error names
// both rows (the alert points to mm_trepctl status for the whole of it).
const crossErrorMax = 120

// publish makes f this manager's facts.
func (p *pool) publish(f policy.Facts) {
	b, err := gossiped(f)
	if err != nil {
		p.cfg.Logger.Error("facts too large to gossip", "bytes", len(b))
		return
	}
	p.mu.Lock()
	p.local = b
	p.mu.Unlock()
	if err := p.ml.UpdateNode(time.Second); err != nil {
		p.cfg.Logger.Debug("gossip update", "error", err)
	}
}

// gossiped is f as node metadata. Facts too large for it go without
// their conflict counts (ls shows none for the host then) rather than not
// at all: the other managers act on the states.
func gossiped(f policy.Facts) ([]byte, error) {
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

// view returns every other member's last facts with Alive set, and how
// long each has been out of contact (0: in contact).
func (p *pool) view(now time.Time) (map[string]policy.Facts, map[string]time.Duration) {
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

// seenWithin reports whether name's last report arrived less than d
// before now, by the monotonic clock (a wall-clock step changes nothing).
func (p *pool) seenWithin(name string, now time.Time, d time.Duration) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	m, ok := p.peers[name]
	return ok && m.state == memberlist.StateAlive && !m.seen.IsZero() && now.Sub(m.seen) < d
}

// members lists the pool's members with their gossip state.
func (p *pool) members() []*memberlist.Node { return p.ml.Members() }

func (p *pool) leave() {
	_ = p.ml.Leave(time.Second)
	_ = p.ml.Shutdown()
}

func (p *pool) record(n *memberlist.Node, state memberlist.NodeStateType) {
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
func (p *pool) NodeMeta(limit int) []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.local) > limit {
		return nil
	}
	return append([]byte(nil), p.local...)
}

func (p *pool) NotifyMsg([]byte)                           {}
func (p *pool) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (p *pool) LocalState(join bool) []byte                { return nil }
func (p *pool) MergeRemoteState(buf []byte, join bool)     {}

func (p *pool) NotifyJoin(n *memberlist.Node)   { p.record(n, memberlist.StateAlive) }
func (p *pool) NotifyUpdate(n *memberlist.Node) { p.record(n, memberlist.StateAlive) }

// NotifyLeave: n.State is not reliable here (memberlist passes the node
// as it was); a leaving node is dead to us until it rejoins.
func (p *pool) NotifyLeave(n *memberlist.Node) { p.record(n, memberlist.StateDead) }

// slogWriter turns memberlist's and raft's log lines into debug records.
type slogWriter struct{ log *slog.Logger }

func (w slogWriter) Write(b []byte) (int, error) {
	if w.log != nil {
		w.log.Debug("lib", "line", string(trimNL(b)))
	}
	return len(b), nil
}

func trimNL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

var _ io.Writer = slogWriter{}
