package health

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/carbidedb/carbide/manager/internal/fakesite"
	"github.com/carbidedb/carbide/manager/policy"
	"github.com/carbidedb/carbide/rpc/gen/replicatorpb"
)

func prober(t *testing.T, f *fakesite.Site, host string, src Sources) *Prober {
	src.Database, src.Replicator = f.Databases(), f.Replicators()
	return New(Config{Host: host, Site: "east", Marker: filepath.Join(t.TempDir(), "provisioning")}, src)
}

func TestProbe(t *testing.T) {
	f := fakesite.New(t, "east1", "east1", "east2")
	f.Repls["east2"].Applied, f.Repls["east2"].Stored = 90, 95
	p := prober(t, f, "east2", Sources{Connector: func(f *policy.Facts) { f.ConnPID = 77 }})
	got := p.Probe(context.Background())
	if got.Host != "east2" || !got.Alive || got.DB != policy.DBUp || !got.ReadOnly || got.ReplRole != policy.RoleSlave ||
		got.ReplKind != replicatorpb.ReplicatorState_REPLICATOR_STATE_ONLINE || got.Applied != 90 || got.MaxStored != 95 ||
		got.MasterURI != "thl://east1:2112/" || got.ConnPID != 77 || got.Incomplete != "" {
		t.Fatalf("facts %+v", got)
	}

	// The database refuses connections (down), the replicator does not
	// answer: the facts say so, with the seqnos unknown (-1).
	f.DBs["east2"].Down, f.Repls["east2"].Cut = true, true
	got = p.Probe(context.Background())
	if got.DB != policy.DBDown || !got.DBRefused || got.DBError == "" || got.ReplState != "" || got.Applied != -1 {
		t.Fatalf("facts %+v", got)
	}
	// Cut off (no answer) is down, not refused.
	f.DBs["east2"].Down, f.DBs["east2"].Cut = false, true
	if got = p.Probe(context.Background()); got.DB != policy.DBDown || got.DBRefused {
		t.Fatalf("facts %+v", got)
	}

	// A tprovision copy under way is reported from its marker.
	if err := os.WriteFile(p.cfg.Marker, []byte("mysqldump from east1 began at 10:00\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got = p.Probe(context.Background()); got.Incomplete != "mysqldump from east1 began at 10:00" {
		t.Fatalf("incomplete %q", got.Incomplete)
	}
}

func TestProbeWitness(t *testing.T) {
	p := New(Config{Host: "w1", Site: "east", Witness: true}, Sources{})
	if got := p.Probe(context.Background()); !got.Witness || got.DB != "" || got.ReplState != "" {
		t.Fatalf("a witness's facts %+v", got)
	}
}

// The cross-site replicator's services: states (the error clipped),
// holds and conflicts, merged into the facts.
func TestProbeCross(t *testing.T) {
	f := fakesite.New(t, "east1", "east1", "x1")
	x := f.Repls["x1"]
	x.State, x.PendingError = "OFFLINE:ERROR", "Event application failed: "+strings.Repeat("conflict ", 40)+"\nsecond line"
	c, _ := f.Replicators().Replicator("x1")
	p := prober(t, f, "east1", Sources{Cross: func(ctx context.Context) Cross { return CrossStates(ctx, c, []string{"west", "north"}) }})
	got := p.Probe(context.Background())
	for _, svc := range []string{"west", "north"} {
		s := got.Cross[svc]
		if !strings.HasPrefix(s, "OFFLINE:ERROR: Event application failed") || len(s) > len("OFFLINE:ERROR: ")+CrossErrorMax+3 || strings.Contains(s, "second line") {
			t.Fatalf("cross %s = %q", svc, s)
		}
	}
	if none := CrossStates(context.Background(), nil, []string{"west"}); none.States["west"] != "" {
		t.Fatalf("unreachable: %+v", none)
	}
	f.Repls["x1"].Cut = true
	if cut := CrossStates(context.Background(), c, []string{"west"}); cut.States["west"] != "" {
		t.Fatalf("cut: %+v", cut)
	}
}

func TestSame(t *testing.T) {
	a := policy.Facts{Host: "east1", ReplState: "ONLINE", Applied: 1, MaxStored: 1, Seq: 1, Latency: 0.5, Conflicts: map[string]uint64{"east": 1}}
	b := a
	b.Applied, b.MaxStored, b.Seq, b.Latency, b.Conflicts = 9, 9, 2, 1.5, map[string]uint64{"east": 4}
	if !Same(a, b) {
		t.Error("moving seqnos made the facts differ")
	}
	b.ReplState = "OFFLINE:ERROR"
	if Same(a, b) {
		t.Error("a state change went unnoticed")
	}
	if AddConflicts(nil, "east", 0) != nil || AddConflicts(nil, "east", 2)["east"] != 2 {
		t.Error("AddConflicts")
	}
}
