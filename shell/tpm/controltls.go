package tpm

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/carbidedb/carbide/internal/config"
	"github.com/carbidedb/carbide/internal/security"
)

// controlPort is one control gRPC port of the ini: a replicator's
// rmi-port or a manager's manager-rpc-port.
type controlPort struct {
	host, agent string
	addr        string
}

// controlPorts lists every control port of cfg's hosts, in plan order.
func controlPorts(cfg *config.Config) []controlPort {
	var out []controlPort
	seen := map[string]bool{}
	for _, h := range cfg.Plan().Hosts {
		for _, in := range h.Installs() {
			add := func(agent string, port int) {
				addr := net.JoinHostPort(cfg.Address(h.Name), strconv.Itoa(port))
				if !seen[addr] {
					seen[addr] = true
					out = append(out, controlPort{host: h.Name, agent: agent, addr: addr})
				}
			}
			if in.Replicator {
				add(agentName(in, "replicator"), in.Settings.RMIPort)
			}
			if in.Manager {
				add("manager", in.Settings.ManagerRPCPort)
			}
		}
	}
	return out
}

func agentName(in *config.Install, agent string) string {
	if in.Kind == config.CrossSiteInstall {
		return "cross-site " + agent
	}
	return agent
}

// Answers of a control port to a TLS handshake.
const (
	answersTLS   = "TLS"
	answersPlain = "plaintext"
	answersNone  = "no answer"
)

// probeTLS says how the control port at addr answers a TLS handshake.
func probeTLS(ctx context.Context, addr string, cfg *tls.Config) string {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	raw, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return answersNone
	}
	defer raw.Close()
	err = tls.Client(raw, cfg).HandshakeContext(ctx)
	var rh tls.RecordHeaderError
	switch {
	case err == nil:
		return answersTLS
	case errors.As(err, &rh):
		return answersPlain // a server on the old settings: its HTTP/2 settings, not TLS
	case ctx.Err() != nil:
		return answersPlain // it waits for more than a ClientHello: no TLS there
	}
	return answersNone
}

// controlTLSStep is tpm update's last step when the updated install has
// thl-ssl=true: it asks every control port of the ini for TLS and says
// whether control-tls-only=true may be set now (every port answers TLS),
// or, when it is set, which ports its clients cannot reach.
func (r *runner) controlTLSStep(ctx context.Context, cfg *config.Config, ins []*config.Install) {
	var st *config.Settings
	for _, in := range ins {
		if in.Settings.THLSSL {
			st = &in.Settings
			break
		}
	}
	if st == nil {
		return
	}
	sec, err := security.New(*st)
	if err != nil || !sec.SSL() {
		return // checkCerts has said why
	}
	ports := controlPorts(cfg)
	answers := make([]string, len(ports))
	var wg sync.WaitGroup
	for i, p := range ports {
		wg.Add(1)
		go func() { defer wg.Done(); answers[i] = probeTLS(ctx, p.addr, sec.ClientTLS()) }()
	}
	wg.Wait()
	fmt.Fprintln(r.env.Out, controlTLSAdvice(ports, answers, st.ControlTLSOnly))
}

// controlTLSAdvice is the step's sentence for the ports' answers.
func controlTLSAdvice(ports []controlPort, answers []string, tlsOnly bool) string {
	byHost := map[string][]string{}
	tlsCount := 0
	for i, p := range ports {
		if answers[i] == answersTLS {
			tlsCount++
			continue
		}
		byHost[p.host] = append(byHost[p.host], fmt.Sprintf("%s %s: %s", p.agent, p.addr, answers[i]))
	}
	hosts := make([]string, 0, len(byHost))
	for h := range byHost {
		hosts = append(hosts, h)
	}
	sort.Strings(hosts)
	var rest []string
	for _, h := range hosts {
		rest = append(rest, h+" ("+strings.Join(byHost[h], ", ")+")")
	}
	switch {
	case tlsCount == len(ports) && tlsOnly:
		return fmt.Sprintf("control ports: all %d answer TLS, and control-tls-only=true: restart each host's manager (manager restart) so that its port refuses plaintext clients too", len(ports))
	case tlsCount == len(ports):
		return fmt.Sprintf("control ports: all %d of the ini's hosts answer TLS; to refuse plaintext control clients, set control-tls-only=true in the ini, run tpm update on every host, then manager restart on each", len(ports))
	case tlsOnly:
		return fmt.Sprintf("control ports: %d of %d answer TLS, and control-tls-only=true here cannot reach the others: %s; run tpm update with thl-ssl=true there (or take control-tls-only=true out until then)", tlsCount, len(ports), strings.Join(rest, "; "))
	}
	return fmt.Sprintf("control ports: %d of %d answer TLS; not yet: %s; set control-tls-only=true once tpm update has run with thl-ssl=true on every host and this step says all answer TLS", tlsCount, len(ports), strings.Join(rest, "; "))
}
