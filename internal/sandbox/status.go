package sandbox

import (
	"context"
	"fmt"
	"path/filepath"
	"text/tabwriter"

	"github.com/carbidedb/carbide/internal/config"
	"github.com/carbidedb/carbide/internal/install"
	"github.com/carbidedb/carbide/internal/mysqld"
)

// Status prints one line per host: address, site, database state and
// what its installs run.
func Status(ctx context.Context, cfg Config) error {
	s, err := open(cfg, false)
	if err != nil {
		return err
	}
	defer s.release()
	return s.printStatus(ctx)
}

func (s *Sandbox) printStatus(ctx context.Context) error {
	tw := tabwriter.NewWriter(s.cfg.Out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tADDRESS\tSITE\tDATABASE\tCLUSTER INSTALL\tCROSS-SITE INSTALL")
	for _, h := range s.plan.Hosts {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", h.Name, h.Address, h.Site, s.dbState(ctx, h), describeInstall(h.Cluster), describeInstall(h.CrossSite))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if s.config.SandboxNetNS != "" {
		b, err := s.bed()
		if err != nil {
			return err
		}
		link := "no WAN link (one site)"
		if len(b.sites) > 1 {
			link = "the WAN link is down (sandbox up starts it)"
			if pid := s.wanPID(); pid != 0 {
				link = fmt.Sprintf("sites joined by a WAN link (%s), pid %d", b.shape, pid)
			}
		}
		s.say("network: host H of site S in namespace %s-HOST at 198.18.%d+S.H; this machine is .254 on each site's bridge; %s", s.config.SandboxNetNS, 16*b.net, link)
	}
	return nil
}

func (s *Sandbox) dbState(ctx context.Context, h *config.HostPlan) string {
	dc, ok := s.dbConfig(h)
	if !ok {
		return "-"
	}
	pid, running := mysqld.ReadPID(dc.Dir)
	switch {
	case !running:
		return fmt.Sprintf("STOPPED :%d", dc.Port)
	case ping(ctx, dc) != nil:
		return fmt.Sprintf("NOT ANSWERING pid %d :%d", pid, dc.Port)
	}
	return fmt.Sprintf("ONLINE pid %d :%d", pid, dc.Port)
}

func describeInstall(in *config.Install) string {
	if in == nil {
		return "-"
	}
	return filepath.Base(in.Dir) + ": " + install.Describe(in)
}
