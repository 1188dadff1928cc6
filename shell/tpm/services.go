package tpm

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"

	"github.com/carbidedb/carbide/internal/config"
	"github.com/carbidedb/carbide/internal/install"
	"github.com/carbidedb/carbide/internal/security"
	"github.com/carbidedb/carbide/rpc/gen/replicatorpb"
)

// settleWait is how long tpm waits for a replicator's services to come
// online after it started or restarted it.
const settleWait = 30 * time.Second

// waitServices waits (30 s at most) until the restarted replicator's
// services have come online, so that what the operator runs next sees
// them ONLINE, and says how they came back. A slave that cannot reach
// any of its sources yet (a TLS mismatch while a rolling change is half
// done) is not waited for.
func (r *runner) waitServices(cfg *config.Config, in *config.Install) string {
	trepctl := install.CommandName(in.Settings.ExecutablePrefix, "trepctl")
	c, closeConn, err := dialReplicator(cfg, in)
	if err != nil {
		return "back, but " + err.Error()
	}
	defer closeConn()
	svcs, err := settledServices(c, settleWait)
	if err != nil {
		// restart returned once the control API answered: it does not
		// come and go, so there is nothing to wait for.
		return "back; its control API does not answer (" + err.Error() + ")"
	}
	s := summarize(svcs)
	switch {
	case s.failed != "":
		return "back, with service " + s.failed + " in OFFLINE:ERROR (see " + trepctl + " services)"
	case s.going == 0:
		return "ONLINE"
	case len(s.unreachable) == s.going:
		return "back; " + strings.Join(s.unreachable, "; ")
	}
	return "back; its services are still going online"
}

// dialReplicator makes a client of the control API of in's replicator;
// closeConn releases it.
func dialReplicator(cfg *config.Config, in *config.Install) (c replicatorpb.ReplicatorClient, closeConn func(), err error) {
	sec, err := security.New(in.Settings)
	if err != nil {
		return nil, nil, err
	}
	conn, err := grpc.NewClient(controlAddr(cfg, in), sec.ControlDialOptions(nil)...)
	if err != nil {
		return nil, nil, err
	}
	return replicatorpb.NewReplicatorClient(conn), func() { conn.Close() }, nil
}

// controlAddr is the address of the control API of in's replicator.
func controlAddr(cfg *config.Config, in *config.Install) string {
	return net.JoinHostPort(cfg.Address(in.Host), strconv.Itoa(in.Settings.RMIPort))
}

// settledServices asks the replicator for its services until none is
// going online any more (or every one that is cannot reach its sources
// yet), one has failed, or wait has passed, and returns the last answer.
// An error is the control API's: it did not answer.
func settledServices(c replicatorpb.ReplicatorClient, wait time.Duration) ([]*replicatorpb.ServiceStatus, error) {
	for deadline := time.Now().Add(wait); ; time.Sleep(200 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		rep, err := c.Services(ctx, &replicatorpb.ServicesRequest{})
		cancel()
		if err != nil {
			return nil, err
		}
		s := summarize(rep.GetServices())
		if s.failed != "" || s.going == 0 || len(s.unreachable) == s.going || time.Now().After(deadline) {
			return rep.GetServices(), nil
		}
	}
}

// servicesSummary is what waitServices and settledServices decide on.
type servicesSummary struct {
	going       int      // services going online
	failed      string   // a service in OFFLINE:ERROR
	unreachable []string // of those going online, the ones that cannot reach their sources, said why
}

func summarize(svcs []*replicatorpb.ServiceStatus) servicesSummary {
	var s servicesSummary
	for _, svc := range svcs {
		switch svc.GetStateKind() {
		case replicatorpb.ReplicatorState_REPLICATOR_STATE_GOING_ONLINE:
			s.going++
			for _, f := range svc.GetFields() {
				if f.GetName() == "masterConnectError" {
					s.unreachable = append(s.unreachable, fmt.Sprintf("%s cannot reach its sources yet (%s)", svc.GetService(), f.GetValue()))
				}
			}
		case replicatorpb.ReplicatorState_REPLICATOR_STATE_OFFLINE_ERROR:
			s.failed = svc.GetService()
		}
	}
	return s
}
