package manager

import (
	"context"
	"net"
	"strconv"
	"sync"
	"time"

	"google.golang.org/grpc"

	"github.com/carbidedb/carbide/internal/config"
	"github.com/carbidedb/carbide/internal/security"
	"github.com/carbidedb/carbide/manager/netbind"
	"github.com/carbidedb/carbide/rpc/gen/managerpb"
	"github.com/carbidedb/carbide/rpc/gen/replicatorpb"
)

// remotes holds the connections a manager keeps to the site's cluster
// replicators and managers, made on first use (fencing keeps its
// databases').
type remotes struct {
	user, password string
	dbPort         int
	rmiPort        int
	mgrPort        int
	address        func(host string) string
	local          net.IP // the address connections leave from
	dialOpts       []grpc.DialOption

	mu    sync.Mutex
	conns map[string]*grpc.ClientConn
}

func newRemotes(st config.Settings, address func(string) string, local net.IP, sec *security.Cluster) *remotes {
	dial := netbind.DialContext(local)
	opts := sec.ControlDialOptions(func(ctx context.Context, addr string) (net.Conn, error) { return dial(ctx, "tcp", addr) })
	return &remotes{user: st.ReplicationUser, password: st.ReplicationPassword, dbPort: st.ReplicationPort,
		rmiPort: st.RMIPort, mgrPort: st.ManagerRPCPort, address: address, local: local, dialOpts: opts,
		conns: map[string]*grpc.ClientConn{}}
}

func (r *remotes) conn(addr string) (*grpc.ClientConn, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c, ok := r.conns[addr]; ok {
		return c, nil
	}
	c, err := grpc.NewClient(addr, r.dialOpts...)
	if err != nil {
		return nil, err
	}
	r.conns[addr] = c
	return c, nil
}

func (r *remotes) Replicator(host string) (replicatorpb.ReplicatorClient, error) {
	c, err := r.conn(net.JoinHostPort(r.address(host), strconv.Itoa(r.rmiPort)))
	if err != nil {
		return nil, err
	}
	return replicatorpb.NewReplicatorClient(c), nil
}

func (r *remotes) manager(host string) (managerpb.ManagerClient, error) {
	c, err := r.conn(net.JoinHostPort(r.address(host), strconv.Itoa(r.mgrPort)))
	if err != nil {
		return nil, err
	}
	return managerpb.NewManagerClient(c), nil
}

// view asks host's manager for its status.
func (r *remotes) view(ctx context.Context, host string) (*managerpb.StatusReply, error) {
	c, err := r.manager(host)
	if err != nil {
		return nil, err
	}
	return c.Status(ctx, &managerpb.StatusRequest{})
}

func (r *remotes) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.conns {
		c.Close()
	}
	r.conns = map[string]*grpc.ClientConn{}
}

// ServiceStatus returns the site service's status on host's replicator.
func (r *remotes) ServiceStatus(ctx context.Context, host, service string, timeout time.Duration) (*replicatorpb.ServiceStatus, error) {
	c, err := r.Replicator(host)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	rep, err := c.Status(ctx, &replicatorpb.StatusRequest{Service: service})
	if err != nil {
		return nil, err
	}
	return rep.GetStatus(), nil
}
