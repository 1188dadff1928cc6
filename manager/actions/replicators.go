package actions

import (
	"context"
	"fmt"
	"sync"

	"google.golang.org/grpc"

	"github.com/carbidedb/carbide/manager/policy"
	"github.com/carbidedb/carbide/rpc/gen/replicatorpb"
)

// ReplicatorTo makes host's cluster replicator a master (uri "") or a
// slave of uri, and brings it online.
func (x *Actions) ReplicatorTo(ctx context.Context, host, role, uri string) error {
	c, err := x.repls.Replicator(host)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, StepTimeout+catchUpLimit)
	defer cancel()
	svc := x.cfg.Site
	// A host back from a partition may still be between two dials: wait
	// (within StepTimeout) for the connection rather than fail at once.
	sctx, scancel := context.WithTimeout(ctx, StepTimeout)
	st, err := c.Status(sctx, &replicatorpb.StatusRequest{Service: svc}, grpc.WaitForReady(true))
	scancel()
	if err != nil {
		return fmt.Errorf("replicator of %s: %w", host, err)
	}
	// Already so: a master ONLINE, or a slave of uri ONLINE or going
	// online (taking it offline again would only restart what it is
	// doing; callers acting on facts a moment old asked it so, and a
	// second cycle kept a replica from being a switch's candidate).
	s := st.GetStatus()
	kind := s.GetStateKind()
	if s.GetRole() == role && (kind == replicatorpb.ReplicatorState_REPLICATOR_STATE_ONLINE ||
		role == policy.RoleSlave && kind == replicatorpb.ReplicatorState_REPLICATOR_STATE_GOING_ONLINE) &&
		(role == policy.RoleMaster || s.GetMasterConnectUri() == uri) {
		return nil
	}
	if _, err := c.Offline(ctx, &replicatorpb.OfflineRequest{Service: svc}); err != nil {
		return fmt.Errorf("replicator of %s offline: %w", host, err)
	}
	if _, err := c.SetRole(ctx, &replicatorpb.SetRoleRequest{Service: svc, Role: role, Uri: uri}); err != nil {
		return fmt.Errorf("replicator of %s setrole %s: %w", host, role, err)
	}
	if _, err := c.Online(ctx, &replicatorpb.OnlineRequest{Service: svc}); err != nil {
		return fmt.Errorf("replicator of %s online: %w", host, err)
	}
	if role == policy.RoleMaster {
		if _, err := c.Wait(ctx, &replicatorpb.WaitRequest{Service: svc, AppliedSeqno: -1, State: "ONLINE", TimeoutSeconds: StepTimeout.Seconds()}); err != nil {
			return fmt.Errorf("replicator of %s did not come ONLINE as master: %w", host, err)
		}
	}
	return nil
}

// Repoint makes every listed host a slave of primary, in parallel; it
// returns the hosts that failed, with why.
func (x *Actions) Repoint(ctx context.Context, primary string, hosts []string) []string {
	var mu sync.Mutex
	var failed []string
	var wg sync.WaitGroup
	for _, h := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := x.ReplicatorTo(ctx, h, policy.RoleSlave, x.THLURI(primary)); err != nil {
				x.log.Warn("re-point replica", "host", h, "primary", primary, "error", err)
				mu.Lock()
				failed = append(failed, fmt.Sprintf("%s (%v)", h, err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return failed
}
