package sandbox

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"time"

	"google.golang.org/grpc"

	"github.com/carbidedb/carbide/internal/security"
	"github.com/carbidedb/carbide/rpc/gen/managerpb"
)

// waitManagers waits until every site's managers have a coordinator and
// the site's primary takes writes, so the sandbox is usable when up
// returns.
func (s *Sandbox) waitManagers(ctx context.Context, timeout time.Duration) error {
	if !s.hasProgram("manager") {
		return nil
	}
	begin := time.Now()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for _, site := range s.config.Clustered() {
		h, ok := s.plan.Host(site.Members[0])
		if !ok || h.Cluster == nil {
			continue
		}
		addr := net.JoinHostPort(h.Address, strconv.Itoa(h.Cluster.Settings.ManagerRPCPort))
		sec, err := security.New(h.Cluster.Settings)
		if err != nil {
			return err
		}
		conn, err := grpc.NewClient(addr, sec.ControlDialOptions(nil)...)
		if err != nil {
			return err
		}
		var last string
		for {
			r, err := managerpb.NewManagerClient(conn).Status(ctx, &managerpb.StatusRequest{})
			switch {
			case err != nil:
				last = err.Error()
			case r.GetCoordinator() == "":
				last = "no coordinator: " + r.GetCoordinatorProblem()
			case !r.GetInitialized():
				last = "site state not initialized"
			default:
				last = ""
				for _, d := range r.GetDatasources() {
					if d.GetHost() == r.GetPrimary() && (d.GetReadOnly() || d.GetDataserver() != "ONLINE") {
						last = fmt.Sprintf("primary %s not writable yet", d.GetHost())
					}
				}
				if last == "" {
					s.say("%s: coordinator %s, primary %s writable, policy %s (%.1fs)", site.Name, r.GetCoordinator(), r.GetPrimary(), r.GetPolicy(), time.Since(begin).Seconds())
				}
			}
			if last == "" {
				break
			}
			select {
			case <-ctx.Done():
				conn.Close()
				return fmt.Errorf("the managers of %s are not ready after %v: %s; see %s/<host>/*/var/log/manager.log", site.Name, timeout, last, s.cfg.Dir)
			case <-time.After(100 * time.Millisecond):
			}
		}
		conn.Close()
	}
	return nil
}
