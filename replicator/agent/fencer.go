package agent

import (
	"context"
	"database/sql"
	"errors"
	"net"
	"strconv"
	"syscall"
	"time"

	"github.com/go-sql-driver/mysql"
	"google.golang.org/grpc"

	"github.com/carbidedb/carbide/internal/config"
	"github.com/carbidedb/carbide/internal/fence"
	"github.com/carbidedb/carbide/internal/lease"
	"github.com/carbidedb/carbide/replicator/service"
	"github.com/carbidedb/carbide/rpc/gen/managerpb"
)

// The primary's fencer. The primary's database is writable only while
// its host holds the primary's lease (manager/lease.go), and its manager
// renews it. A manager that hangs renews nothing and fences nothing, so
// the replicator of the primary (the cluster service's master) watches
// the lease too: when the lease file has less than fencerAsk left, it
// asks the coordinator itself; when the lease has run out and no manager
// of the site could be the coordinator's, it fences the database (its
// sessions killed, read_only on). It never makes a database writable:
// that is the manager's, on the coordinator's word.
const (
	fencerEvery = 250 * time.Millisecond
	fencerAsk   = 1500 * time.Millisecond
)

// fencer watches the lease of the cluster service svc of site.
type fencer struct {
	a       *Agent
	svc     *service.Service
	site    *config.Service
	file    string
	dial    func(ctx context.Context, addr string) (net.Conn, error)
	db      *sql.DB
	keep    string // the replication user, whose sessions stay
	clients map[string]*grpc.ClientConn
}

// newFencer returns the fencer of this install's cluster service, or nil
// when the install runs no manager (no lease to keep).
func (a *Agent) newFencer() *fencer {
	b := a.bound
	if !b.Install.Manager {
		return nil
	}
	for _, sp := range b.Install.Services {
		site := b.Config.Service(sp.Name)
		if sp.Topology != config.TopologyClustered || site == nil {
			continue
		}
		st := b.Install.Settings
		d := &net.Dialer{Timeout: time.Second}
		if ip := net.ParseIP(b.Host.Address); ip != nil {
			d.LocalAddr = &net.TCPAddr{IP: ip}
		}
		mc := mysql.NewConfig()
		mc.User, mc.Passwd, mc.Net = st.ReplicationUser, st.ReplicationPassword, "tcp"
		mc.Addr = net.JoinHostPort(b.Host.Address, strconv.Itoa(st.ReplicationPort))
		mc.Timeout, mc.ReadTimeout, mc.WriteTimeout = time.Second, 2*time.Second, 2*time.Second
		conn, err := mysql.NewConnector(mc)
		if err != nil {
			a.log.Warn("fencer off", "error", err)
			return nil
		}
		db := sql.OpenDB(conn)
		db.SetMaxOpenConns(1)
		return &fencer{a: a, svc: a.byName[sp.Name], site: site, file: lease.File(b.Home), db: db, keep: st.ReplicationUser,
			dial: func(ctx context.Context, addr string) (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) }, clients: map[string]*grpc.ClientConn{}}
	}
	return nil
}

func (f *fencer) close() {
	f.db.Close()
	for _, c := range f.clients {
		c.Close()
	}
}

// run watches until ctx ends.
func (f *fencer) run(ctx context.Context) {
	defer f.close()
	t := time.NewTicker(fencerEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if f.svc == nil || f.svc.Role() != service.RoleMaster {
			continue
		}
		left, err := lease.Left(f.file)
		if err == nil && left > fencerAsk {
			continue // the manager renews it
		}
		asked := time.Now()
		granted, possible := f.ask(ctx)
		if granted {
			if err := lease.WriteEnd(f.file, lease.Duration-time.Since(asked)); err != nil {
				f.a.log.Warn("lease file", "error", err)
			}
			continue
		}
		if left, err = lease.Left(f.file); err == nil && left > 0 || !possible {
			continue // not run out yet (the manager may have renewed it meanwhile); or no coordinator can exist
		}
		f.fence(ctx)
	}
}

// ask asks the site's managers for this host's lease, all at once and
// within fencerEvery*2 (the fence must come within a second of the
// lease's end, see leaseMargin in manager/lease.go). possible says
// whether a coordinator may exist that did not grant it: fewer managers
// than a majority refused the connection outright (a refusal means the
// manager does not run; a timeout may be a cut network).
func (f *fencer) ask(ctx context.Context) (granted, possible bool) {
	voters := append(append([]string(nil), f.site.Members...), f.site.Witnesses...)
	port := strconv.Itoa(f.a.bound.Config.ClusterSettings(f.site.Name).ManagerRPCPort)
	ctx, cancel := context.WithTimeout(ctx, 2*fencerEvery)
	defer cancel()
	type answer struct{ granted, refused bool }
	answers := make(chan answer, len(voters))
	for _, h := range voters {
		addr := net.JoinHostPort(f.a.bound.Config.Address(h), port)
		c, err := f.client(addr)
		go func() {
			// A manager that does not run refuses the connection.
			conn, derr := f.dial(ctx, addr)
			if errors.Is(derr, syscall.ECONNREFUSED) {
				answers <- answer{refused: true}
				return
			}
			if derr != nil || err != nil {
				answers <- answer{}
				return
			}
			conn.Close()
			r, err := managerpb.NewManagerClient(c).Lease(ctx, &managerpb.LeaseRequest{Host: f.a.bound.Host.Name})
			answers <- answer{granted: err == nil && r.GetGranted()}
		}()
	}
	refused := 0
	for range voters {
		a := <-answers
		granted = granted || a.granted
		if a.refused {
			refused++
		}
	}
	return granted, len(voters)-refused > len(voters)/2
}

func (f *fencer) client(addr string) (*grpc.ClientConn, error) {
	if c, ok := f.clients[addr]; ok {
		return c, nil
	}
	c, err := grpc.NewClient(addr, f.a.sec.ControlDialOptions(f.dial)...)
	if err != nil {
		return nil, err
	}
	f.clients[addr] = c
	return c, nil
}

// fence makes the database read-only, killing its application sessions,
// when it is writable.
func (f *fencer) fence(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var ro bool
	if err := f.db.QueryRowContext(ctx, "SELECT @@global.read_only").Scan(&ro); err != nil || ro {
		return
	}
	killed, err := fence.Once(ctx, f.db, f.keep)
	if err != nil {
		f.a.log.Warn("fencing the database: the primary's lease ran out", "error", err)
		return
	}
	f.a.log.Warn("fenced the database: the primary's lease ran out and no manager renewed it (the coordinator is out of reach)", "sessions_killed", killed)
}
