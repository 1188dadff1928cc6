package actions

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/carbidedb/carbide/manager/policy"
	"github.com/carbidedb/carbide/rpc/gen/managerpb"
	"github.com/carbidedb/carbide/rpc/reason"
)

func TestRecover(t *testing.T) {
	setup := func(t *testing.T) (*harness, *Actions) {
		h := newHarness(t, "east1", east...)
		x := h.actions(time.Second)
		if err := h.Ledger().Apply(policy.Change{Op: policy.OpDatasource, Host: "east3", Value: policy.Failed, Reason: "by hand"}); err != nil {
			t.Fatal(err)
		}
		return h, x
	}
	failed := func(t *testing.T, h *harness) {
		t.Helper()
		if h.state().Datasources["east3"].State != policy.Failed {
			t.Fatalf("east3 is %s, want still FAILED", h.state().Datasources["east3"])
		}
	}
	t.Run("ok", func(t *testing.T) {
		h, x := setup(t)
		lines, err := x.Recover(context.Background(), "east3", false)
		if err != nil || !strings.Contains(joined(lines), "DATASOURCE 'east3@east' RECOVERED (replica of east1") {
			t.Fatalf("reply %q, %v", lines, err)
		}
		if h.state().Datasources["east3"].State != policy.Online || !h.DBs["east3"].ReadOnly {
			t.Fatalf("state %+v", h.state().Datasources["east3"])
		}
	})
	t.Run("database down", func(t *testing.T) {
		h, x := setup(t)
		h.DBs["east3"].Down = true
		_, err := x.Recover(context.Background(), "east3", false)
		if err == nil || !strings.Contains(err.Error(), "cannot recover east3: its database does not answer") || !reason.Refused(err) {
			t.Fatalf("err %v", err)
		}
		failed(t, h)
	})
	t.Run("replicator cannot follow", func(t *testing.T) {
		h, x := setup(t)
		h.Repls["east3"].OnlineErr, h.Repls["east3"].State = errors.New("refused"), "OFFLINE:NORMAL"
		_, err := x.Recover(context.Background(), "east3", false)
		if err == nil || !strings.Contains(err.Error(), "cannot recover east3: replicator of east3 online") {
			t.Fatalf("err %v", err)
		}
		failed(t, h)
	})
	t.Run("diverged", func(t *testing.T) {
		h, x := setup(t)
		h.Repls["east3"].Diverges, h.Repls["east3"].State = true, "OFFLINE:NORMAL"
		_, err := x.Recover(context.Background(), "east3", false)
		if err == nil || !strings.Contains(err.Error(), "its history diverged from the primary east1") {
			t.Fatalf("err %v", err)
		}
		failed(t, h)
		// Forced, it is brought back as it is.
		if lines, err := x.Recover(context.Background(), "east3", true); err != nil || !strings.Contains(joined(lines), "RECOVERED") {
			t.Fatalf("forced: %q, %v", lines, err)
		}
	})
	t.Run("stopped on another error", func(t *testing.T) {
		h, x := setup(t)
		// The words say "diverged"; the kind says an apply error: recover
		// decides on the kind.
		h.Repls["east3"].Fails, h.Repls["east3"].State = "Event application failed: the rows diverged", "OFFLINE:NORMAL"
		_, err := x.Recover(context.Background(), "east3", false)
		if err == nil || strings.Contains(err.Error(), "history diverged") || !strings.Contains(err.Error(), "its replicator is OFFLINE:ERROR") {
			t.Fatalf("err %v", err)
		}
		failed(t, h)
	})
	t.Run("half-copied", func(t *testing.T) {
		h, x := setup(t)
		h.setFacts("east3", func(f *policy.Facts) { f.Incomplete = "mysqldump from east2 began at 10:00" })
		_, err := x.Recover(context.Background(), "east3", false)
		// The caller (tprovision waits for this refusal to clear) decides
		// on the reason, not on the words.
		if got := reason.Of(err); got != managerpb.Reason_REASON_INCOMPLETE_COPY {
			t.Fatalf("reason %v of %v", got, err)
		}
		failed(t, h)
		if _, err := x.Recover(context.Background(), "east3", true); err != nil {
			t.Fatalf("forced: %v", err)
		}
	})
	t.Run("orphans", func(t *testing.T) {
		h, x := setup(t)
		r := h.Repls["east3"]
		r.Role, r.EventID, r.Orphans = policy.RoleMaster, "mysql-bin.000002:0000000000001234;-1", []string{"0-1-77 app.t `INSERT`"}
		_, err := x.Recover(context.Background(), "east3", false)
		if err == nil || !strings.Contains(err.Error(), "its binlog holds 1 transaction(s) after") || !strings.Contains(err.Error(), "0-1-77") {
			t.Fatalf("err %v", err)
		}
		failed(t, h)
		lines, err := x.Recover(context.Background(), "east3", true)
		if err != nil || !strings.Contains(joined(lines), "WARNING: east3 keeps 1 transaction(s) the site never got: 0-1-77") {
			t.Fatalf("forced: %q, %v", lines, err)
		}
	})
	t.Run("binlog unreadable", func(t *testing.T) {
		h, x := setup(t)
		r := h.Repls["east3"]
		r.Role, r.EventID, r.OrphansErr = policy.RoleMaster, "mysql-bin.000002:0000000000001234;-1", errors.New("east3 no longer has binlog mysql-bin.000002")
		_, err := x.Recover(context.Background(), "east3", true)
		if err == nil || !strings.Contains(err.Error(), "cannot read its binlog") {
			t.Fatalf("err %v", err)
		}
		failed(t, h)
	})
	t.Run("refused by the ledger", func(t *testing.T) {
		h, x := setup(t)
		h.ApplyFails = policy.OpDatasource
		if _, err := x.Recover(context.Background(), "east3", false); err == nil {
			t.Fatal("no error")
		}
	})
	t.Run("the primary", func(t *testing.T) {
		_, x := setup(t)
		if _, err := x.Recover(context.Background(), "east1", false); err == nil || !strings.Contains(err.Error(), "east1 is the primary; nothing to recover") {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("the failed primary", func(t *testing.T) {
		h, x := setup(t)
		_ = h.Ledger().Apply(policy.Change{Op: policy.OpDatasource, Host: "east1", Value: policy.Failed})
		if _, err := x.Recover(context.Background(), "east1", false); err == nil || !strings.Contains(err.Error(), "fail over to a replica first") {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("not a datasource", func(t *testing.T) {
		_, x := setup(t)
		if _, err := x.Recover(context.Background(), "west1", false); err == nil || !strings.Contains(err.Error(), "west1 is not a datasource of east (datasources: east1, east2, east3)") {
			t.Fatalf("err %v", err)
		}
	})
}

// An ONLINE datasource whose replicator was taken offline gets its
// replicator back; one that runs is left alone.
func TestRecoverOnline(t *testing.T) {
	h := newHarness(t, "east1", east...)
	x := h.actions(time.Second)
	lines, err := x.Recover(context.Background(), "east2", false)
	if err != nil || joined(lines) != "east2 is already ONLINE" {
		t.Fatalf("reply %q, %v", lines, err)
	}
	h.setFacts("east2", func(f *policy.Facts) { f.ReplState, f.ReplKind = "OFFLINE:NORMAL", 2 })
	h.Repls["east2"].State = "OFFLINE:NORMAL"
	lines, err = x.Recover(context.Background(), "east2", false)
	if err != nil || joined(lines) != "east2 is ONLINE; its replicator was OFFLINE:NORMAL and is ONLINE again" || h.Repls["east2"].State != "ONLINE" {
		t.Fatalf("reply %q, %v", lines, err)
	}
	h.Repls["east2"].OnlineErr = errors.New("refused")
	h.Repls["east2"].State = "OFFLINE:NORMAL"
	if _, err := x.Recover(context.Background(), "east2", false); err == nil {
		t.Fatal("no error when the replicator does not come back")
	}
}
