package service

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"

	"github.com/carbidedb/carbide/internal/fileutil"
	"github.com/carbidedb/carbide/replicator/apply"
)

// A slave reset with `trepctl reset -db` (or -all) forgets its position,
// but remembers where it was: the reset mark. At its next online it asks
// its source to continue after that transaction, which works when the
// source's history is still the one it applied (the source was not reset:
// nothing is applied twice); when the source's history is a new one (it
// was reset too, or was before this slave came back), the source refuses
// the mark as diverged and the slave starts from the first transaction of
// the new history. So the guide's "Resetting all dataservices" works in
// the order it prints, each host's services reset and brought online
// before the next site's masters start their new histories. The mark goes
// once the slave applies a transaction, and a slave without one (a new
// host) starts from the first transaction, as before.
type resetMark struct {
	Seqno   uint64 `json:"seqno"`
	Epoch   uint64 `json:"epoch"`
	EventID string `json:"event_id"`
}

// errNewHistory ends a slave pipeline that must start over from its
// source's first transaction.
var errNewHistory = errors.New("the source's history is new since this slave was reset")

func (s *Service) resetMarkFile() string {
	if s.cfg.RoleFile == "" {
		return ""
	}
	return filepath.Join(filepath.Dir(s.cfg.RoleFile), "reset-"+s.cfg.Name+".json")
}

func (s *Service) loadResetMark() (resetMark, bool) {
	var m resetMark
	f := s.resetMarkFile()
	if f == "" {
		return m, false
	}
	b, err := os.ReadFile(f)
	if err != nil || json.Unmarshal(b, &m) != nil || m.EventID == "" {
		return m, false
	}
	return m, true
}

// saveResetMark records p as where this slave was before a reset.
func (s *Service) saveResetMark(p apply.Position) error {
	f := s.resetMarkFile()
	if f == "" {
		return nil
	}
	b, err := json.Marshal(resetMark{Seqno: p.Seqno, Epoch: p.Epoch, EventID: p.EventID})
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
		return err
	}
	return fileutil.WriteAtomic(f, b, 0o644)
}

func (s *Service) dropResetMark() {
	if f := s.resetMarkFile(); f != "" {
		os.Remove(f)
	}
}
