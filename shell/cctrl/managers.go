package cctrl

import (
	"context"
	"fmt"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/carbidedb/carbide/rpc/gen/managerpb"
)

// managerConn is an open connection to one manager.
type managerConn struct {
	endpoint
	api   ManagerAPI
	close func()
}

// sitePool is the managers of one site the session talks to. Status may
// be answered by any of them: the pool keeps the one that answered last
// and moves on to the next when it stops answering. Commands go to the
// manager that answered last (which forwards them to the coordinator).
type sitePool struct {
	site  string
	eps   []endpoint
	cur   int
	conns map[string]*managerConn
	dial  func(ctx context.Context, addr string) (ManagerAPI, func(), error)
}

func (p *sitePool) conn(ctx context.Context, e endpoint) (*managerConn, error) {
	if c, ok := p.conns[e.addr]; ok {
		return c, nil
	}
	api, closeFn, err := p.dial(ctx, e.addr)
	if err != nil {
		return nil, err
	}
	c := &managerConn{endpoint: e, api: api, close: closeFn}
	p.conns[e.addr] = c
	return c, nil
}

func (p *sitePool) closeAll() {
	for _, c := range p.conns {
		c.close()
	}
	p.conns = map[string]*managerConn{}
}

// status asks the site's managers for the site's status, starting with the
// one that answered last, each within timeout.
func (p *sitePool) status(ctx context.Context, timeout func() (context.Context, context.CancelFunc)) (*managerpb.StatusReply, *managerConn, error) {
	if len(p.eps) == 0 {
		return nil, nil, errorf(ErrUnreachable, "no manager of %s is known: run cctrl from an install (its bin/ or after sourcing share/env.sh) or give -host HOST", p.site)
	}
	var problems []string
	for i := range p.eps {
		k := (p.cur + i) % len(p.eps)
		e := p.eps[k]
		c, err := p.conn(ctx, e)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", e.host, err))
			continue
		}
		tctx, cancel := timeout()
		r, err := c.api.Status(tctx, &managerpb.StatusRequest{})
		cancel()
		if err == nil {
			p.cur = k
			return r, c, nil
		}
		if ctx.Err() != nil {
			return nil, nil, errorf(ErrUnreachable, "interrupted")
		}
		if code := status.Code(err); code != codes.Unavailable && code != codes.DeadlineExceeded {
			return nil, nil, errorf(ErrUnreachable, "the manager of %s at %s: %s", e.host, e.addr, status.Convert(err).Message())
		}
		problems = append(problems, fmt.Sprintf("%s at %s: %s", e.host, e.addr, transportProblem(err)))
	}
	if len(p.eps) == 1 {
		e := p.eps[0]
		return nil, nil, errorf(ErrUnreachable, "the manager of %s does not answer (%s); is it running? (manager start on %s)", p.site, problems[0], e.host)
	}
	return nil, nil, errorf(ErrUnreachable, "no manager of %s answers (%s); are they running? (manager start)", p.site, strings.Join(problems, "; "))
}
