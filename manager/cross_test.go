package manager

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/hashicorp/memberlist"

	"github.com/carbidedb/carbide/manager/health"
	"github.com/carbidedb/carbide/manager/membership"
	"github.com/carbidedb/carbide/manager/policy"
)

// TestServiceConflicts: ls gets the cluster service's conflicts first,
// then the cross-site services' by name, each marked as what it is, and
// nothing for a host whose services recorded none.
func TestServiceConflicts(t *testing.T) {
	var m map[string]uint64
	for svc, n := range map[string]uint64{"west": 3, "east": 2, "north": 1, "south": 0} {
		m = health.AddConflicts(m, svc, n)
	}
	if _, ok := m["south"]; ok || len(m) != 3 {
		t.Fatalf("addConflicts kept %v, want the three services with conflicts", m)
	}
	var got []string
	for _, c := range serviceConflicts(policy.Facts{Conflicts: m}, "east") {
		got = append(got, fmt.Sprintf("%s=%d cross=%t", c.GetService(), c.GetRecorded(), c.GetCrossSite()))
	}
	if want := "east=2 cross=false, north=1 cross=true, west=3 cross=true"; strings.Join(got, ", ") != want {
		t.Errorf("serviceConflicts = %s, want %s", strings.Join(got, ", "), want)
	}
	if got := serviceConflicts(policy.Facts{}, "east"); got != nil {
		t.Errorf("no conflicts drew %v", got)
	}
	if health.AddConflicts(nil, "east", 0) != nil {
		t.Errorf("no conflicts made a map")
	}
}

// TestConflictCountsDoNotHurry: a conflict count that moves is sent
// with the regular report, like a seqno, not gossiped at once.
func TestConflictCountsDoNotHurry(t *testing.T) {
	a := policy.Facts{Host: "east1", ReplState: "ONLINE", Conflicts: map[string]uint64{"west": 1}}
	b := a
	b.Conflicts = map[string]uint64{"west": 2, "east": 1}
	if !health.Same(a, b) {
		t.Errorf("facts that differ only in conflict counts are not the same")
	}
	b.ReplState = "OFFLINE:ERROR"
	if health.Same(a, b) {
		t.Errorf("a state change is hidden")
	}
}

// TestFactsTooLargeDropConflicts: facts that would pass memberlist's
// metadata limit only with their conflict counts go without them (the
// states still reach the other managers); facts too large without them
// are an error.
func TestFactsTooLargeDropConflicts(t *testing.T) {
	f := policy.Facts{Host: "east1", ReplState: "ONLINE", Conflicts: map[string]uint64{}}
	for i := range 30 {
		f.Conflicts[fmt.Sprintf("a-long-dataservice-name-%02d", i)] = 1 << 40
	}
	b, err := membership.Gossiped(f)
	var back policy.Facts
	if err != nil || len(b) > memberlist.MetaMaxSize || json.Unmarshal(b, &back) != nil || back.ReplState != "ONLINE" || back.Conflicts != nil {
		t.Errorf("gossiped = %d bytes %s (%v), want the facts without their conflicts", len(b), b, err)
	}
	f.DBError = strings.Repeat("x", memberlist.MetaMaxSize)
	if _, err := membership.Gossiped(f); err == nil {
		t.Errorf("facts of more than %d bytes without their conflicts were taken", memberlist.MetaMaxSize)
	}
}
