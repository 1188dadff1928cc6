package consensus

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/carbidedb/carbide/internal/daemon"
	"github.com/carbidedb/carbide/manager/netbind"
	"github.com/carbidedb/carbide/manager/policy"
	"github.com/carbidedb/carbide/manager/raftstore"
)

// LeaderLease is raft's LeaderLeaseTimeout: how long a coordinator cut
// off from the others may still believe it leads.
const LeaderLease = 500 * time.Millisecond

// Config is one manager's place in its site's raft group.
type Config struct {
	Dir       string // where the log, stable store and snapshots live
	ID        string // this manager's host name
	Bind      string // host:port to listen on
	Advertise string // host:port the others dial
	// Voters are every voter's host name and raft address, used to
	// bootstrap a group that has no state yet.
	Voters map[string]string
	// Listen wraps the raft listener (the membership handshake); Handshake
	// proves membership on a connection this manager dials, and returns
	// the connection to use (TLS over it, with SSL on).
	Listen    func(net.Listener) net.Listener
	Handshake func(net.Conn) (net.Conn, error)
	// Local is the address this manager dials from (nil: any).
	Local  net.IP
	Logger *slog.Logger
	// Notify is called after each change the state machine applies.
	Notify func()
}

// Node is a running member of the raft group.
type Node struct {
	raft  *raft.Raft
	fsm   *fsm
	store *raftstore.Store
	trans *raft.NetworkTransport
}

// Open opens the stores and joins (or bootstraps) the site's raft.
func Open(cfg Config) (_ *Node, err error) {
	store, err := raftstore.Open(filepath.Join(cfg.Dir, "raft"))
	if err != nil {
		return nil, err
	}
	n := &Node{store: store}
	defer func() {
		if err != nil {
			n.closeStores(cfg.Logger)
		}
	}()
	logw := daemon.LogWriter{Log: cfg.Logger.With("lib", "raft")}
	snaps, err := raft.NewFileSnapshotStore(cfg.Dir, 2, logw)
	if err != nil {
		return nil, err
	}
	adv, err := net.ResolveTCPAddr("tcp", cfg.Advertise)
	if err != nil {
		return nil, err
	}
	var l net.Listener
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		// A manager killed a moment ago may still hold the port.
		l, err = net.Listen("tcp", cfg.Bind)
		if err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("raft on %s (manager-raft-port): %w", cfg.Bind, err)
	}
	if cfg.Listen != nil {
		l = cfg.Listen(l)
	}
	n.trans = raft.NewNetworkTransport(&streamLayer{Listener: l, advertise: adv, local: cfg.Local, handshake: cfg.Handshake}, 3, 2*time.Second, logw)
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.ID)
	rc.HeartbeatTimeout = time.Second
	rc.ElectionTimeout = time.Second
	rc.LeaderLeaseTimeout = LeaderLease
	rc.CommitTimeout = 20 * time.Millisecond
	rc.SnapshotThreshold = 256
	rc.TrailingLogs = 256
	rc.Logger = hclog.New(&hclog.LoggerOptions{Name: "raft", Output: logw, Level: hclog.Warn})
	n.fsm = &fsm{notify: cfg.Notify, log: cfg.Logger}
	r, err := raft.NewRaft(rc, n.fsm, store, store, snaps, n.trans)
	if err != nil {
		return nil, err
	}
	n.raft = r
	has, err := raft.HasExistingState(store, store, snaps)
	if err != nil {
		_ = r.Shutdown().Error()
		return nil, err
	}
	if !has {
		var servers []raft.Server
		for id, addr := range cfg.Voters {
			servers = append(servers, raft.Server{ID: raft.ServerID(id), Address: raft.ServerAddress(addr)})
		}
		if err := r.BootstrapCluster(raft.Configuration{Servers: servers}).Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
			_ = r.Shutdown().Error()
			return nil, err
		}
	}
	return n, nil
}

// Close leaves the group (handing leadership over first when this node
// leads) and closes the stores.
func (n *Node) Close(log *slog.Logger) {
	if n.raft.State() == raft.Leader {
		_ = n.raft.LeadershipTransfer().Error()
	}
	_ = n.raft.Shutdown().Error()
	n.closeStores(log)
}

func (n *Node) closeStores(log *slog.Logger) {
	if n.trans != nil {
		n.trans.Close()
	}
	if err := n.store.Close(); err != nil && log != nil {
		log.Error("close raft store", "error", err)
	}
}

// State is the agreed state as this node has applied it.
func (n *Node) State() policy.State { return n.fsm.state() }

// View is the state with the raft index of its last change, read
// together.
func (n *Node) View() (policy.State, uint64) { return n.fsm.view() }

// Index is the raft index of the last change applied to State: its
// version, which connectors and managers confirm a command by.
func (n *Node) Index() uint64 { return n.fsm.applied() }

// AppliedIndex is the last raft index this node applied (of any entry).
func (n *Node) AppliedIndex() uint64 { return n.raft.AppliedIndex() }

// Leading tells whether this node is the coordinator (raft's leader).
func (n *Node) Leading() bool { return n.raft.State() == raft.Leader }

// Leader is the coordinator's host name, "" when none is known.
func (n *Node) Leader() string {
	_, id := n.raft.LeaderWithID()
	return string(id)
}

// InTouch tells whether this node is in touch with a coordinator: it is
// one, or it follows one it heard from within the last second.
func (n *Node) InTouch() bool {
	switch n.raft.State() {
	case raft.Leader:
		return true
	case raft.Follower:
		return n.Leader() != "" && time.Since(n.raft.LastContact()) < time.Second
	}
	return false
}

// CaughtUp tells whether this node has applied everything the
// coordinator told it is committed (so its view of the state is current).
func (n *Node) CaughtUp() bool {
	if n.Leading() {
		return true
	}
	ci, err := strconv.ParseUint(n.raft.Stats()["commit_index"], 10, 64)
	return err == nil && n.raft.AppliedIndex() >= ci
}

// Barrier waits until every change committed before it is applied (a
// new coordinator's first step).
func (n *Node) Barrier(timeout time.Duration) error { return n.raft.Barrier(timeout).Error() }

// Describe is raft's view in words, for logs.
func (n *Node) Describe() []any {
	return []any{"raft_state", n.raft.State().String(), "leader", n.Leader(), "last_contact", n.raft.LastContact().Format(time.RFC3339Nano)}
}

// Apply commits changes through raft, in order; only the coordinator
// can. The error of a change the state refused is returned as is.
func (n *Node) Apply(changes ...policy.Change) error {
	for _, c := range changes {
		c.At = time.Now().UTC()
		b, err := json.Marshal(c)
		if err != nil {
			return err
		}
		f := n.raft.Apply(b, 5*time.Second)
		if err := f.Error(); err != nil {
			if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
				return fmt.Errorf("this manager stopped being the coordinator: %w", err)
			}
			return err
		}
		if err, ok := f.Response().(error); ok && err != nil {
			return err
		}
	}
	return nil
}

// streamLayer is raft's TCP stream layer dialing from local, proving
// membership on each connection.
type streamLayer struct {
	net.Listener
	advertise net.Addr
	local     net.IP
	handshake func(net.Conn) (net.Conn, error)
}

func (s *streamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	c, err := netbind.Dialer(s.local, timeout).Dial("tcp", string(address))
	if err != nil {
		return nil, err
	}
	if s.handshake != nil {
		m, err := s.handshake(c)
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("raft peer %s: %w", address, err)
		}
		c = m
	}
	return c, nil
}

func (s *streamLayer) Addr() net.Addr { return s.advertise }
