package cctrl

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/carbidedb/carbide/rpc/gen/replicatorpb"
)

// mmStart is how an operator starts a cross-site replicator.
const mmStart = "mm_replicator start"

// runMM carries out a command of mm mode: the cross-site replicators of
// the service's hosts.
func (s *Session) runMM(ctx context.Context, c Command) error {
	switch c.Name {
	case "ls":
		return s.mmLs(ctx, c.Host)
	case "replicator":
		addr, err := s.mmReplicator(c.Host)
		if err != nil {
			return err
		}
		switch c.Action {
		case "status":
			return s.printReplicatorStatus(ctx, addr, c.Host, c.Service, mmStart)
		case "reset":
			return s.mmReset(ctx, addr, c)
		}
		return s.mmOnOff(ctx, addr, c)
	}
	return usagef("%s is not a command of mm mode; exit-mm returns to the cluster commands", c.Name)
}

// mmReplicator returns the control address of host's cross-site
// replicator, if host is of the service.
func (s *Session) mmReplicator(host string) (string, error) {
	hosts := s.topo.crossSiteHosts(s.service)
	if !slices.Contains(hosts, host) {
		return "", usagef("replicator %s: %s runs no cross-site replicator of %s (hosts: %s)", host, host, s.service, strings.Join(hosts, ", "))
	}
	addr, _, _ := s.topo.crossSite(host)
	return addr, nil
}

func (s *Session) mmOnOff(ctx context.Context, addr string, c Command) error {
	api, closeFn, err := s.env.DialReplicator(ctx, addr)
	if err != nil {
		return err
	}
	defer closeFn()
	cctx, cancel := context.WithTimeout(ctx, s.cfg.CommandTimeout)
	defer cancel()
	if c.Action == "online" {
		_, err = api.Online(cctx, &replicatorpb.OnlineRequest{Service: c.Service})
	} else {
		_, err = api.Offline(cctx, &replicatorpb.OfflineRequest{Service: c.Service})
	}
	if err != nil {
		return errors.New(rpcMessage(err, "the cross-site replicator of "+c.Host, addr, mmStart))
	}
	what := "every service"
	if c.Service != "" {
		what = "service " + c.Service
	}
	s.println(fmt.Sprintf("Cross-site replicator '%s' (%s) is now %s", c.Host, what, strings.ToUpper(c.Action)))
	return nil
}

func (s *Session) mmReset(ctx context.Context, addr string, c Command) error {
	what := fmt.Sprintf("the THL and tracking schema of service %s on %s", c.Service, c.Host)
	if !c.Yes && !s.expert {
		if !s.env.Terminal {
			return usagef("replicator %s reset: a script must give -y to delete %s", c.Host, what)
		}
		if !s.confirm("Do you really want to delete " + what + "?") {
			return errorf(ErrCancelled, "reset cancelled; nothing was deleted")
		}
	}
	api, closeFn, err := s.env.DialReplicator(ctx, addr)
	if err != nil {
		return err
	}
	defer closeFn()
	cctx, cancel := context.WithTimeout(ctx, s.cfg.CommandTimeout)
	defer cancel()
	if _, err := api.Reset(cctx, &replicatorpb.ResetRequest{Service: c.Service, Thl: true, Db: true}); err != nil {
		return errors.New(rpcMessage(err, "the cross-site replicator of "+c.Host, addr, mmStart))
	}
	s.println(fmt.Sprintf("Service %s on %s is reset (its THL and tracking schema are deleted)", c.Service, c.Host))
	return nil
}

// mmLs asks every cross-site replicator of the service's hosts (or only
// host's) at once and draws a box per host.
func (s *Session) mmLs(ctx context.Context, host string) error {
	hosts := s.topo.crossSiteHosts(s.service)
	if host != "" {
		if !slices.Contains(hosts, host) {
			return usagef("ls %s: %s runs no cross-site replicator of %s (hosts: %s)", host, host, s.service, strings.Join(hosts, ", "))
		}
		hosts = []string{host}
	}
	answers := make([]MMHost, len(hosts))
	var wg sync.WaitGroup
	for i, h := range hosts {
		addr, _, _ := s.topo.crossSite(h)
		wg.Go(func() {
			answers[i] = s.askCrossSite(ctx, h, addr)
		})
	}
	wg.Wait()
	// The origin sites' primaries, asked once per origin.
	primaries := map[string]string{}
	for i := range answers {
		for j := range answers[i].Services {
			sv := &answers[i].Services[j]
			origin := sv.Status.GetService()
			if _, ok := primaries[origin]; !ok {
				primaries[origin] = s.originPrimary(ctx, origin)
			}
			sv.OriginPrimary = primaries[origin]
		}
	}
	s.println(MMLines(s.service, answers)...)
	return nil
}

func (s *Session) askCrossSite(ctx context.Context, host, addr string) MMHost {
	h := MMHost{Host: host, Addr: addr}
	api, closeFn, err := s.env.DialReplicator(ctx, addr)
	if err != nil {
		h.Problem = err.Error()
		return h
	}
	defer closeFn()
	tctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	r, err := api.Services(tctx, &replicatorpb.ServicesRequest{})
	if err != nil {
		h.Problem = rpcMessage(err, "the cross-site replicator", addr, mmStart)
		return h
	}
	for _, st := range r.GetServices() {
		h.Services = append(h.Services, MMService{Status: st, Source: s.topo.hostName(uriHost(st.GetMasterConnectUri()))})
	}
	return h
}

// originPrimary asks the origin site's managers for its primary; "" when
// none answers.
func (s *Session) originPrimary(ctx context.Context, site string) string {
	if !s.topo.hasService(site) {
		return ""
	}
	r, err := s.status(ctx, site)
	if err != nil {
		return ""
	}
	return r.GetPrimary()
}
