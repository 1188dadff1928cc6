package manager

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/carbidedb/carbide/internal/textutil"
	"github.com/carbidedb/carbide/manager/health"
	"github.com/carbidedb/carbide/manager/membership"
	"github.com/carbidedb/carbide/manager/policy"
	"github.com/carbidedb/carbide/rpc/gen/replicatorpb"
)

var east = []string{"east1", "east2", "east3"}

// A replica's replicator running as master is made a slave of the primary
// again under AUTOMATIC, and left alone under MAINTENANCE: an operator
// moving the master role by hand (trepctl setrole) puts the site in
// maintenance first, as the guide's procedures do.
func TestReconcileLeavesRolesAloneInMaintenance(t *testing.T) {
	for _, mode := range []string{policy.Automatic, policy.Maintenance} {
		f := newFakeSite(t, "east1", east...)
		f.Repls["east2"].Role, f.Repls["east2"].URI = policy.RoleMaster, ""
		a := f.agent(t, time.Second)
		if mode == policy.Maintenance {
			if err := a.ledger.Apply(policy.Change{Op: policy.OpPolicy, Value: policy.Maintenance}); err != nil {
				t.Fatal(err)
			}
		}
		facts := map[string]policy.Facts{}
		for _, h := range east {
			facts[h] = policy.Facts{Host: h, Alive: true, ReplRole: f.Repls[h].Role, ReplState: "ONLINE", ReplKind: replicatorpb.ReplicatorState_REPLICATOR_STATE_ONLINE}
		}
		a.reconcile(context.Background(), a.ledger.State(), facts)
		if got, want := f.Did("setrole east2 slave"), mode == policy.Automatic; got != want {
			t.Errorf("%s: east2 made a slave again: %v, want %v", mode, got, want)
		}
	}
}

// The monitor's failover decision names a candidate from the last
// reports; the failover itself ranks on what the replicators say then:
// east2 (stale report: ahead) stored everything but cannot apply it,
// east3 has applied everything since its last report.
func TestAutomaticFailoverRanksOnFreshStatus(t *testing.T) {
	f := newFakeSite(t, "east1", east...)
	f.DBs["east1"].Down = true
	f.Repls["east2"].Applied, f.Repls["east2"].Stuck = 90, true
	f.Repls["east3"].Applied, f.Repls["east3"].Stored = 80, 80
	a := f.agent(t, 200*time.Millisecond)
	f.Repls["east3"].Applied, f.Repls["east3"].Stored = 100, 100 // after its last report
	a.execute(context.Background(), policy.Decision{Kind: policy.DecideFailover, Host: "east1", To: "east2", Reason: "dataserver down"})
	if st := a.ledger.State(); st.Primary != "east3" {
		t.Fatalf("primary %s, want east3", st.Primary)
	}
}

// TestCrossErrorFitsTheFacts: a cross-site service stopped on a conflict
// (an error naming both rows, hundreds of bytes) leaves the host's facts
// small enough to gossip, with every service's conflict count; they were
// dropped whole, and the other site never learnt the service had stopped.
func TestCrossErrorFitsTheFacts(t *testing.T) {
	e := "Event application failed: seqno=2 fragno=0 message=conflict on xs.t id=5: the INSERT from west of " +
		`{"id":5,"v":"wést"} finds its key taken: this database holds {"id":5,"v":"east2"}; ` + strings.Repeat("the conflict policy is stop ", 20)
	f := policy.Facts{Host: "east2", Alive: true, ReplRole: "slave", ReplState: "ONLINE", ReplKind: replicatorpb.ReplicatorState_REPLICATOR_STATE_ONLINE, Applied: 123456, MaxStored: 123456, MasterURI: "thl://east1:2112/",
		Cross:     map[string]string{"west": "OFFLINE:ERROR: " + textutil.Clip(textutil.FirstLine(e), health.CrossErrorMax), "north": "OFFLINE:ERROR: " + textutil.Clip(textutil.FirstLine(e), health.CrossErrorMax)},
		Conflicts: map[string]uint64{"east": 1 << 40, "west": 1 << 40, "north": 1 << 40}}
	b, err := membership.Gossiped(f)
	if err != nil || len(b) > memberlist.MetaMaxSize {
		t.Fatalf("facts of %d bytes (%v), more than gossip takes (%d)", len(b), err, memberlist.MetaMaxSize)
	}
	var back policy.Facts
	if err := json.Unmarshal(b, &back); err != nil || len(back.Conflicts) != 3 {
		t.Errorf("the conflict counts did not go out whole: %s (%v)", b, err)
	}
}

// joined is an operation's reply as one string, for matching.
func joined(lines []string) string { return strings.Join(lines, " | ") }
