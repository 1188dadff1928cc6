package restapi

import (
	"net"
	"strconv"

	"github.com/carbidedb/carbide/internal/config"
)

// ListenAddr is where an agent of host h serves the API configured on
// addr:port (the *-rest-api-address and -port keys). As the agents' other
// listeners, it binds through HostPlan.Bind; in a sandbox, where every host
// shares the machine's loopback, the default 127.0.0.1 ("localhost only")
// also means the host's own address.
func ListenAddr(h *config.HostPlan, addr string, port int) string {
	if h.Sandbox && (addr == "127.0.0.1" || addr == "localhost") {
		addr = ""
	}
	return net.JoinHostPort(h.Bind(addr), strconv.Itoa(port))
}
