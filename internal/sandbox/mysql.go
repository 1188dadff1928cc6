package sandbox

import (
	"context"
	"fmt"
	"strings"

	"github.com/carbidedb/carbide/internal/mysqld"
)

// MySQL runs start, stop, restart or status on one host's database: the
// sandbox's stand-in for `systemctl start mariadb` on a real host.
func MySQL(ctx context.Context, cfg Config, verb, host string) error {
	switch verb {
	case "start", "stop", "restart", "status":
	default:
		return fmt.Errorf("sandbox mysql takes start, stop, restart or status, not %q", verb)
	}
	s, err := open(cfg, false)
	if err != nil {
		return err
	}
	defer s.release()
	h, ok := s.plan.Host(host)
	if !ok {
		return fmt.Errorf("host %s is not in the sandbox (hosts: %s)", host, strings.Join(s.plan.HostNames(), ", "))
	}
	dc, ok := s.dbConfig(h)
	if !ok {
		return fmt.Errorf("host %s has no database (it is a witness or runs a connector only)", host)
	}
	if verb == "status" {
		s.say("%s: %s", host, s.dbState(ctx, h))
		return nil
	}
	if dc.NetNS != "" {
		if err := checkNetNS(); err != nil {
			return err
		}
	}
	if verb == "stop" || verb == "restart" {
		if pid, running := mysqld.ReadPID(dc.Dir); running {
			if err := mysqld.StopDir(ctx, dc.Dir, s.cfg.StopTimeout); err != nil {
				return fmt.Errorf("%s: %w", host, err)
			}
			s.say("%s: mariadbd stopped (pid %d)", host, pid)
		} else if verb == "stop" {
			s.say("%s: mariadbd is not running", host)
		}
	}
	if verb == "start" || verb == "restart" {
		line, err := s.startDatabase(ctx, h)
		if err != nil {
			return fmt.Errorf("%s: %w", host, err)
		}
		s.say("%s: %s", host, line)
	}
	return nil
}
