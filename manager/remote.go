package manager

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/go-sql-driver/mysql"
	"google.golang.org/grpc"

	"github.com/carbidedb/carbide/internal/config"
	"github.com/carbidedb/carbide/internal/fence"
	"github.com/carbidedb/carbide/internal/security"
	"github.com/carbidedb/carbide/rpc/gen/managerpb"
	"github.com/carbidedb/carbide/rpc/gen/replicatorpb"
)

// remotes holds the connections a manager keeps to the site's databases,
// cluster replicators and managers, made on first use.
type remotes struct {
	user, password string
	dbPort         int
	rmiPort        int
	mgrPort        int
	address        func(host string) string
	local          net.IP // the address connections leave from
	dialOpts       []grpc.DialOption

	mu    sync.Mutex
	dbs   map[string]*sql.DB
	conns map[string]*grpc.ClientConn
}

func newRemotes(st config.Settings, address func(string) string, local net.IP, sec *security.Cluster) *remotes {
	dial := dialContext(local)
	opts := sec.ControlDialOptions(func(ctx context.Context, addr string) (net.Conn, error) { return dial(ctx, "tcp", addr) })
	return &remotes{user: st.ReplicationUser, password: st.ReplicationPassword, dbPort: st.ReplicationPort,
		rmiPort: st.RMIPort, mgrPort: st.ManagerRPCPort, address: address, local: local, dialOpts: opts,
		dbs: map[string]*sql.DB{}, conns: map[string]*grpc.ClientConn{}}
}

func (r *remotes) db(host string) (*sql.DB, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if db, ok := r.dbs[host]; ok {
		return db, nil
	}
	c := mysql.NewConfig()
	c.User, c.Passwd, c.Net = r.user, r.password, "tcp"
	c.Addr = net.JoinHostPort(r.address(host), strconv.Itoa(r.dbPort))
	c.Timeout, c.ReadTimeout, c.WriteTimeout = time.Second, 5*time.Second, 5*time.Second
	c.DialFunc = dialContext(r.local)
	conn, err := mysql.NewConnector(c)
	if err != nil {
		return nil, err
	}
	db := sql.OpenDB(conn)
	db.SetMaxOpenConns(2)
	db.SetMaxIdleConns(1)
	db.SetConnMaxIdleTime(30 * time.Second)
	r.dbs[host] = db
	return db, nil
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

func (r *remotes) replicator(host string) (replicatorpb.ReplicatorClient, error) {
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
	for _, db := range r.dbs {
		db.Close()
	}
	for _, c := range r.conns {
		c.Close()
	}
	r.dbs, r.conns = map[string]*sql.DB{}, map[string]*grpc.ClientConn{}
}

// readOnly reports host's database's read_only, or an error when it does
// not answer within timeout.
func (r *remotes) readOnly(ctx context.Context, host string, timeout time.Duration) (bool, error) {
	db, err := r.db(host)
	if err != nil {
		return false, err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var ro bool
	if err := db.QueryRowContext(ctx, "SELECT @@global.read_only").Scan(&ro); err != nil {
		return false, err
	}
	return ro, nil
}

// setReadOnly sets host's read_only and checks it took.
func (r *remotes) setReadOnly(ctx context.Context, host string, on bool, timeout time.Duration) error {
	db, err := r.db(host)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	v := "OFF"
	if on {
		v = "ON"
	}
	if _, err := db.ExecContext(ctx, "SET GLOBAL read_only = "+v); err != nil {
		return fmt.Errorf("set read_only=%s on %s: %w", v, host, err)
	}
	return nil
}

// errDatabaseDown: the host's database refuses connections, so nothing
// commits there: fenced by being down.
var errDatabaseDown = errors.New("the database refuses connections")

// fence makes host's database take no more writes, retrying for at most
// limit: it kills the sessions of every account but the replication user
// and the server's own threads (their open transactions roll back), then
// sets read_only and checks it holds. The kill comes first: SET GLOBAL
// read_only waits for running statements, and a long write started on the
// old primary would commit after the new one takes writes. It returns
// errDatabaseDown when the database refuses connections.
func (r *remotes) fence(ctx context.Context, host string, limit time.Duration) (killed int, err error) {
	db, err := r.db(host)
	if err != nil {
		return 0, err
	}
	deadline := time.Now().Add(limit)
	for {
		n, err := r.fenceOnce(ctx, db)
		killed += n
		if err == nil {
			return killed, nil
		}
		if isRefused(err) {
			return killed, fmt.Errorf("fence %s: %w (%v)", host, errDatabaseDown, err)
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return killed, fmt.Errorf("fence %s: %w", host, err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (r *remotes) fenceOnce(ctx context.Context, db *sql.DB) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	return fence.Once(ctx, db, r.user)
}

// isRefused reports whether err is a refused TCP connection.
func isRefused(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED)
}

// serviceStatus returns the site service's status on host's replicator.
func (r *remotes) serviceStatus(ctx context.Context, host, service string, timeout time.Duration) (*replicatorpb.ServiceStatus, error) {
	c, err := r.replicator(host)
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
