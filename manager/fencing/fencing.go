package fencing

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

	"github.com/carbidedb/carbide/internal/fence"
)

// ErrDatabaseDown: the host's database refuses connections, so nothing
// commits there: fenced by being down.
var ErrDatabaseDown = errors.New("the database refuses connections")

// Config says how to reach the site's databases.
type Config struct {
	User, Password string // the replication account: the one Fence keeps
	Port           int
	// Address is a host's address.
	Address func(host string) string
	// Dial opens the connections (bound to the manager's own address).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Databases are the site's database servers, each reached on first use.
type Databases struct {
	cfg Config
	mu  sync.Mutex
	dbs map[string]*sql.DB
}

// New returns the databases of cfg; nothing is dialed yet.
func New(cfg Config) *Databases {
	return &Databases{cfg: cfg, dbs: map[string]*sql.DB{}}
}

// DB returns host's pool (two connections at most), for reads.
func (d *Databases) DB(host string) (*sql.DB, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if db, ok := d.dbs[host]; ok {
		return db, nil
	}
	c := mysql.NewConfig()
	c.User, c.Passwd, c.Net = d.cfg.User, d.cfg.Password, "tcp"
	c.Addr = net.JoinHostPort(d.cfg.Address(host), strconv.Itoa(d.cfg.Port))
	c.Timeout, c.ReadTimeout, c.WriteTimeout = time.Second, 5*time.Second, 5*time.Second
	c.DialFunc = d.cfg.Dial
	conn, err := mysql.NewConnector(c)
	if err != nil {
		return nil, err
	}
	db := sql.OpenDB(conn)
	db.SetMaxOpenConns(2)
	db.SetMaxIdleConns(1)
	db.SetConnMaxIdleTime(30 * time.Second)
	d.dbs[host] = db
	return db, nil
}

// Close closes every pool; the next use dials again.
func (d *Databases) Close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, db := range d.dbs {
		db.Close()
	}
	d.dbs = map[string]*sql.DB{}
}

// ReadOnly reports host's database's read_only, or an error when it does
// not answer within timeout.
func (d *Databases) ReadOnly(ctx context.Context, host string, timeout time.Duration) (bool, error) {
	db, err := d.DB(host)
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

// SetReadOnly sets host's read_only.
func (d *Databases) SetReadOnly(ctx context.Context, host string, on bool, timeout time.Duration) error {
	db, err := d.DB(host)
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

// Fence makes host's database take no more writes, retrying for at most
// limit: it kills the sessions of every account but the replication user
// and the server's own threads (their open transactions roll back), then
// sets read_only and checks it holds. The kill comes first: SET GLOBAL
// read_only waits for running statements, and a long write started on the
// old primary would commit after the new one takes writes. It returns an
// error wrapping ErrDatabaseDown and syscall.ECONNREFUSED when the database
// refuses connections.
func (d *Databases) Fence(ctx context.Context, host string, limit time.Duration) (killed int, err error) {
	db, err := d.DB(host)
	if err != nil {
		return 0, err
	}
	deadline := time.Now().Add(limit)
	for {
		n, err := d.fenceOnce(ctx, db)
		killed += n
		if err == nil {
			return killed, nil
		}
		if IsRefused(err) {
			return killed, fmt.Errorf("fence %s: %w (%w)", host, ErrDatabaseDown, err)
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

func (d *Databases) fenceOnce(ctx context.Context, db *sql.DB) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	return fence.Once(ctx, db, d.cfg.User)
}

// IsRefused reports whether err is a refused TCP connection.
func IsRefused(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED)
}
