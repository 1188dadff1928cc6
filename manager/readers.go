package manager

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/carbidedb/carbide/internal/config"
	"github.com/carbidedb/carbide/rpc/gen/managerpb"
	"github.com/carbidedb/carbide/rpc/gen/replicatorpb"
)

// readersLoop, on the coordinator, watches the hosts of the other sites
// whose cross-site service reads this site (the service named after this
// site): one that stops stops this site's writes from reaching them, so
// it shows here too — an alert, and carbide_manager_cross_site_readers_online.
func (a *Agent) readersLoop(ctx context.Context) {
	every(ctx, 2*time.Second, func() {
		if !a.ledger.Leading() {
			return
		}
		readers := map[string]string{} // "site/host" -> state
		for _, other := range a.bound.Config.Clustered() {
			if other.Name == a.site.Name {
				continue
			}
			r := a.remoteStatus(ctx, other)
			if r == nil {
				continue // nothing known: its alerts stay as they are
			}
			prefix := "reader/" + other.Name + "/"
			stopped := map[string]string{}
			for _, d := range r.GetDatasources() {
				for _, x := range d.GetCross() {
					if x.GetService() != a.site.Name {
						continue
					}
					readers[other.Name+"/"+d.GetHost()] = x.GetState()
					if x.GetKind() == replicatorpb.ReplicatorState_REPLICATOR_STATE_OFFLINE_ERROR {
						key := prefix + d.GetHost()
						stopped[key] = x.GetState()
						a.raise(key, fmt.Sprintf("%s of site %s reads %s through its cross-site service %s, which is %s; see mm_trepctl -service %s status on %s",
							d.GetHost(), other.Name, a.site.Name, x.GetService(), x.GetState(), x.GetService(), d.GetHost()))
					}
				}
			}
			a.clearAlertsNotIn(prefix, stopped)
		}
		a.mu.Lock()
		a.readers = readers
		a.mu.Unlock()
	})
}

// remoteStatus asks site's managers for their status, the first one with
// a coordinator (else the last that answered); nil when none answers.
func (a *Agent) remoteStatus(ctx context.Context, site *config.Service) *managerpb.StatusReply {
	port := strconv.Itoa(a.bound.Config.ClusterSettings(site.Name).ManagerRPCPort)
	var last *managerpb.StatusReply
	for _, h := range append(append([]string(nil), site.Members...), site.Witnesses...) {
		conn, err := a.remote.conn(net.JoinHostPort(a.bound.Config.Address(h), port))
		if err != nil {
			continue
		}
		sctx, cancel := context.WithTimeout(ctx, time.Second)
		r, err := managerpb.NewManagerClient(conn).Status(sctx, &managerpb.StatusRequest{})
		cancel()
		if err != nil {
			continue
		}
		if r.GetCoordinator() != "" {
			return r
		}
		last = r
	}
	return last
}

// crossReaders is what readersLoop last saw: every other site's host
// reading this site, by "site/host", with its service's state.
func (a *Agent) crossReaders() map[string]string {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make(map[string]string, len(a.readers))
	for k, v := range a.readers {
		out[k] = v
	}
	return out
}
