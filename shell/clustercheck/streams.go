package clustercheck

import (
	"net"
	"strconv"

	"github.com/carbidedb/carbide/internal/config"
)

// Streams lists every site's service of a configuration and the
// replicators that run it: its members' cluster replicators, and the
// other sites' members' cross-site replicators that apply it.
func Streams(cfg *config.Config) []Stream {
	plan := cfg.Plan()
	var out []Stream
	for _, site := range cfg.Clustered() {
		st := Stream{Service: site.Name}
		for _, h := range plan.Hosts {
			for _, in := range h.Installs() {
				if !in.Replicator {
					continue
				}
				for _, svc := range in.Services {
					if svc.Name == site.Name {
						st.Replicators = append(st.Replicators, Replicator{Host: h.Name, Addr: net.JoinHostPort(h.Address, strconv.Itoa(in.Settings.RMIPort))})
					}
				}
			}
		}
		out = append(out, st)
	}
	return out
}
