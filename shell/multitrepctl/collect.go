package multitrepctl

import (
	"context"
	"fmt"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/carbidedb/carbide/rpc/gen/replicatorpb"
)

// answer is what one replicator said.
type answer struct {
	t        target
	client   replicatorpb.ReplicatorClient // nil when the dial failed
	services []*replicatorpb.ServiceStatus
	err      error
}

// ask dials every target and asks for its services, all at once, each
// within timeout. The returned close releases the connections.
func ask(ctx context.Context, dial func(context.Context, string) (replicatorpb.ReplicatorClient, func(), error), targets []target, timeout time.Duration) ([]*answer, func()) {
	answers := make([]*answer, len(targets))
	closers := make([]func(), len(targets))
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Go(func() {
			a := &answer{t: t}
			answers[i] = a
			client, closeFn, err := dial(ctx, t.addr)
			if err != nil {
				a.err = status.Error(codes.Unavailable, err.Error())
				return
			}
			a.client, closers[i] = client, closeFn
			qctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			r, err := client.Services(qctx, &replicatorpb.ServicesRequest{})
			if err != nil {
				a.err = err
				return
			}
			a.services = r.GetServices()
		})
	}
	wg.Wait()
	return answers, func() {
		for _, c := range closers {
			if c != nil {
				c()
			}
		}
	}
}

// describe says why a replicator gave no status, as a sentence.
func describe(a *answer) string {
	switch status.Code(a.err) {
	case codes.Unavailable:
		return fmt.Sprintf("the %s at %s does not answer (is it running? %s): %s", a.t.what(), a.t.addr, a.t.startCommand(), status.Convert(a.err).Message())
	case codes.DeadlineExceeded:
		return fmt.Sprintf("the %s at %s did not answer in time", a.t.what(), a.t.addr)
	}
	return fmt.Sprintf("the %s at %s: %s", a.t.what(), a.t.addr, status.Convert(a.err).Message())
}
