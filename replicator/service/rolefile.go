package service

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/carbidedb/carbide/internal/fileutil"
)

// savedRole is what RoleFile holds.
type savedRole struct {
	Role    string   `json:"role"`
	Sources []string `json:"sources,omitempty"`
}

// loadRole applies the role setrole saved, if any.
func (s *Service) loadRole() error {
	if s.cfg.RoleFile == "" {
		return nil
	}
	b, err := os.ReadFile(s.cfg.RoleFile)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var r savedRole
	if err := json.Unmarshal(b, &r); err != nil || (r.Role != RoleMaster && r.Role != RoleSlave) {
		return fmt.Errorf("%s is damaged; remove it to start with the configured role (%s)", s.cfg.RoleFile, s.cfg.Role)
	}
	if r.Role != s.role {
		s.log.Info("role from the last setrole", "role", r.Role, "configured", s.cfg.Role)
	}
	s.role = r.Role
	if len(r.Sources) > 0 {
		s.sources = r.Sources
	}
	return nil
}

// saveRole records role and sources (nil: keep the current ones).
func (s *Service) saveRole(role string, sources []string) error {
	if s.cfg.RoleFile == "" {
		return nil
	}
	if sources == nil {
		sources = s.sources
	}
	b, err := json.Marshal(savedRole{Role: role, Sources: sources})
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(s.cfg.RoleFile), 0o755); err != nil {
		return err
	}
	return fileutil.WriteAtomic(s.cfg.RoleFile, b, 0o644)
}
