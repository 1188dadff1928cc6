package sandbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/carbidedb/carbide/internal/mysqld"
)

// Down stops every process of the sandbox: agents first, then databases.
// Datadirs and installs stay, so Up brings the same sandbox back.
func Down(ctx context.Context, cfg Config) error {
	s, err := open(cfg, false)
	if err != nil {
		return err
	}
	defer s.release()
	return s.down(ctx)
}

func (s *Sandbox) down(ctx context.Context) error {
	if s.config.SandboxNetNS != "" {
		if err := checkNetNS(); err != nil {
			return err // before anything stops: its network could not go
		}
	}
	var errs []error
	// Connectors, then managers, then replicators; the agents of one
	// program at once.
	agents := s.agents()
	for end := len(agents); end > 0; {
		begin := end - 1
		for begin > 0 && agents[begin-1].program == agents[end-1].program {
			begin--
		}
		group := agents[begin:end]
		end = begin
		if !s.hasProgram(group[0].program) {
			continue
		}
		lines := make([]string, len(group))
		gerrs := make([]error, len(group))
		var wg sync.WaitGroup
		for i, a := range group {
			wg.Add(1)
			go func() {
				defer wg.Done()
				lines[i], gerrs[i] = s.startAgent(ctx, a, "stop")
			}()
		}
		wg.Wait()
		for i := range group {
			if gerrs[i] != nil {
				errs = append(errs, gerrs[i])
			} else {
				s.say("%s", lines[i])
			}
		}
	}
	// Every mariadbd with a pid file under DIR, whether the ini still
	// names its host or not.
	dirs, _ := filepath.Glob(filepath.Join(s.cfg.Dir, "*", "mysql"))
	var mu sync.Mutex
	var wg sync.WaitGroup
	stopped := 0
	for _, dir := range dirs {
		pid, running := mysqld.ReadPID(dir)
		if !running {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := mysqld.StopDir(ctx, dir, s.cfg.StopTimeout)
			mu.Lock()
			defer mu.Unlock()
			host := filepath.Base(filepath.Dir(dir))
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", host, err))
				return
			}
			stopped++
			s.say("%s: mariadbd stopped (pid %d)", host, pid)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	// The network goes once nothing runs in it.
	if s.config.SandboxNetNS != "" {
		b, err := s.bed()
		if err == nil {
			err = s.bedDown(b)
		}
		if err != nil {
			return err
		}
	}
	s.say("sandbox down: %d databases stopped; data kept in %s (sandbox up brings it back)", stopped, s.cfg.Dir)
	return nil
}

// Destroy stops the sandbox and removes its directory.
func Destroy(ctx context.Context, cfg Config) error {
	s, err := open(cfg, false)
	if err != nil {
		return err
	}
	defer s.release()
	if err := s.down(ctx); err != nil {
		return fmt.Errorf("sandbox: not removing %s, some processes did not stop: %w", s.cfg.Dir, err)
	}
	if err := os.RemoveAll(s.cfg.Dir); err != nil {
		return fmt.Errorf("sandbox: remove %s: %w", s.cfg.Dir, err)
	}
	s.say("removed %s", s.cfg.Dir)
	return nil
}
